package pipeline

import (
	"strings"
	"testing"

	"github.com/spemigrate/spemigrate/shared/state"
)

// authorStager is the fake stager with authors: every item under docs/a
// names one.
type authorStager struct{ fakeStager }

func (authorStager) AuthorLogin(_ *state.Migration, it state.Item) string {
	if strings.HasPrefix(it.Path, "docs/a/") {
		return "i:0#.f|membership|alice@contoso.example"
	}
	return ""
}

// TestAuthorOutcome: SharePoint's documented warnings for an author it
// could not resolve make the item's author outcome a fallback naming the
// login and what replaced it; an author without a warning is mapped; an
// item without one is not applicable.
func TestAuthorOutcome(t *testing.T) {
	h := newHarness(t, func(h *harness, d *Deps, _ *Config) {
		d.Stager = authorStager{fakeStager{h.w}}
		h.w.warn = map[string]string{
			"docs/a/file01.txt": "Failed to ensure user 'i:0#.f|membership|gone@former.example'",
			"docs/a/file02.txt": "Failed to retrieve user 'i:0#.f|membership|left@former.example' attributes from the SiteUsers; falling back to passed in values",
			"empty.txt":         "Some other warning",
		}
	})
	h.start()
	h.run(false)
	for path, want := range map[string][3]string{
		"docs/a/file00.txt": {"mapped", "i:0#.f|membership|alice@contoso.example", ""},
		"docs/a/file01.txt": {"fallback", "i:0#.f|membership|gone@former.example", state.FallbackSystemAccount},
		"docs/a/file02.txt": {"fallback", "i:0#.f|membership|left@former.example", state.FallbackDeletedUser},
		"empty.txt":         {"not-applicable", "", ""},
	} {
		r, ok := h.st.results[migID+"|"+path]
		if !ok {
			t.Fatalf("no result for %s", path)
		}
		if got := [3]string{string(r.AuthorOutcome), r.AuthorLogin, r.AuthorFallback}; got != want || r.Outcome != state.OutcomeImported {
			t.Errorf("%s: %s author %v, want %v", path, r.Outcome, got, want)
		}
	}
	if r := h.st.results[migID+"|docs/c/reject.exe"]; r.Outcome != state.OutcomeFailed || r.AuthorOutcome != "" {
		t.Errorf("failed item: %s author %q", r.Outcome, r.AuthorOutcome)
	}
}
