package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Claim records owner as the holder of key within a migration, if nobody
// holds it yet, and returns the holder: owner itself when the claim is new
// or already owner's, another owner otherwise. The naming policy claims the
// lower-cased target path with the source path as owner, so two source names
// that differ only in case are detected even across batches and handler
// instances. key may contain any characters (it is hashed for the row key).
func (s *Store) Claim(ctx context.Context, migrationID, key, owner string) (existingOwner string, err error) {
	if err := checkKey("migration id", migrationID); err != nil {
		return "", err
	}
	return s.claim(ctx, migrationID, key, owner)
}

func (s *Store) claim(ctx context.Context, pk, key, owner string) (string, error) {
	if key == "" || owner == "" {
		return "", fmt.Errorf("state: claim: key and owner are required")
	}
	sum := sha256.Sum256([]byte(key))
	rk := hex.EncodeToString(sum[:])
	p := props{}
	p.setStr("Key", key)
	p.setStr("Owner", owner)
	data, err := marshalEntity(pk, rk, p)
	if err != nil {
		return "", err
	}
	_, err = s.claims.AddEntity(ctx, data, nil)
	if err == nil {
		return owner, nil
	}
	if !isConflict(err) {
		return "", storageErr("claim in "+pk, err)
	}
	resp, err := s.claims.GetEntity(ctx, pk, rk, nil)
	if err != nil {
		return "", storageErr("read claim in "+pk, err)
	}
	e, err := unmarshalEntity(resp.Value, resp.ETag)
	if err != nil {
		return "", err
	}
	return e.p.str("Owner"), nil
}
