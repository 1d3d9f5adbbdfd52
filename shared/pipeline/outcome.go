package pipeline

import (
	"errors"
	"fmt"
	"time"

	"github.com/spemigrate/spemigrate/shared/graph"
	"github.com/spemigrate/spemigrate/shared/request"
	"github.com/spemigrate/spemigrate/shared/state"
)

// Verdict is what should happen to a message after its step ran.
type Verdict int

// Verdicts.
const (
	// Done: the message is finished with (success, or an outcome the step
	// recorded itself, such as a failed batch).
	Done Verdict = iota
	// RetryNow: deliver the message again (a transient failure).
	RetryNow
	// RetryAt: deliver it again, not before Outcome.At.
	RetryAt
	// Permanent: delivering it again cannot succeed; drop it and record
	// Outcome.Reason.
	Permanent
)

func (v Verdict) String() string {
	switch v {
	case Done:
		return "done"
	case RetryNow:
		return "retry now"
	case RetryAt:
		return "retry at"
	case Permanent:
		return "permanent"
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// Outcome is the classified result of one step.
type Outcome struct {
	Verdict Verdict
	At      time.Time // RetryAt only
	Reason  string    // Permanent and the retries: why, free of secrets
}

// permanentError marks an error whose message cannot succeed on
// redelivery; it is set where that fact is known.
type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// MarkPermanent marks err as one that redelivery cannot fix.
func MarkPermanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// Classify is the one place that decides whether a message is redelivered.
// Permanence is marked where the fact is known ([MarkPermanent]); beyond
// that, an entity that does not exist and an invalid request are
// permanent, a throttle with a known wait is RetryAt, and anything else is
// transient.
func Classify(err error, now time.Time) Outcome {
	var pe *permanentError
	switch {
	case err == nil:
		return Outcome{Verdict: Done}
	case errors.As(err, &pe), errors.Is(err, state.ErrNotFound), request.IsInvalid(err):
		return Outcome{Verdict: Permanent, Reason: err.Error()}
	}
	if d, ok := graph.RetryAfter(err); ok && d > 0 {
		return Outcome{Verdict: RetryAt, At: now.Add(d), Reason: err.Error()}
	}
	return Outcome{Verdict: RetryNow, Reason: err.Error()}
}
