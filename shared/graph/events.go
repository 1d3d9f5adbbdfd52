package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EventKind says which of the sharePointMigrationEvent subtypes (spec §3.4)
// an [Event] is.
type EventKind string

// Event kinds. KindUnknown covers @odata.type values this client does not
// know; such events are kept (with Raw) and otherwise ignored.
const (
	KindQueued             EventKind = "queued"
	KindPostponed          EventKind = "postponed"
	KindStart              EventKind = "start"
	KindProgress           EventKind = "progress"
	KindError              EventKind = "error"
	KindCancelled          EventKind = "cancelled"
	KindDeleted            EventKind = "deleted"
	KindManifestFileUpload EventKind = "finishManifestFileUpload"
	KindUnknown            EventKind = "unknown"
)

var kindByType = map[string]EventKind{
	"sharepointmigrationjobqueuedevent":                KindQueued,
	"sharepointmigrationjobpostponedevent":             KindPostponed,
	"sharepointmigrationjobstartevent":                 KindStart,
	"sharepointmigrationjobprogressevent":              KindProgress,
	"sharepointmigrationjoberrorevent":                 KindError,
	"sharepointmigrationjobcancelledevent":             KindCancelled,
	"sharepointmigrationjobdeletedevent":               KindDeleted,
	"sharepointmigrationfinishmanifestfileuploadevent": KindManifestFileUpload,
}

// kindOf maps "#microsoft.graph.sharePointMigrationJobQueuedEvent" (with or
// without '#' and namespace, any case) to its kind.
func kindOf(odataType string) EventKind {
	t := strings.ToLower(strings.TrimPrefix(odataType, "#"))
	if i := strings.LastIndexByte(t, '.'); i >= 0 {
		t = t[i+1:]
	}
	if k, ok := kindByType[t]; ok {
		return k
	}
	return KindUnknown
}

// ErrorLevel is sharePointMigrationJobErrorLevel, normalised to the
// schema's camelCase whatever casing the service sent (spec §3.5).
type ErrorLevel string

// Error levels.
const (
	LevelImportant  ErrorLevel = "important"
	LevelWarning    ErrorLevel = "warning"
	LevelError      ErrorLevel = "error"
	LevelFatalError ErrorLevel = "fatalError"
	LevelUnknown    ErrorLevel = "unknownFutureValue"
)

// Failing reports whether the level makes the job unsuccessful (spec §7.4).
func (l ErrorLevel) Failing() bool { return l == LevelError || l == LevelFatalError }

// ObjectType is sharePointMigrationObjectType, normalised to camelCase.
type ObjectType string

// Object types.
const (
	ObjectSite             ObjectType = "site"
	ObjectWeb              ObjectType = "web"
	ObjectFolder           ObjectType = "folder"
	ObjectList             ObjectType = "list"
	ObjectListItem         ObjectType = "listItem"
	ObjectFile             ObjectType = "file"
	ObjectAlert            ObjectType = "alert"
	ObjectSharedWithObject ObjectType = "sharedWithObject"
	ObjectInvalid          ObjectType = "invalid"
	ObjectUnknown          ObjectType = "unknownFutureValue"
)

func canonical[T ~string](v string, known ...T) T {
	for _, k := range known {
		if strings.EqualFold(v, string(k)) {
			return k
		}
	}
	return T(v)
}

// UnmarshalJSON accepts any casing and numeric forms (0-4).
func (l *ErrorLevel) UnmarshalJSON(b []byte) error {
	s, err := enumString(b, []string{"important", "warning", "error", "fatalError", "unknownFutureValue"})
	if err != nil {
		return fmt.Errorf("errorLevel: %w", err)
	}
	*l = canonical(s, LevelImportant, LevelWarning, LevelError, LevelFatalError, LevelUnknown)
	return nil
}

// UnmarshalJSON accepts any casing.
func (o *ObjectType) UnmarshalJSON(b []byte) error {
	s, err := enumString(b, []string{"site", "web", "folder", "list", "listItem", "file", "alert", "sharedWithObject", "invalid", "unknownFutureValue"})
	if err != nil {
		return fmt.Errorf("objectType: %w", err)
	}
	*o = canonical(s, ObjectSite, ObjectWeb, ObjectFolder, ObjectList, ObjectListItem, ObjectFile, ObjectAlert, ObjectSharedWithObject, ObjectInvalid, ObjectUnknown)
	return nil
}

func enumString(b []byte, byIndex []string) (string, error) {
	if bytes.Equal(b, []byte("null")) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		return s, nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		if n >= 0 && n < len(byIndex) {
			return byIndex[n], nil
		}
		return strconv.Itoa(n), nil
	}
	return "", fmt.Errorf("unexpected value %s", b)
}

// Int64 decodes an OData Int64, which may arrive as a number or (with
// IEEE754Compatible) as a string.
type Int64 int64

// UnmarshalJSON implements json.Unmarshaler.
func (n *Int64) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	b = bytes.Trim(b, `"`)
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(b), 64)
		if ferr != nil {
			return fmt.Errorf("not an integer: %s", b)
		}
		v = int64(f)
	}
	*n = Int64(v)
	return nil
}

// Progress holds sharePointMigrationJobProgressEvent's properties.
type Progress struct {
	IsCompleted                      bool   `json:"isCompleted"`
	FilesProcessed                   Int64  `json:"filesProcessed"`
	FilesProcessedOnlyCurrentVersion Int64  `json:"filesProcessedOnlyCurrentVersion"`
	BytesProcessed                   Int64  `json:"bytesProcessed"`
	BytesProcessedOnlyCurrentVersion Int64  `json:"bytesProcessedOnlyCurrentVersion"`
	ObjectsProcessed                 Int64  `json:"objectsProcessed"`
	TotalExpectedObjects             Int64  `json:"totalExpectedObjects"`
	TotalExpectedBytes               Int64  `json:"totalExpectedBytes"`
	TotalErrors                      Int64  `json:"totalErrors"`
	TotalWarnings                    Int64  `json:"totalWarnings"`
	TotalRetryCount                  Int64  `json:"totalRetryCount"`
	LastProcessedObjectID            string `json:"lastProcessedObjectId"`
	TotalDurationMs                  Int64  `json:"totalDurationMs"`
	CPUDurationMs                    Int64  `json:"cpuDurationMs"`
	SQLDurationMs                    Int64  `json:"sqlDurationMs"`
	SQLQueryCount                    Int64  `json:"sqlQueryCount"`
	WaitTimeOnSQLThrottlingMs        Int64  `json:"waitTimeOnSqlThrottlingMs"`
}

// JobError holds sharePointMigrationJobErrorEvent's properties.
type JobError struct {
	Level           ErrorLevel  `json:"errorLevel"`
	ObjectID        string      `json:"objectId"`
	ObjectType      ObjectType  `json:"objectType"`
	ObjectURL       string      `json:"objectUrl"` // library-relative, e.g. "Document Library/a.pdf"
	TotalRetryCount Int64       `json:"totalRetryCount"`
	Error           PublicError `json:"error"`
}

// PublicError is publicError as used in error events: Code is the
// SharePoint HRESULT as a signed decimal string.
type PublicError struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Target    string `json:"target"`
	ErrorType string `json:"errorType"` // non-schema, seen in the docs
}

// Postponed holds sharePointMigrationJobPostponedEvent's properties.
type Postponed struct {
	JobsInQueue        Int64     `json:"jobsInQueue"`
	NextPickupDateTime time.Time `json:"nextPickupDateTime"`
	Reason             string    `json:"reason"`
	TotalRetryCount    Int64     `json:"totalRetryCount"`
}

// Start holds sharePointMigrationJobStartEvent's properties.
type Start struct {
	IsRestarted     bool  `json:"isRestarted"`
	TotalRetryCount Int64 `json:"totalRetryCount"`
}

// Cancelled holds sharePointMigrationJobCancelledEvent's properties.
type Cancelled struct {
	IsCancelledByUser bool  `json:"isCancelledByUser"`
	TotalRetryCount   Int64 `json:"totalRetryCount"`
}

// Event is one progress event. Exactly one of the kind-specific pointers is
// set for the kinds that carry properties; Raw is the event as received, for
// persisting.
type Event struct {
	Kind          EventKind
	ODataType     string
	ID            string
	JobID         string
	CorrelationID string
	Time          time.Time

	Progress         *Progress  // KindProgress
	Error            *JobError  // KindError
	Postponed        *Postponed // KindPostponed
	Start            *Start     // KindStart
	Cancelled        *Cancelled // KindCancelled
	ManifestFileName string     // KindManifestFileUpload

	Raw json.RawMessage
}

// Completed reports whether this is the job's end event (spec §7.4: the
// only completion signal).
func (e *Event) Completed() bool {
	return e.Kind == KindProgress && e.Progress != nil && e.Progress.IsCompleted
}

// UnmarshalJSON decodes any event subtype, discriminating on @odata.type.
// Unknown properties and unknown types are tolerated.
func (e *Event) UnmarshalJSON(b []byte) error {
	var base struct {
		ODataType     string    `json:"@odata.type"`
		ID            string    `json:"id"`
		JobID         string    `json:"jobId"`
		CorrelationID string    `json:"correlationId"`
		EventDateTime time.Time `json:"eventDateTime"`
	}
	if err := json.Unmarshal(b, &base); err != nil {
		return fmt.Errorf("migration event: %w", err)
	}
	*e = Event{
		Kind:          kindOf(base.ODataType),
		ODataType:     base.ODataType,
		ID:            base.ID,
		JobID:         base.JobID,
		CorrelationID: base.CorrelationID,
		Time:          base.EventDateTime,
		Raw:           append(json.RawMessage(nil), b...),
	}
	var err error
	switch e.Kind {
	case KindProgress:
		e.Progress = new(Progress)
		err = json.Unmarshal(b, e.Progress)
	case KindError:
		e.Error = new(JobError)
		err = json.Unmarshal(b, e.Error)
	case KindPostponed:
		e.Postponed = new(Postponed)
		err = json.Unmarshal(b, e.Postponed)
	case KindStart:
		e.Start = new(Start)
		err = json.Unmarshal(b, e.Start)
	case KindCancelled:
		e.Cancelled = new(Cancelled)
		err = json.Unmarshal(b, e.Cancelled)
	case KindManifestFileUpload:
		var m struct {
			Name string `json:"manifestFileName"`
		}
		err = json.Unmarshal(b, &m)
		e.ManifestFileName = m.Name
	}
	if err != nil {
		return fmt.Errorf("migration event %s (%s): %w", e.ID, e.Kind, err)
	}
	return nil
}

// MarshalJSON writes Raw back, so a decoded event round-trips unchanged.
func (e Event) MarshalJSON() ([]byte, error) {
	if len(e.Raw) > 0 {
		return e.Raw, nil
	}
	return json.Marshal(struct {
		ODataType     string    `json:"@odata.type,omitempty"`
		ID            string    `json:"id"`
		JobID         string    `json:"jobId,omitempty"`
		CorrelationID string    `json:"correlationId,omitempty"`
		EventDateTime time.Time `json:"eventDateTime"`
	}{e.ODataType, e.ID, e.JobID, e.CorrelationID, e.Time})
}
