package handlers

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/spemigrate/spemigrate/shared/pipeline"
	"github.com/spemigrate/spemigrate/shared/queue"
)

func TestStepHandlerClassifiesFailures(t *testing.T) {
	submit, err := queue.Submit("m-1", "000001", 1).Encode()
	if err != nil {
		t.Fatal(err)
	}
	poll, err := queue.Poll("m-1", "000001", 1, 0).Encode()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		body      []byte
		runErr    error
		wantRun   bool
		wantErr   bool
		permanent bool
	}{
		{"success", submit, nil, true, false, false},
		{"undecodable body", []byte(`{"v":1,"step":`), nil, false, true, true},
		{"another step's message", poll, nil, false, true, true},
		{"unknown migration", submit, fmt.Errorf("load: %w", pipeline.ErrNotFound), true, true, true},
		{"transient failure", submit, errors.New("table storage: 503"), true, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ran := false
			h := StepHandler(queue.StepSubmit, func(_ context.Context, m queue.Message) error {
				ran = true
				if m.MigrationID != "m-1" || m.BatchID != "000001" {
					t.Errorf("step got %+v", m)
				}
				return c.runErr
			})
			err := h(context.Background(), c.body, MessageMeta{})
			if ran != c.wantRun {
				t.Errorf("step ran = %v, want %v", ran, c.wantRun)
			}
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if err != nil && IsPermanent(err) != c.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, IsPermanent(err), c.permanent)
			}
		})
	}
}
