package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/spemigrate/spemigrate/shared/graph"
)

// Event is one persisted progress event of a batch's migration job.
type Event struct {
	MigrationID string
	BatchID     string
	ID          string // the service's event id; stored once
	JobID       string
	Kind        string // e.g. "progress", "error" (graph.EventKind)
	Time        time.Time
	// Raw is the event JSON as received (at most 32 KiB kept).
	Raw string
}

func eventPK(migrationID, batchID string) string { return migrationID + "|" + batchID }

// AddEvent stores ev unless an event with its id is already stored for the
// batch; added reports which. Re-reading a page therefore never duplicates.
func (s *Store) AddEvent(ctx context.Context, ev Event) (added bool, err error) {
	data, err := eventEntity(ev)
	if err != nil {
		return false, err
	}
	_, err = s.events.AddEntity(ctx, data, nil)
	if isConflict(err) {
		return false, nil
	}
	if err != nil {
		return false, storageErr("store event "+ev.ID, err)
	}
	return true, nil
}

func eventEntity(ev Event) ([]byte, error) {
	if err := errors.Join(checkKey("migration id", ev.MigrationID), checkKey("batch id", ev.BatchID), checkKey("event id", ev.ID)); err != nil {
		return nil, err
	}
	p := props{}
	p.setStr("MigrationID", ev.MigrationID)
	p.setStr("BatchID", ev.BatchID)
	p.setStr("JobID", ev.JobID)
	p.setStr("Kind", ev.Kind)
	p.setTime("EventTime", ev.Time)
	raw := ev.Raw
	if len(raw) > maxStringProp {
		raw = raw[:maxStringProp]
	}
	p.setStr("Raw", raw)
	return marshalEntity(eventPK(ev.MigrationID, ev.BatchID), ev.ID, p)
}

// maxEventTxBytes keeps an event transaction under Table Storage's 4 MiB
// request limit.
const maxEventTxBytes = 3 << 20

// PutEvents stores a page of Graph progress events for a batch, each once
// by id, and reports how many were new. The page goes in transactions of up
// to 100 inserts (one partition per batch); a transaction that fails
// because a page was read again is redone event by event.
func (s *Store) PutEvents(ctx context.Context, migrationID, batchID string, events []graph.Event) (added int, err error) {
	var evs []Event
	var datas [][]byte
	seen := map[string]bool{}
	for i := range events {
		ev := &events[i]
		raw, err := json.Marshal(ev)
		if err != nil {
			return added, fmt.Errorf("state: encode event %s: %w", ev.ID, err)
		}
		e := Event{
			MigrationID: migrationID, BatchID: batchID, ID: ev.ID, JobID: ev.JobID,
			Kind: string(ev.Kind), Time: ev.Time, Raw: string(raw),
		}
		data, err := eventEntity(e)
		if err != nil {
			return added, err
		}
		if seen[e.ID] {
			continue
		}
		seen[e.ID] = true
		evs, datas = append(evs, e), append(datas, data)
	}
	for len(evs) > 0 {
		n, size := 0, 0
		for n < len(evs) && n < 100 && (n == 0 || size+len(datas[n]) <= maxEventTxBytes) {
			size += len(datas[n])
			n++
		}
		actions := make([]aztables.TransactionAction, n)
		for i := range n {
			actions[i] = aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: datas[i]}
		}
		_, err := s.events.SubmitTransaction(ctx, actions, nil)
		var re *azcore.ResponseError
		switch {
		case err == nil:
			added += n
		case errors.As(err, &re):
			for _, ev := range evs[:n] {
				ok, err := s.AddEvent(ctx, ev)
				if err != nil {
					return added, err
				}
				if ok {
					added++
				}
			}
		default:
			return added, storageErr("store events of "+migrationID+"/"+batchID, err)
		}
		evs, datas = evs[n:], datas[n:]
	}
	return added, nil
}

// ListEvents returns a batch's stored events in time order, decoded;
// with jobID non-empty, only that job's.
func (s *Store) ListEvents(ctx context.Context, migrationID, batchID, jobID string) ([]graph.Event, error) {
	if err := checkBatchKeys(migrationID, batchID); err != nil {
		return nil, err
	}
	var stored []Event
	filter := "PartitionKey eq " + quote(eventPK(migrationID, batchID))
	if jobID != "" {
		filter += " and JobID eq " + quote(jobID)
	}
	err := s.list(ctx, s.events, filter, 0, func(e rawEntity) {
		stored = append(stored, Event{
			MigrationID: e.p.str("MigrationID"), BatchID: e.p.str("BatchID"), ID: e.rk,
			JobID: e.p.str("JobID"), Kind: e.p.str("Kind"), Time: e.p.time("EventTime"), Raw: e.p.str("Raw"),
		})
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(stored, func(i, j int) bool { return stored[i].Time.Before(stored[j].Time) })
	out := make([]graph.Event, 0, len(stored))
	for _, se := range stored {
		var ev graph.Event
		if err := json.Unmarshal([]byte(se.Raw), &ev); err != nil {
			return nil, fmt.Errorf("state: decode stored event %s of batch %s/%s: %w", se.ID, migrationID, batchID, err)
		}
		out = append(out, ev)
	}
	return out, nil
}
