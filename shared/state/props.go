package state

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// props is an entity's property bag with typed accessors, so each entity
// type converts explicitly (Int64 and DateTime need OData annotations that a
// plain struct marshal would lose).
type props map[string]any

func (p props) setStr(k, v string) {
	if v != "" {
		p[k] = v
	}
}
func (p props) setI64(k string, v int64) {
	if v != 0 {
		p[k] = aztables.EDMInt64(v)
	}
}
func (p props) setBool(k string, v bool) {
	if v {
		p[k] = true
	}
}
func (p props) setTime(k string, v time.Time) {
	if !v.IsZero() {
		p[k] = aztables.EDMDateTime(v.UTC())
	}
}

func (p props) str(k string) string {
	s, _ := p[k].(string)
	return s
}
func (p props) i64(k string) int64 {
	switch v := p[k].(type) {
	case aztables.EDMInt64:
		return int64(v)
	case int32:
		return int64(v)
	case float64:
		return int64(v)
	}
	return 0
}
func (p props) boolean(k string) bool {
	b, _ := p[k].(bool)
	return b
}
func (p props) time(k string) time.Time {
	if v, ok := p[k].(aztables.EDMDateTime); ok {
		return time.Time(v).UTC()
	}
	return time.Time{}
}

func marshalEntity(pk, rk string, p props) ([]byte, error) {
	return json.Marshal(aztables.EDMEntity{
		Entity:     aztables.Entity{PartitionKey: pk, RowKey: rk},
		Properties: p,
	})
}

type rawEntity struct {
	pk, rk string
	p      props
	etag   azcore.ETag
}

func unmarshalEntity(data []byte, etag azcore.ETag) (rawEntity, error) {
	var e aztables.EDMEntity
	if err := json.Unmarshal(data, &e); err != nil {
		return rawEntity{}, fmt.Errorf("state: decode entity: %w", err)
	}
	if etag == "" && e.ETag != "" {
		etag = azcore.ETag(e.ETag)
	}
	return rawEntity{pk: e.PartitionKey, rk: e.RowKey, p: props(e.Properties), etag: etag}, nil
}

// quote makes an OData string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// checkKey rejects characters Table Storage refuses in keys.
func checkKey(field, v string) error {
	if v == "" {
		return fmt.Errorf("state: %s is empty", field)
	}
	if len(v) > 512 {
		return fmt.Errorf("state: %s is longer than 512 bytes", field)
	}
	for _, r := range v {
		if r == '/' || r == '\\' || r == '#' || r == '?' || r == '|' || r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return fmt.Errorf("state: %s %q contains %q; ids may not contain / \\ # ? | or control characters", field, v, r)
		}
	}
	return nil
}
