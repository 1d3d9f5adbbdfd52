// Package chaos holds the chaos suite: one migration through the whole local
// stack while the handler is SIGKILLed at random moments, Graph answers 20%
// of calls with 429 or 503, the Service Bus emulator and Azurite each
// restart once, and the dev host delivers every message twice at the same
// time. Afterwards the target is read back through Graph's drive endpoints
// and the run's invariants are checked (every file present and
// byte-identical, one committed job per batch attempt, counters equal to the
// truth, nothing pending), and every log line, API response and table row is
// searched for secrets. `make chaos` runs it with 1,000 files; the normal
// suite runs it with CHAOS_FILES' default. See docs/reliability.md.
package chaos
