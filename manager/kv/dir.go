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

// Dir is a [Store] in a directory: one file per key. Create links a
// synced temporary file under the name, so several processes may share
// the directory. [OpenDir] names a file by its key in unpadded base64url
// (any key; none can name a path outside it); [OpenFiles] by the key
// itself and a suffix, for directories of readable names.
type Dir struct {
	dir    string
	suffix string
	plain  bool
}

// OpenDir opens (creating, mode 0700) the store in dir.
func OpenDir(dir string) (*Dir, error) { return open(dir, ".kv", false) }

// OpenFiles opens (creating, mode 0700) a store in dir whose files are
// named key+suffix ("abc.jwe"). Its keys are limited to letters, digits,
// '-' and '_' (ErrInvalid otherwise); other files in dir are not keys.
func OpenFiles(dir, suffix string) (*Dir, error) {
	if !strings.HasPrefix(suffix, ".") || !plainName(suffix[1:]) {
		return nil, fmt.Errorf("%w: suffix %q", ErrInvalid, suffix)
	}
	return open(dir, suffix, true)
}

func open(dir, suffix string, plain bool) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("kv: %w", err)
	}
	return &Dir{dir: dir, suffix: suffix, plain: plain}, nil
}

// plainName reports whether s is a non-empty run of [A-Za-z0-9_-].
func plainName(s string) bool {
	return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == ""
}

// checkKey is CheckKey, and for plain names the file name's alphabet.
func (d *Dir) checkKey(key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if d.plain && !plainName(key) {
		return fmt.Errorf("%w: key is not a plain file name", ErrInvalid)
	}
	return nil
}

func (d *Dir) path(key string) string {
	if d.plain {
		return filepath.Join(d.dir, key+d.suffix)
	}
	return filepath.Join(d.dir, base64.RawURLEncoding.EncodeToString([]byte(key))+d.suffix)
}

// key is the key a file name stands for, if it stands for one.
func (d *Dir) key(name string) (string, bool) {
	n, ok := strings.CutSuffix(name, d.suffix)
	if !ok {
		return "", false
	}
	if d.plain {
		return n, d.checkKey(n) == nil
	}
	k, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || CheckKey(string(k)) != nil {
		return "", false
	}
	return string(k), true
}

// Get implements Store.
func (d *Dir) Get(_ context.Context, key string) ([]byte, error) {
	if err := d.checkKey(key); err != nil {
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
	if err := errors.Join(d.checkKey(key), CheckValue(value)); err != nil {
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
	if err := errors.Join(d.checkKey(key), CheckValue(value)); err != nil {
		return err
	}
	if err := atomicfile.Replace(d.path(key), value, 0o600); err != nil {
		return fmt.Errorf("kv: %w", err)
	}
	return nil
}

// Delete implements Store.
func (d *Dir) Delete(_ context.Context, key string) error {
	if err := d.checkKey(key); err != nil {
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
		k, ok := d.key(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue // temporary files of a write in progress, strays
		}
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, nil
}
