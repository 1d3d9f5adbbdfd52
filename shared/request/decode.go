package request

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
)

// FieldError is one problem with one field of a request.
type FieldError struct {
	// Field is the JSON path of the field, e.g. "source.containerUrl" or
	// "options.userMap[\"alice\"]"; empty for the body as a whole.
	Field string `json:"field"`
	// Message says what is wrong and what is expected. It never quotes a
	// secret.
	Message string `json:"message"`
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Error is returned by Decode and Validate for a request that cannot be
// accepted. It lists every problem found, so a user fixes them in one go.
type Error struct {
	Fields []FieldError `json:"errors"`
	// TooLarge is set when the body exceeded MaxBodyBytes (HTTP 413).
	TooLarge bool `json:"-"`
	// Forbidden is set when the request is well-formed but names a target
	// the deployment's Policy does not allow (HTTP 403).
	Forbidden bool `json:"-"`
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return "invalid migration request: " + strings.Join(parts, "; ")
}

// IsInvalid reports whether err (or an error it wraps) is a request
// validation error, that is a permanent, client-side problem.
func IsInvalid(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

func invalid(field, format string, args ...any) *Error {
	return &Error{Fields: []FieldError{{Field: field, Message: fmt.Sprintf(format, args...)}}}
}

// Decode reads one request from r (at most MaxBodyBytes), applies defaults and
// validates it. Any error is an *Error naming the offending fields.
func Decode(r io.Reader) (Request, error) {
	body, err := io.ReadAll(io.LimitReader(r, MaxBodyBytes+1))
	if err != nil {
		return Request{}, fmt.Errorf("read migration request: %w", err)
	}
	if len(body) > MaxBodyBytes {
		e := invalid("", "request body is larger than %d bytes", MaxBodyBytes)
		e.TooLarge = true
		return Request{}, e
	}
	return DecodeBytes(body)
}

// DecodeBytes is Decode for a body already in memory.
func DecodeBytes(body []byte) (Request, error) {
	if len(body) > MaxBodyBytes {
		e := invalid("", "request body is larger than %d bytes", MaxBodyBytes)
		e.TooLarge = true
		return Request{}, e
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return Request{}, invalid("", `empty body: expected a JSON object such as {"v":1,"source":{...},"target":{...}}`)
	}

	if e := checkRaw(body); e != nil {
		return Request{}, e
	}

	// First pass: syntax, shape and unknown fields, with JSON paths. The
	// standard decoder reports unknown fields without saying where they are.
	var generic any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return Request{}, syntaxError(body, err)
	}
	if dec.More() || !atEOF(dec) {
		return Request{}, invalid("", "unexpected data after the request object; send exactly one JSON object")
	}
	obj, ok := generic.(map[string]any)
	if !ok {
		return Request{}, invalid("", "expected a JSON object, got %s", jsonKind(generic))
	}
	var fe []FieldError
	checkShape(obj, reflect.TypeFor[Request](), "", &fe)
	if len(fe) > 0 {
		return Request{}, &Error{Fields: fe}
	}

	// Second pass: into the typed struct, strictly.
	var req Request
	dec = json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return Request{}, invalid(te.Field, "expected %s, got a JSON %s", describeType(te.Type), te.Value)
		}
		return Request{}, invalid("", "malformed request: %s", safeJSONError(err))
	}
	req.ApplyDefaults()
	if err := req.Validate(); err != nil {
		return Request{}, err
	}
	if enc, err := json.Marshal(req); err != nil || len(enc) > MaxEncodedBytes {
		e := invalid("", "request is %d bytes once encoded; at most %d can be stored: shorten options.userMap", len(enc), MaxEncodedBytes)
		e.TooLarge = true
		return Request{}, e
	}
	return req, nil
}

func atEOF(dec *json.Decoder) bool {
	_, err := dec.Token()
	return err == io.EOF
}

// syntaxError turns a JSON syntax error into a message with a line and column,
// without quoting the body (it may hold a SAS token).
func syntaxError(body []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(body, se.Offset)
		return invalid("", "invalid JSON at line %d, column %d: %s", line, col, se.Error())
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return invalid("", "invalid JSON: the body ends before the object is complete")
	}
	return invalid("", "invalid JSON: %s", safeJSONError(err))
}

func safeJSONError(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}

func position(body []byte, offset int64) (line, col int) {
	if offset > int64(len(body)) {
		offset = int64(len(body))
	}
	line, col = 1, 1
	for _, b := range body[:offset] {
		if b == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

// checkShape walks a generic JSON value against a struct type, reporting
// unknown fields and objects where something else is expected, with paths.
// Matching is exact: encoding/json would accept "ContainerURL" for
// "containerUrl", a strict format does not.
func checkShape(obj map[string]any, t reflect.Type, path string, errs *[]FieldError) {
	fields := jsonFields(t)
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := join(path, k)
		f, ok := fields[k]
		if !ok {
			*errs = append(*errs, FieldError{Field: p, Message: unknownFieldMessage(k, fields)})
			continue
		}
		v := obj[k]
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.Struct:
			switch sub := v.(type) {
			case map[string]any:
				checkShape(sub, ft, p, errs)
			case nil:
			default:
				*errs = append(*errs, FieldError{Field: p, Message: fmt.Sprintf("expected an object, got %s", jsonKind(v))})
			}
		case reflect.Map:
			switch sub := v.(type) {
			case map[string]any:
				for mk, mv := range sub {
					if _, isString := mv.(string); !isString {
						*errs = append(*errs, FieldError{Field: fmt.Sprintf("%s[%q]", p, mk), Message: fmt.Sprintf("expected a string, got %s", jsonKind(mv))})
					}
				}
			case nil:
			default:
				*errs = append(*errs, FieldError{Field: p, Message: fmt.Sprintf("expected an object of strings, got %s", jsonKind(v))})
			}
		}
	}
}

func unknownFieldMessage(k string, known map[string]reflect.StructField) string {
	names := make([]string, 0, len(known))
	suggestion := ""
	for n := range known {
		names = append(names, n)
		if strings.EqualFold(n, k) {
			suggestion = n
		}
	}
	sort.Strings(names)
	if suggestion != "" {
		return fmt.Sprintf("unknown field; did you mean %q? (names are case-sensitive)", suggestion)
	}
	return fmt.Sprintf("unknown field; expected one of %s", strings.Join(names, ", "))
}

func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := make(map[string]reflect.StructField)
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func describeType(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Map:
		return "an object"
	case reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return describeType(t.Elem())
	}
	return t.String()
}
