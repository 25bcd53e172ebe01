//go:build js && wasm

package jsbridge

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"syscall/js"

	"github.com/wsca/wsca/manager/kv"
)

// Store is a kv.Store over the host's storage object:
//
//	{ get(key) -> Promise<string|null>, create(key, value) -> Promise<boolean>,
//	  put(key, value) -> Promise<void>, delete(key) -> Promise<void>,
//	  list(prefix) -> Promise<string[]> }
//
// Values are kept as standard base64 strings. A thrown exception or a
// rejection is a *JSError wrapped in the returned error.
type Store struct{ obj js.Value }

// NewStore wraps the host's storage object.
func NewStore(obj js.Value) (*Store, error) {
	for _, m := range []string{"get", "create", "put", "delete", "list"} {
		if obj.Type() != js.TypeObject || obj.Get(m).Type() != js.TypeFunction {
			return nil, fmt.Errorf("%w: storage.%s", ErrNotFunction, m)
		}
	}
	return &Store{obj: obj}, nil
}

var b64 = base64.StdEncoding

// Get implements kv.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := kv.CheckKey(key); err != nil {
		return nil, err
	}
	v, err := callAwait(ctx, s.obj, "get", key)
	if err != nil {
		return nil, fmt.Errorf("kv: storage.get: %w", err)
	}
	switch v.Type() {
	case js.TypeNull, js.TypeUndefined:
		return nil, kv.ErrNotFound
	case js.TypeString:
	default:
		return nil, fmt.Errorf("%w: storage.get returned a %s", kv.ErrInvalid, v.Type())
	}
	b, err := b64.DecodeString(v.String())
	if err != nil {
		return nil, fmt.Errorf("%w: stored value is not base64", kv.ErrInvalid)
	}
	if err := kv.CheckValue(b); err != nil {
		return nil, err
	}
	return b, nil
}

// Create implements kv.Store.
func (s *Store) Create(ctx context.Context, key string, value []byte) error {
	if err := errors.Join(kv.CheckKey(key), kv.CheckValue(value)); err != nil {
		return err
	}
	v, err := callAwait(ctx, s.obj, "create", key, b64.EncodeToString(value))
	if err != nil {
		return fmt.Errorf("kv: storage.create: %w", err)
	}
	if v.Type() != js.TypeBoolean {
		return fmt.Errorf("%w: storage.create returned a %s", kv.ErrInvalid, v.Type())
	}
	if !v.Bool() {
		return kv.ErrExists
	}
	return nil
}

// Put implements kv.Store.
func (s *Store) Put(ctx context.Context, key string, value []byte) error {
	if err := errors.Join(kv.CheckKey(key), kv.CheckValue(value)); err != nil {
		return err
	}
	if _, err := callAwait(ctx, s.obj, "put", key, b64.EncodeToString(value)); err != nil {
		return fmt.Errorf("kv: storage.put: %w", err)
	}
	return nil
}

// Delete implements kv.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := kv.CheckKey(key); err != nil {
		return err
	}
	if _, err := callAwait(ctx, s.obj, "delete", key); err != nil {
		return fmt.Errorf("kv: storage.delete: %w", err)
	}
	return nil
}

// List implements kv.Store; keys the host returns outside prefix or
// beyond the limits are dropped.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	v, err := callAwait(ctx, s.obj, "list", prefix)
	if err != nil {
		return nil, fmt.Errorf("kv: storage.list: %w", err)
	}
	if v.Type() != js.TypeObject || !js.Global().Get("Array").Call("isArray", v).Bool() {
		return nil, fmt.Errorf("%w: storage.list returned no array", kv.ErrInvalid)
	}
	n := v.Length()
	keys := make([]string, 0, n)
	for i := range n {
		e := v.Index(i)
		if e.Type() != js.TypeString {
			continue
		}
		k := e.String()
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix && kv.CheckKey(k) == nil {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys), nil
}
