// Package servicebus holds the conformance suite and benchmark for the local
// Service Bus emulator. The emulator itself is a Node program on rhea
// (sbemulator.js, lib/) started through infra/local/stack; the tests drive it
// with the unmodified azservicebus client over AMQP on loopback, so they show
// what the application's own Service Bus code will meet locally.
//
// There is no Go API here: production code reaches the emulator only through
// a connection string (stack.Stack.ServiceBusConnectionString).
package servicebus
