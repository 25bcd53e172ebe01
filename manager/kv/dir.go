package kv

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/wsca/wsca/internal/atomicfile"
)

// Dir is a [Store] in a directory: one file per key, named by the key in
// unpadded base64url (so no key can name a path outside it). Create links
// a synced temporary file under the name, so several processes may share
// the directory.
type Dir struct{ dir string }

// OpenDir opens (creating, mode 0700) the store in dir.
func OpenDir(dir string) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("kv: %w", err)
	}
	return &Dir{dir: dir}, nil
}

const suffix = ".kv"

func (d *Dir) path(key string) string {
	return filepath.Join(d.dir, base64.RawURLEncoding.EncodeToString([]byte(key))+suffix)
}

// Get implements Store.
func (d *Dir) Get(_ context.Context, key string) ([]byte, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	f, err := os.Open(d.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("kv: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxValue+1))
	if err != nil {
		return nil, fmt.Errorf("kv: %w", err)
	}
	if len(b) > MaxValue {
		return nil, fmt.Errorf("%w: stored value too large", ErrInvalid)
	}
	return b, nil
}

// Create implements Store.
func (d *Dir) Create(_ context.Context, key string, value []byte) error {
	if err := errors.Join(CheckKey(key), CheckValue(value)); err != nil {
		return err
	}
	if err := atomicfile.Create(d.path(key), value, 0o600); err != nil {
		if errors.Is(err, atomicfile.ErrExists) {
			return ErrExists
		}
		return fmt.Errorf("kv: %w", err)
	}
	return nil
}

// Put implements Store.
func (d *Dir) Put(_ context.Context, key string, value []byte) error {
	if err := errors.Join(CheckKey(key), CheckValue(value)); err != nil {
		return err
	}
	if err := atomicfile.Replace(d.path(key), value, 0o600); err != nil {
		return fmt.Errorf("kv: %w", err)
	}
	return nil
}

// Delete implements Store.
func (d *Dir) Delete(_ context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if err := atomicfile.Remove(d.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("kv: %w", err)
	}
	return nil
}

// List implements Store.
func (d *Dir) List(_ context.Context, prefix string) ([]string, error) {
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("kv: %w", err)
	}
	var keys []string
	for _, e := range ents {
		n, ok := strings.CutSuffix(e.Name(), suffix)
		if !ok || !e.Type().IsRegular() {
			continue // temporary files of a write in progress, strays
		}
		k, err := base64.RawURLEncoding.DecodeString(n)
		if err != nil || CheckKey(string(k)) != nil {
			continue
		}
		if strings.HasPrefix(string(k), prefix) {
			keys = append(keys, string(k))
		}
	}
	sort.Strings(keys)
	return keys, nil
}
