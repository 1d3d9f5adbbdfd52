package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
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
	rk := claimRK(key)
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
	e, found, err := getRaw(ctx, s.claims, pk, rk, "read claim in "+pk)
	if err != nil {
		return "", err
	}
	if !found {
		// Claims are never deleted: a 409 then a 404 is the service misbehaving.
		return "", fmt.Errorf("read claim in %s: the claim that refused ours is gone", pk)
	}
	return e.p.str("Owner"), nil
}

// claimRK is the row key of a claim: keys may hold any character.
func claimRK(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// ClaimMany is [Store.Claim] for many keys at once, with the same result as
// claiming them one by one in order: owners[i] is the holder of keys[i]
// afterwards (a key repeated in keys is held by its first claimant).
//
// New keys are inserted in entity-group transactions of up to 100 rows, so
// a first claim of n keys costs about n/100 transactions. A transaction
// that fails because some of its keys are held already is followed by
// reads of just those keys (filter queries of a few keys each), and the
// rest is inserted again; a concurrent claimant that wins in between is
// read the same way.
func (s *Store) ClaimMany(ctx context.Context, migrationID string, keys, owners []string) ([]string, error) {
	if err := checkKey("migration id", migrationID); err != nil {
		return nil, err
	}
	return s.claimMany(ctx, migrationID, keys, owners)
}

// ClaimManyInContainer is [Store.ClaimMany] scoped to a target container,
// like [Store.ClaimInContainer].
func (s *Store) ClaimManyInContainer(ctx context.Context, containerID string, keys, owners []string) ([]string, error) {
	if err := checkKey("container id", containerID); err != nil {
		return nil, err
	}
	return s.claimMany(ctx, containerClaimPK(containerID), keys, owners)
}

// claimFilterKeys bounds the row keys one read filter names: Table Storage
// accepts at most 15 comparisons in a filter, the partition key is one.
const claimFilterKeys = 14

func (s *Store) claimMany(ctx context.Context, pk string, keys, owners []string) ([]string, error) {
	if len(keys) != len(owners) {
		return nil, fmt.Errorf("state: claim: %d keys but %d owners", len(keys), len(owners))
	}
	held := make(map[string]string, len(keys)) // row key -> owner now holding it
	var pending []int                          // indexes of first occurrences, in order
	seen := make(map[string]bool, len(keys))
	for i, k := range keys {
		if k == "" || owners[i] == "" {
			return nil, fmt.Errorf("state: claim: key and owner are required")
		}
		rk := claimRK(k)
		if !seen[rk] {
			seen[rk] = true
			pending = append(pending, i)
		}
	}
	for len(pending) > 0 {
		chunk := pending[:min(len(pending), 100)]
		pending = pending[len(chunk):]
		if err := s.claimChunk(ctx, pk, keys, owners, chunk, held); err != nil {
			return nil, err
		}
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = held[claimRK(k)]
	}
	return out, nil
}

// claimChunk claims up to 100 distinct keys of one partition, recording
// every holder in held.
func (s *Store) claimChunk(ctx context.Context, pk string, keys, owners []string, chunk []int, held map[string]string) error {
	for attempt := 0; attempt < s.maxAttempts && len(chunk) > 0; attempt++ {
		actions := make([]aztables.TransactionAction, 0, len(chunk))
		for _, i := range chunk {
			p := props{}
			p.setStr("Key", keys[i])
			p.setStr("Owner", owners[i])
			data, err := marshalEntity(pk, claimRK(keys[i]), p)
			if err != nil {
				return err
			}
			actions = append(actions, aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: data})
		}
		_, err := s.claims.SubmitTransaction(ctx, actions, nil)
		if err == nil {
			for _, i := range chunk {
				held[claimRK(keys[i])] = owners[i]
			}
			return nil
		}
		var re *azcore.ResponseError
		if !errors.As(err, &re) {
			return storageErr("claim in "+pk, err)
		}
		// The transaction names neither the failing row nor, through the
		// SDK, its status: read which of the chunk's keys are held.
		found := 0
		var rest []int
		for from := 0; from < len(chunk); from += claimFilterKeys {
			part := chunk[from:min(len(chunk), from+claimFilterKeys)]
			var ors []string
			for _, i := range part {
				ors = append(ors, "RowKey eq "+quote(claimRK(keys[i])))
			}
			filter := "PartitionKey eq " + quote(pk) + " and (" + strings.Join(ors, " or ") + ")"
			err := s.list(ctx, s.claims, filter, 0, func(e rawEntity) {
				held[e.rk] = e.p.str("Owner")
				found++
			})
			if err != nil {
				return fmt.Errorf("read claims in %s: %w", pk, err)
			}
		}
		for _, i := range chunk {
			if _, ok := held[claimRK(keys[i])]; !ok {
				rest = append(rest, i)
			}
		}
		if found == 0 {
			// Nothing was held, so the failure was not a conflict.
			return storageErr("claim in "+pk, err)
		}
		chunk = rest
	}
	if len(chunk) > 0 {
		return fmt.Errorf("state: claim in %s: %w", pk, ErrContended)
	}
	return nil
}

// Claimed reads the holders of keys within a migration without claiming
// anything: the result maps each held key to its owner; a key nobody holds
// is absent. Keys are read in filter queries of a few keys each.
func (s *Store) Claimed(ctx context.Context, migrationID string, keys []string) (map[string]string, error) {
	if err := checkKey("migration id", migrationID); err != nil {
		return nil, err
	}
	byRK := make(map[string]string, len(keys))
	var rks []string
	for _, k := range keys {
		rk := claimRK(k)
		if _, dup := byRK[rk]; !dup {
			byRK[rk] = k
			rks = append(rks, rk)
		}
	}
	out := make(map[string]string, len(keys))
	for from := 0; from < len(rks); from += claimFilterKeys {
		var ors []string
		for _, rk := range rks[from:min(len(rks), from+claimFilterKeys)] {
			ors = append(ors, "RowKey eq "+quote(rk))
		}
		filter := "PartitionKey eq " + quote(migrationID) + " and (" + strings.Join(ors, " or ") + ")"
		err := s.list(ctx, s.claims, filter, 0, func(e rawEntity) {
			if k, ok := byRK[e.rk]; ok {
				out[k] = e.p.str("Owner")
			}
		})
		if err != nil {
			return nil, fmt.Errorf("read claims of migration %s: %w", migrationID, err)
		}
	}
	return out, nil
}
