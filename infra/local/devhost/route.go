package devhost

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// routeTemplate is an ASP.NET-style route template relative to the route
// prefix: literal segments, {name}, {name:constraint}, {name?}, {*rest}.
type routeTemplate struct {
	text     string
	segments []routeSegment
}

type routeSegment struct {
	literal    string // set for literal segments
	param      string
	constraint string
	optional   bool
	catchAll   bool
}

var paramRE = regexp.MustCompile(`^\{(\*{1,2})?([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+(?:\([^)]*\))?))?(=[^}]*)?(\?)?\}$`)

var knownConstraints = map[string]bool{"int": true, "long": true, "bool": true, "guid": true, "alpha": true, "double": true, "decimal": true, "float": true, "datetime": true}

func parseRoute(tmpl string) (*routeTemplate, error) {
	t := &routeTemplate{text: tmpl}
	tmpl = strings.Trim(tmpl, "/")
	if tmpl == "" {
		return t, nil
	}
	parts := strings.Split(tmpl, "/")
	for i, p := range parts {
		if !strings.ContainsAny(p, "{}") {
			if p == "" {
				return nil, errors.New("empty path segment")
			}
			t.segments = append(t.segments, routeSegment{literal: p})
			continue
		}
		m := paramRE.FindStringSubmatch(p)
		if m == nil {
			return nil, fmt.Errorf("segment %q: the dev host supports whole-segment parameters only ({name}, {name:int}, {name?}, {*rest})", p)
		}
		seg := routeSegment{param: m[2], catchAll: m[1] != "", optional: m[5] != "" || m[4] != ""}
		if m[3] != "" {
			seg.constraint = strings.ToLower(m[3])
			if !knownConstraints[seg.constraint] {
				return nil, fmt.Errorf("segment %q: constraint %q is not supported by the dev host", p, m[3])
			}
		}
		if seg.catchAll && i != len(parts)-1 {
			return nil, fmt.Errorf("catch-all %q must be the last segment", p)
		}
		t.segments = append(t.segments, seg)
	}
	return t, nil
}

// match matches the path segments after the route prefix.
func (t *routeTemplate) match(path []string) (map[string]string, bool) {
	params := map[string]string{}
	for i, seg := range t.segments {
		if seg.catchAll {
			if i < len(path) {
				params[seg.param] = strings.Join(path[i:], "/")
			}
			return params, true
		}
		if i >= len(path) {
			if seg.optional && i == len(t.segments)-1 {
				return params, true
			}
			return nil, false
		}
		if seg.literal != "" {
			if !strings.EqualFold(seg.literal, path[i]) {
				return nil, false
			}
			continue
		}
		if !constraintOK(seg.constraint, path[i]) {
			return nil, false
		}
		params[seg.param] = path[i]
	}
	if len(path) != len(t.segments) {
		return nil, false
	}
	return params, true
}

var guidRE = regexp.MustCompile(`^(?i)\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?$`)

func constraintOK(c, v string) bool {
	var err error
	switch c {
	case "":
		return true
	case "int":
		_, err = strconv.ParseInt(v, 10, 32)
	case "long":
		_, err = strconv.ParseInt(v, 10, 64)
	case "bool":
		_, err = strconv.ParseBool(v)
	case "double", "decimal", "float":
		_, err = strconv.ParseFloat(v, 64)
	case "guid":
		return guidRE.MatchString(v)
	case "datetime":
		for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
			if _, e := time.Parse(layout, v); e == nil {
				return true
			}
		}
		return false
	case "alpha":
		for _, r := range v {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
	}
	return err == nil
}

// precedence orders templates the way ASP.NET routing does, segment by
// segment: literal < constrained parameter < parameter < catch-all (lower
// wins).
func (t *routeTemplate) precedence() []int {
	out := make([]int, 0, len(t.segments))
	for _, s := range t.segments {
		switch {
		case s.literal != "":
			out = append(out, 1)
		case s.catchAll:
			out = append(out, 5)
		case s.optional:
			out = append(out, 4)
		case s.constraint != "":
			out = append(out, 2)
		default:
			out = append(out, 3)
		}
	}
	return out
}

func lessPrecedence(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) > len(b)
}
