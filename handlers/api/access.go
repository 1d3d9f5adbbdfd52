package api

import (
	"errors"
	"fmt"
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

// MaxSchedules bounds how many schedules one deployment holds: the
// schedules timer reads every one each minute, so an unbounded number
// (thousands posted by a script gone wrong) would slow every run.
const MaxSchedules = 500

// roomForSchedule answers 409 when the deployment already holds
// MaxSchedules schedules.
func (s *Server) roomForSchedule(w http.ResponseWriter, r *http.Request) bool {
	list, err := s.Schedules.List(r.Context())
	if err != nil {
		s.internal(w, r, "count schedules", err)
		return false
	}
	if len(list) >= MaxSchedules {
		writeFieldError(w, http.StatusConflict, "", fmt.Sprintf("this deployment holds %d schedules, the most it runs; delete unused ones (DELETE /api/schedules/{id}) first", len(list)))
		return false
	}
	return true
}
