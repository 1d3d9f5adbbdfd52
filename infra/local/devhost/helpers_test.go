package devhost_test

import (
	"regexp"
	"testing"
)

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

func runWithStack(m *testing.M) int { return m.Run() }
