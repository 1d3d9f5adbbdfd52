// Package queue defines the messages that chain spemigrate's steps through
// Service Bus and sends them.
//
// Messages carry ids only (migration, batch, page, attempt, poll sequence);
// Table Storage holds the truth. Each body is a versioned JSON object,
// {"v":1,"step":"poll","migrationId":"…","batchId":"…","attempt":1,"seq":4},
// and each message's MessageId is derived from its content, so Service Bus
// duplicate detection drops a message a re-run step sends twice.
package queue

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Version is the message format this package writes and reads.
const Version = 1

// Step names a pipeline step; each has its own queue.
type Step string

// Steps.
const (
	// StepProvision plans one source page of a migration into batches. Its
	// queue also receives users' migration requests (see [IsStepMessage]).
	StepProvision Step = "provision"
	// StepStageBatch provisions containers for a batch and stages it.
	StepStageBatch Step = "stage-batch"
	// StepSubmit creates the batch's migration job.
	StepSubmit Step = "submit"
	// StepPoll drains the job's progress events.
	StepPoll Step = "poll"
)

// Steps lists every step.
var Steps = []Step{StepProvision, StepStageBatch, StepSubmit, StepPoll}

// Message is one step's work order.
type Message struct {
	V           int    `json:"v"`
	Step        Step   `json:"step"`
	MigrationID string `json:"migrationId"`
	// BatchID is required for every step but provision.
	BatchID string `json:"batchId,omitempty"`
	// Page is the source page to plan (provision).
	Page int `json:"page,omitempty"`
	// Attempt is the batch attempt (stage-batch, submit, poll), from 1.
	Attempt int `json:"attempt,omitempty"`
	// Seq is the batch's poll sequence (poll).
	Seq int `json:"seq,omitempty"`
	// Nonce makes a deliberate re-drive distinct from the original for
	// duplicate detection.
	Nonce string `json:"nonce,omitempty"`

	// NotBefore schedules the message; zero sends it now. Not part of the
	// body.
	NotBefore time.Time `json:"-"`
}

// Provision, StageBatch, Submit and Poll build v1 messages.
func Provision(migrationID string, page int) Message {
	return Message{V: Version, Step: StepProvision, MigrationID: migrationID, Page: page}
}

// StageBatch builds a stage-batch message.
func StageBatch(migrationID, batchID string, attempt int) Message {
	return Message{V: Version, Step: StepStageBatch, MigrationID: migrationID, BatchID: batchID, Attempt: attempt}
}

// Submit builds a submit message.
func Submit(migrationID, batchID string, attempt int) Message {
	return Message{V: Version, Step: StepSubmit, MigrationID: migrationID, BatchID: batchID, Attempt: attempt}
}

// Poll builds a poll message.
func Poll(migrationID, batchID string, attempt, seq int) Message {
	return Message{V: Version, Step: StepPoll, MigrationID: migrationID, BatchID: batchID, Attempt: attempt, Seq: seq}
}

// Validate names the first missing or bad field.
func (m Message) Validate() error {
	if m.V != Version {
		return fmt.Errorf("queue: message version %d is not supported (this build reads v%d)", m.V, Version)
	}
	var errs []error
	field := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("queue: %s message: %s: %s", m.Step, name, fmt.Sprintf(format, args...)))
	}
	switch m.Step {
	case StepProvision, StepStageBatch, StepSubmit, StepPoll:
	case "":
		return errors.New("queue: message: step is missing")
	default:
		return fmt.Errorf("queue: message: step %q is unknown (want provision, stage-batch, submit or poll)", m.Step)
	}
	if strings.TrimSpace(m.MigrationID) == "" {
		field("migrationId", "is missing")
	}
	if m.Page < 0 {
		field("page", "is negative")
	}
	if m.Step != StepProvision {
		if strings.TrimSpace(m.BatchID) == "" {
			field("batchId", "is missing")
		}
		if m.Attempt < 1 {
			field("attempt", "is missing (attempts count from 1)")
		}
	}
	if m.Step == StepPoll && m.Seq < 0 {
		field("seq", "is negative")
	}
	return errors.Join(errs...)
}

// maxMessageID is Service Bus's limit on MessageId.
const maxMessageID = 128

// MessageID is derived from the message's content, so sending the same
// message twice lets Service Bus duplicate detection drop the second.
func (m Message) MessageID() string {
	var id string
	switch m.Step {
	case StepProvision:
		id = fmt.Sprintf("%s/%s/p%d", m.Step, m.MigrationID, m.Page)
	case StepPoll:
		id = fmt.Sprintf("%s/%s/%s/a%d/s%d", m.Step, m.MigrationID, m.BatchID, m.Attempt, m.Seq)
	default:
		id = fmt.Sprintf("%s/%s/%s/a%d", m.Step, m.MigrationID, m.BatchID, m.Attempt)
	}
	if m.Nonce != "" {
		id += "/" + m.Nonce
	}
	if len(id) > maxMessageID {
		sum := sha256.Sum256([]byte(id))
		id = string(m.Step) + "/" + hex.EncodeToString(sum[:])
	}
	return id
}

// Encode validates m and returns its JSON body.
func (m Message) Encode() ([]byte, error) {
	if m.V == 0 {
		m.V = Version
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// Decode parses and validates a message body. Unknown fields are ignored so
// a newer writer can add optional ones without breaking older readers;
// anything incompatible bumps "v".
func Decode(body []byte) (Message, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return Message{}, errors.New(`queue: empty message body; expected a JSON object such as {"v":1,"step":"poll",...}`)
	}
	if body[0] != '{' {
		return Message{}, errors.New("queue: message body is not a JSON object")
	}
	var probe struct {
		V *int `json:"v"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return Message{}, fmt.Errorf("queue: message body is not valid JSON: %w", err)
	}
	if probe.V == nil {
		return Message{}, errors.New(`queue: message has no version ("v")`)
	}
	if *probe.V != Version {
		return Message{}, fmt.Errorf("queue: message version %d is not supported (this build reads v%d)", *probe.V, Version)
	}
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return Message{}, fmt.Errorf("queue: message field %s: expected %s", te.Field, te.Type)
		}
		return Message{}, fmt.Errorf("queue: decode message: %w", err)
	}
	if err := m.Validate(); err != nil {
		return Message{}, err
	}
	return m, nil
}

// IsStepMessage tells a step message from a user's migration request on
// the provision queue: step messages have a "step" field, requests do not.
func IsStepMessage(body []byte) bool {
	var probe struct {
		Step *string `json:"step"`
	}
	return json.Unmarshal(body, &probe) == nil && probe.Step != nil
}
