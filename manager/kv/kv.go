// Package kv is the small key-value store the wallet side keeps its state
// in when it is not a plain directory: the browser extension's storage
// (package manager/jsbridge adapts it) and a directory ([Dir]) implement
// it. Keys are short printable strings (at most MaxKey bytes, no control
// characters); values are small (at most MaxValue bytes). Create is the
// one atomic primitive the manager builds on: of two writers creating one
// key, exactly one succeeds.
package kv

import (
	"context"
	"errors"
	"fmt"
)

// Limits of a key and a value.
const (
	MaxKey   = 160
	MaxValue = 256 << 10
)

// Errors.
var (
	// ErrExists: Create found a value under the key.
	ErrExists = errors.New("kv: key exists")
	// ErrNotFound: Get found no value under the key.
	ErrNotFound = errors.New("kv: key not found")
	// ErrInvalid: a key or value outside the limits.
	ErrInvalid = errors.New("kv: invalid key or value")
)

// Store is a key-value store. Every method may be called concurrently.
type Store interface {
	// Get returns the value under key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Create stores value under key unless one is there (ErrExists).
	Create(ctx context.Context, key string, value []byte) error
	// Put stores value under key, replacing any value, atomically.
	Put(ctx context.Context, key string, value []byte) error
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the keys that start with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
}

// CheckKey reports whether key is within the limits.
func CheckKey(key string) error {
	if key == "" || len(key) > MaxKey {
		return fmt.Errorf("%w: key length %d", ErrInvalid, len(key))
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] == 0x7f {
			return fmt.Errorf("%w: control character in key", ErrInvalid)
		}
	}
	return nil
}

// CheckValue reports whether value is within the limits.
func CheckValue(value []byte) error {
	if len(value) > MaxValue {
		return fmt.Errorf("%w: value of %d bytes", ErrInvalid, len(value))
	}
	return nil
}
