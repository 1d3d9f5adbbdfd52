package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/schedule"
	"github.com/spemigrate/spemigrate/shared/state"
)

// Engine is what the functions ask of the engine; *pipeline.Engine
// implements it.
type Engine interface {
	Run(ctx context.Context, msg queue.Message) error
	Start(ctx context.Context, m *state.Migration) (created bool, err error)
	Reject(ctx context.Context, id, containerID, reason string) error
	Drain(ctx context.Context) (pipeline.DrainReport, error)
	FailBatch(ctx context.Context, migrationID, batchID, reason string) error
	FailMigration(ctx context.Context, migrationID, reason string) error
}

// DeadLetters reads and settles dead-lettered messages;
// *queue.ServiceBusDeadLetters implements it.
type DeadLetters interface {
	// Receive returns up to max dead-lettered messages of queueName
	// without waiting when there are none.
	Receive(ctx context.Context, queueName string, max int) ([]queue.DeadLetter, error)
	// Complete removes a handled message from the dead-letter subqueue.
	Complete(ctx context.Context, dl queue.DeadLetter) error
}

// App is the Functions app: every function's code over the engine.
type App struct {
	Engine Engine
	// DeadLetters is read by the drain timer; nil leaves dead letters alone.
	DeadLetters DeadLetters
	// Schedules runs the schedules timer; nil makes the timer do nothing.
	Schedules *schedule.Runner
	// API serves the HTTP functions.
	API http.Handler
	Log *slog.Logger
	// Policy says which sources and target containers requests may name
	// (request.Policy; the zero Policy is the strict one). StartMigration
	// applies it, so the queue and the schedules are both held to it.
	Policy request.Policy
	// Deadline bounds each queue invocation below the host's
	// functionTimeout (see [ServiceBus]); zero leaves it to the host.
	Deadline time.Duration
	// DeadLetterQueues are the queues whose dead letters the drain reads
	// (default: every step's queue); MaxDeadLetters bounds how many per
	// queue and run (default 100).
	DeadLetterQueues []string
	MaxDeadLetters   int
}

// Step queues' trigger binding, as their function.json names it.
const messageBinding = "msg"

// Functions maps every function (its folder name under handlers/, which
// for a step is its queue's and step's name) to its code.
func (a *App) Functions() map[string]Function {
	api := HTTP("req", "res", a.API)
	return map[string]Function{
		string(queue.StepProvision):  ServiceBusAnyBody(a.log(), messageBinding, Binary, a.Deadline, a.provision),
		string(queue.StepStageBatch): a.step(queue.StepStageBatch),
		string(queue.StepSubmit):     a.step(queue.StepSubmit),
		string(queue.StepPoll):       a.step(queue.StepPoll),
		"drain":                      Timer("tick", func(ctx context.Context, _ TimerInfo, _ time.Time) error { return a.drain(ctx) }),
		"schedules":                  Timer("tick", a.schedules),

		"api-migrations":             api,
		"api-migration":              api,
		"api-migration-items":        api,
		"api-migration-report":       api,
		"api-migration-report-jsonl": api,
		"api-migration-verify":       api,
		"api-migration-verification": api,
		"api-schedules":              api,
		"api-schedule":               api,
		"api-status":                 api,
		"api-status-migration":       api,
	}
}

func (a *App) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

// step is the function of one step queue: decode the step message, refuse
// another step's, run it.
func (a *App) step(s queue.Step) Function {
	return ServiceBus(a.log(), messageBinding, Binary, a.Deadline, func(ctx context.Context, body []byte, _ MessageMeta) error {
		return a.runStep(ctx, s, body)
	})
}

func (a *App) runStep(ctx context.Context, s queue.Step, body []byte) error {
	msg, err := queue.Decode(body)
	if err != nil {
		return pipeline.MarkPermanent(fmt.Errorf("bad %s message: %w", s, err))
	}
	if msg.Step != s {
		return pipeline.MarkPermanent(fmt.Errorf("a %s message on the %s queue (migration %s)", msg.Step, s, msg.MigrationID))
	}
	if err := a.Engine.Run(ctx, msg); err != nil {
		return fmt.Errorf("%s %s %s: %w", s, msg.MigrationID, stepSubject(msg), err)
	}
	return nil
}

func stepSubject(m queue.Message) string {
	if m.BatchID != "" {
		return "batch " + m.BatchID
	}
	return fmt.Sprintf("page %d", m.Page)
}

func (a *App) schedules(ctx context.Context, _ TimerInfo, now time.Time) error {
	if a.Schedules == nil {
		return nil
	}
	return a.Schedules.Run(ctx, now)
}
