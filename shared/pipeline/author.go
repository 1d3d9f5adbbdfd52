package pipeline

import (
	"regexp"

	"github.com/spemigrate/spemigrate/shared/state"
)

// Authorer is optionally implemented by the [Stager]: the login the
// package names as an item's author ("" when it names none), so the
// report can tell an author that arrived from one SharePoint replaced.
type Authorer interface {
	AuthorLogin(m *state.Migration, it state.Item) string
}

// The warnings SharePoint gives when it cannot resolve a package's user
// (spec §6.3, UserGroup.xml rules), with the fallback each means.
var authorFallbacks = []struct {
	re   *regexp.Regexp
	used string
}{
	{regexp.MustCompile(`(?i)Failed to ensure user '([^']*)'`), state.FallbackSystemAccount},
	{regexp.MustCompile(`(?i)Failed to retrieve user '([^']*)' attributes from the SiteUsers`), state.FallbackDeletedUser},
}

// setAuthor records what became of an imported item's author: a fallback,
// with the login that did not resolve, when one of the item's warnings
// says SharePoint replaced a user; mapped when the package named an
// author; otherwise not applicable.
func (e *Engine) setAuthor(m *state.Migration, it state.Item, warnings string, r *state.ItemResult) {
	r.AuthorOutcome = state.AuthorNotApplicable
	if a, ok := e.Stager.(Authorer); ok {
		if r.AuthorLogin = a.AuthorLogin(m, it); r.AuthorLogin != "" {
			r.AuthorOutcome = state.AuthorMapped
		}
	}
	for _, f := range authorFallbacks {
		if sub := f.re.FindStringSubmatch(warnings); sub != nil {
			r.AuthorOutcome, r.AuthorLogin, r.AuthorFallback = state.AuthorFallback, sub[1], f.used
			return
		}
	}
}
