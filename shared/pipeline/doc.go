// Package pipeline is the migration engine: the steps plan, stage (which
// provisions), submit, poll and drain, plus start and cancel, as methods on
// an [Engine] over small interfaces (a [Store] for the truth, a [Graph]
// client, a [Stager], a [Namer], a [Planner], a [Sealer], a [Sources]
// resolver and a [Sender] for the next messages). The Functions handlers are
// thin wrappers: decode a queue message, call one method ([Engine.Run] with
// [FromQueue], or the step itself), return its error.
//
// [NewEngine] wires the production packages ([Components]: shared/state,
// shared/graph, shared/queue, shared/staging options) through the adapters
// in this package: [TableStore], [NamingPolicy] (a [PageNamer]: a page's
// names are claimed in batches), [StagingPlanner], [StagingStager] (with
// durable list-item ids per target container, [IntIDs], a batch's claimed
// up front in a few transactions), [ImportLog] (what was imported where,
// for incremental re-runs, one range query per page; the optional
// [Imports] dependency), [RequestSources] and [QueueSender].
//
// # Step contract
//
// Messages carry ids only ([Next]: step, migration, batch, page, attempt,
// poll sequence); the [Store] holds the truth. Every step:
//
//  1. loads the entities it needs and checks their state;
//  2. if the state is already past what the step does, it re-sends the
//     message for the immediately following step when the state is exactly
//     at this step's post-condition (a crash may have lost it), and
//     otherwise does nothing;
//  3. otherwise does its work, moves the state forward with an
//     ETag-conditional write (a lost race re-reads and decides again), and
//     only then sends the next message(s) through the [Sender].
//
// A step returns an error only when the same message should be delivered
// again (a transient failure); outcomes that are final (a batch that failed
// for good, a cancelled migration) are written to the store and the step
// returns nil. A throttle with a long Retry-After is never slept through:
// the step schedules its own message for later and returns nil.
//
// Because every step is idempotent this way, a message delivered twice, or
// a step re-run after a crash at any line, ends in the same state. The one
// gap the Graph API leaves open is documented on [Engine.Submit]: job
// creation is not idempotent, so submit records its intent (with a lease)
// before calling Graph and records the job id in the same write that moves
// the batch to running; a job id, once recorded, is never replaced.
//
// # State machine
//
// Migration: running → (completed | completedWithErrors | failed |
// cancelled). It completes when planning has reached the end of the source
// and every batch is terminal; its counters are recomputed from the batches
// (a set, not an increment, so re-running is harmless).
//
// state.Batch (attempt n, 1-based):
//
//	planned ──stage──► staged ──submit──► submitting ──► running ──poll──► succeeded
//	   ▲                  │                                 │          ├─► completedWithErrors
//	   │     SAS < 12 h   │                                 │          └─► failed
//	   └──────────────────┘◄── job-level fatal error, invalidAzureResource,
//	                           lost job: attempt n+1 (fresh containers)
//	                           until Config.MaxAttempts, then failed
//
// planned, staged and (before its job exists) submitting become cancelled
// when the migration is cancelled; a running job that is still queued is
// deleted (then cancelled); one that has started is allowed to finish.
//
// Poll messages carry the batch's poll sequence: a poll whose sequence is
// not the batch's current one is stale and dropped, so duplicated or
// re-driven polls never fork the polling chain. The drain timer re-drives
// overdue polls and stuck steps by looking only at the in-flight index.
package pipeline
