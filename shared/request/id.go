package request

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"time"
)

// idPattern is the rule for every migration id: a client's own and those
// minted below (which all satisfy it).
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidID reports whether id may name a migration.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// IDForIdempotencyKey is the migration id of an HTTP start that carries an
// Idempotency-Key and no id: the same key starts the same migration.
func IDForIdempotencyKey(key string) string { return mint("k-", key) }

// IDForMessage is the migration id of a queued request without an id: a
// redelivered or duplicated message (same MessageId) starts it once.
func IDForMessage(messageID string) string { return mint("q-", messageID) }

// IDForSchedule is the migration id of a schedule's run for one slot, so a
// slot starts once however often the timer looks.
func IDForSchedule(scheduleID string, slot time.Time) string {
	return "s-" + scheduleID + "-" + slot.UTC().Format("20060102T150405Z")
}

func mint(prefix, s string) string {
	sum := sha256.Sum256([]byte(s))
	return prefix + hex.EncodeToString(sum[:13])
}
