package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/spemigrate/spemigrate/shared/request"
)

// admit applies the deployment's request.Policy to a decoded request before
// anything is stored or sent. A refusal is answered here (400 naming the
// field and the rule, or 403 for a target container outside the
// allow-list) and admit returns false. fieldPrefix places the request's
// fields in the body (a schedule carries its template under "request.").
func (s *Server) admit(w http.ResponseWriter, req request.Request, fieldPrefix string) bool {
	err := s.Policy.Check(req)
	if err == nil {
		return true
	}
	var re *request.Error
	if errors.As(err, &re) && fieldPrefix != "" {
		for i := range re.Fields {
			re.Fields[i].Field = strings.TrimSuffix(fieldPrefix+re.Fields[i].Field, ".")
		}
	}
	s.writeRequestError(w, err)
	return false
}
