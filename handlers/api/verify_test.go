package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/spemigrate/spemigrate/shared/verify"
)

type fakeVerifier struct {
	samples []float64
	uploads []VerificationUpload
}

func (f *fakeVerifier) Record(_ context.Context, id string, up VerificationUpload) error {
	if id == "running" {
		return fmt.Errorf("migration running is running: %w", ErrNotFinished)
	}
	f.uploads = append(f.uploads, up)
	return nil
}

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

// PUT .../verification takes a run made elsewhere and refuses a malformed
// one naming the field.
func TestVerificationUploadRoute(t *testing.T) {
	s, _, _ := newServer()
	fv := &fakeVerifier{}
	s.Verifier = fv
	h := s.Handler()
	good := `{"at":"2026-12-02T14:00:00.5Z","items":[{"source":"a.txt","target":"T/a.txt","status":"failed","checked":["size"],"problems":["size 1, source 2"],"targetItemId":"01AB","targetListItemId":"1001"}],"goneFromSource":["b.txt"],"summary":{"at":"2026-12-02T14:00:00.5Z","passed":0,"failed":1,"missing":0,"notCompared":1}}`
	many := `{"at":"2026-12-02T14:00:00Z","items":[` + strings.TrimSuffix(strings.Repeat(`{"source":"a","status":"passed"},`, UploadItems+1), ",") + `]}`
	for _, tc := range []struct {
		path, body, field string
		code              int
	}{
		{"/api/migrations/done/verification", good, "", http.StatusNoContent},
		{"/api/migrations/running/verification", good, "", http.StatusConflict},
		{"/api/migrations/done/verification", `{"items":[]}`, "at", http.StatusBadRequest},
		{"/api/migrations/done/verification", `{"at":"2026-12-02T14:00:00Z","items":[{"source":"a","status":"great"}]}`, "items[0]", http.StatusBadRequest},
		{"/api/migrations/done/verification", `{"at":"2026-12-02T14:00:00Z","extra":1}`, "", http.StatusBadRequest},
		{"/api/migrations/done/verification", many, "items", http.StatusBadRequest},
	} {
		r := do(t, h, http.MethodPut, tc.path, []byte(tc.body))
		if r.Code != tc.code || (tc.field != "" && !strings.Contains(string(r.Body), `"field": "`+tc.field+`"`)) {
			t.Errorf("PUT %s %.60s: %d %s, want %d naming %q", tc.path, tc.body, r.Code, r.Body, tc.code, tc.field)
		}
	}
	if len(fv.uploads) != 1 || fv.uploads[0].Items[0].TargetItemID != "01AB" || fv.uploads[0].Summary.NotCompared != 1 || fv.uploads[0].Gone[0] != "b.txt" {
		t.Errorf("uploads %+v", fv.uploads)
	}
}
