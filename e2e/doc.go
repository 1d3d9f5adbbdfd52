// Package e2e holds the end-to-end tests: migrations through the Functions
// dev host and the whole local stack (Azurite, the Service Bus emulator, the
// Graph SPE emulator), started by HTTP, by a queue message and by a
// schedule, cancelled, surviving a killed handler, failing on a poison
// message, and the HTTP front door refusing malformed requests. Every
// migration is verified through Graph's drive endpoints (infra/local/verify).
// The tests skip under -short.
package e2e
