package stack

import (
	"reflect"
	"testing"

	"github.com/spemigrate/spemigrate/infra/local/graphemu"
)

func TestGraphTokenIsAcceptedByTheStrictProfile(t *testing.T) {
	if want := graphemu.Token("spemigrate-local", graphemu.Permission); GraphToken != want {
		t.Errorf("GraphToken = %q, want %q", GraphToken, want)
	}
}

// The stack's emulator is strict unless a test asks for its own knobs or
// for the lenient defaults.
func TestGraphKnobsDefaultToStrict(t *testing.T) {
	if got := (GraphOptions{}).knobs(); !reflect.DeepEqual(got, DefaultGraphKnobs()) || !got.RequirePermission || len(got.Existing) == 0 {
		t.Errorf("default knobs %+v, want the strict profile", got)
	}
	if got := (GraphOptions{Lenient: true}).knobs(); !reflect.DeepEqual(got, graphemu.Knobs{}) {
		t.Errorf("lenient knobs %+v, want the emulator's defaults", got)
	}
	own := graphemu.Knobs{RequireSnapshots: true}
	if got := (GraphOptions{Knobs: own}).knobs(); !reflect.DeepEqual(got, own) {
		t.Errorf("a test's knobs %+v, want exactly %+v", got, own)
	}
}
