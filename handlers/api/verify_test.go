package api

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/spemigrate/spemigrate/shared/verify"
)

type fakeVerifier struct{ samples []float64 }

func (f *fakeVerifier) Verify(_ context.Context, id string, sample float64) (*Verification, error) {
	f.samples = append(f.samples, sample)
	switch id {
	case "running":
		return nil, fmt.Errorf("migration running is running: %w", ErrNotFinished)
	case "gone":
		return nil, fmt.Errorf("read: %w", ErrNotFound)
	}
	return &Verification{ID: id, OK: true, Result: &verify.Result{Passed: 1, Items: []verify.ItemResult{{Status: verify.Passed}}}}, nil
}

// The verify route maps the verifier's answers to statuses and checks sample.
func TestVerifyRoute(t *testing.T) {
	s, _, _ := newServer()
	fv := &fakeVerifier{}
	s.Verifier = fv
	h := s.Handler()
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/api/migrations/done/verify", http.StatusOK},
		{"/api/migrations/done/verify?sample=0.25", http.StatusOK},
		{"/api/migrations/running/verify", http.StatusConflict},
		{"/api/migrations/gone/verify", http.StatusNotFound},
		{"/api/migrations/done/verify?sample=2", http.StatusBadRequest},
		{"/api/migrations/bad%20id/verify", http.StatusNotFound},
	} {
		if r := do(t, h, http.MethodPost, tc.path, nil); r.Code != tc.code {
			t.Errorf("POST %s: %d %s, want %d", tc.path, r.Code, r.Body, tc.code)
		}
	}
	if len(fv.samples) != 4 || fv.samples[1] != 0.25 {
		t.Errorf("verifier called with samples %v", fv.samples)
	}
	s.Verifier = nil
	if r := do(t, s.Handler(), http.MethodPost, "/api/migrations/done/verify", nil); r.Code != http.StatusNotImplemented {
		t.Errorf("no verifier: %d", r.Code)
	}
}
