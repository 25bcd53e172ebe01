package manager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/wsca/wsca/manager/kv"
)

// KVStore is a [BindingStore] over a [kv.Store] (the browser extension's
// storage, or any other): one JSON record per key under "bindings/keys/",
// "bindings/intents/", "bindings/claims/" and "bindings/choices/", named as
// [DirStore] names its files. Records are created with kv's Create, so two
// writers never overwrite each other's record; Rebind is a Put.
type KVStore struct {
	kv kv.Store
}

// NewKVStore returns the binding store kept in s.
func NewKVStore(s kv.Store) *KVStore { return &KVStore{kv: s} }

const kvPrefix = "bindings/"

func kvKey(sub, key string) string {
	return kvPrefix + sub + "/" + strings.TrimSuffix(name(key), ".json")
}

func (s *KVStore) create(ctx context.Context, sub, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := s.kv.Create(ctx, kvKey(sub, key), b); err != nil {
		if errors.Is(err, kv.ErrExists) {
			return ErrExists
		}
		return fmt.Errorf("manager: binding store: %w", err)
	}
	return nil
}

func (s *KVStore) replace(ctx context.Context, sub, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := s.kv.Put(ctx, kvKey(sub, key), b); err != nil {
		return fmt.Errorf("manager: binding store: %w", err)
	}
	return nil
}

// remove deletes a record; ErrNotFound when there was none (kv's Delete
// does not say, so the record is read first: two removers may both
// succeed, which the callers tolerate as DirStore's do).
func (s *KVStore) remove(ctx context.Context, sub, key string) error {
	k := kvKey(sub, key)
	if _, err := s.kv.Get(ctx, k); err != nil {
		if errors.Is(err, kv.ErrNotFound) {
			return ErrNotFound
		}
		return fmt.Errorf("manager: binding store: %w", err)
	}
	if err := s.kv.Delete(ctx, k); err != nil {
		return fmt.Errorf("manager: binding store: %w", err)
	}
	return nil
}

// decodeRecord parses a record strictly: too large, an unknown member or
// malformed JSON is ErrCorruptBinding.
func decodeRecord(b []byte, what string, v any) error {
	if len(b) > maxRecord {
		return fmt.Errorf("%w: %s is too large", ErrCorruptBinding, what)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorruptBinding, what, err)
	}
	return nil
}

func (s *KVStore) getKey(ctx context.Context, k string, v any) error {
	b, err := s.kv.Get(ctx, k)
	if errors.Is(err, kv.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("manager: binding store: %w", err)
	}
	return decodeRecord(b, k, v)
}

func kvList[T any](ctx context.Context, s *KVStore, sub string) ([]T, error) {
	keys, err := s.kv.List(ctx, kvPrefix+sub+"/")
	if err != nil {
		return nil, fmt.Errorf("manager: binding store: %w", err)
	}
	out := make([]T, 0, len(keys))
	for _, k := range keys {
		var v T
		err := s.getKey(ctx, k, &v)
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// PutIntent implements BindingStore.
func (s *KVStore) PutIntent(ctx context.Context, in Intent) error {
	return s.create(ctx, "intents", in.Label, in)
}

// DeleteIntent implements BindingStore.
func (s *KVStore) DeleteIntent(ctx context.Context, label string) error {
	return s.remove(ctx, "intents", label)
}

// Intents implements BindingStore.
func (s *KVStore) Intents(ctx context.Context) ([]Intent, error) {
	return kvList[Intent](ctx, s, "intents")
}

// Bind implements BindingStore.
func (s *KVStore) Bind(ctx context.Context, b Binding) error {
	return s.create(ctx, "keys", string(b.KID), b)
}

// Rebind implements BindingStore.
func (s *KVStore) Rebind(ctx context.Context, b Binding) error {
	return s.replace(ctx, "keys", string(b.KID), b)
}

// Unbind implements BindingStore.
func (s *KVStore) Unbind(ctx context.Context, kid KID) error {
	return s.remove(ctx, "keys", string(kid))
}

// Binding implements BindingStore.
func (s *KVStore) Binding(ctx context.Context, kid KID) (Binding, error) {
	var b Binding
	err := s.getKey(ctx, kvKey("keys", string(kid)), &b)
	if err == nil && b.KID != kid {
		err = fmt.Errorf("%w: the record for %s names another key", ErrCorruptBinding, kid)
	}
	return b, err
}

// Bindings implements BindingStore.
func (s *KVStore) Bindings(ctx context.Context) ([]Binding, error) {
	return kvList[Binding](ctx, s, "keys")
}

// Claim implements BindingStore.
func (s *KVStore) Claim(ctx context.Context, c Claim) error {
	return s.create(ctx, "claims", string(c.KID), c)
}

// Release implements BindingStore.
func (s *KVStore) Release(ctx context.Context, kid KID) error {
	return s.remove(ctx, "claims", string(kid))
}

// Claims implements BindingStore.
func (s *KVStore) Claims(ctx context.Context) ([]Claim, error) {
	return kvList[Claim](ctx, s, "claims")
}

// Choose implements BindingStore.
func (s *KVStore) Choose(ctx context.Context, c Choice) (Choice, error) {
	key := choiceKey(c.Issuer, c.CredentialType)
	err := s.create(ctx, "choices", key, c)
	if err != nil && !errors.Is(err, ErrExists) {
		return Choice{}, err
	}
	var got Choice
	if err := s.getKey(ctx, kvKey("choices", key), &got); err != nil {
		return Choice{}, err
	}
	if got.Issuer != c.Issuer || got.CredentialType != c.CredentialType {
		return Choice{}, fmt.Errorf("%w: choice record names another issuer", ErrCorruptBinding)
	}
	return got, nil
}
