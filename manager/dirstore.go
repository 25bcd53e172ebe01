package manager

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

// DirStore is a [BindingStore] in a directory: one small JSON file per
// record, in the subdirectories keys/, intents/, claims/ and choices/.
// A record is created by writing a temporary file, syncing it and linking
// it under its name (link fails if the name exists, so two processes never
// overwrite each other's record); a replace is a rename. Several processes
// may share the directory.
type DirStore struct {
	dir string
}

// maxRecord bounds a record file; anything larger is corrupt.
const maxRecord = 64 << 10

// OpenDirStore opens (creating) the store in dir, mode 0700.
func OpenDirStore(dir string) (*DirStore, error) {
	for _, sub := range []string{"keys", "intents", "claims", "choices"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("manager: binding store: %w", err)
		}
	}
	return &DirStore{dir: dir}, nil
}

// name maps a record key to a file name that cannot escape its directory.
func name(key string) string {
	if key != "" && len(key) <= 64 && strings.Trim(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == "" {
		return key + ".json"
	}
	sum := sha256.Sum256([]byte(key))
	return "h-" + hex.EncodeToString(sum[:]) + ".json"
}

func (s *DirStore) path(sub, key string) string { return filepath.Join(s.dir, sub, name(key)) }

// create stores v under key unless a record is there.
func (s *DirStore) create(sub, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := atomicfile.Create(s.path(sub, key), b, 0o600); err != nil {
		if errors.Is(err, atomicfile.ErrExists) {
			return ErrExists
		}
		return fmt.Errorf("manager: binding store: %w", err)
	}
	return nil
}

// replace stores v under key, whether or not a record is there.
func (s *DirStore) replace(sub, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := atomicfile.Replace(s.path(sub, key), b, 0o600); err != nil {
		return fmt.Errorf("manager: binding store: %w", err)
	}
	return nil
}

func (s *DirStore) remove(sub, key string) error {
	err := atomicfile.Remove(s.path(sub, key))
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("manager: binding store: %w", err)
	}
	return nil
}

func readRecord(p string, v any) error {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("manager: binding store: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRecord+1))
	if err != nil {
		return fmt.Errorf("manager: binding store: %w", err)
	}
	if len(b) > maxRecord {
		return fmt.Errorf("%w: %s is too large", ErrCorruptBinding, filepath.Base(p))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorruptBinding, filepath.Base(p), err)
	}
	return nil
}

func (s *DirStore) get(sub, key string, v any) error { return readRecord(s.path(sub, key), v) }

func list[T any](s *DirStore, sub string) ([]T, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, sub))
	if err != nil {
		return nil, fmt.Errorf("manager: binding store: %w", err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	out := make([]T, 0, len(names))
	for _, n := range names {
		var v T
		err := readRecord(filepath.Join(s.dir, sub, n), &v)
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
func (s *DirStore) PutIntent(_ context.Context, in Intent) error {
	return s.create("intents", in.Label, in)
}

// DeleteIntent implements BindingStore.
func (s *DirStore) DeleteIntent(_ context.Context, label string) error {
	return s.remove("intents", label)
}

// Intents implements BindingStore.
func (s *DirStore) Intents(context.Context) ([]Intent, error) { return list[Intent](s, "intents") }

// Bind implements BindingStore.
func (s *DirStore) Bind(_ context.Context, b Binding) error {
	return s.create("keys", string(b.KID), b)
}

// Rebind implements BindingStore.
func (s *DirStore) Rebind(_ context.Context, b Binding) error {
	return s.replace("keys", string(b.KID), b)
}

// Unbind implements BindingStore.
func (s *DirStore) Unbind(_ context.Context, kid KID) error { return s.remove("keys", string(kid)) }

// Binding implements BindingStore.
func (s *DirStore) Binding(_ context.Context, kid KID) (Binding, error) {
	var b Binding
	err := s.get("keys", string(kid), &b)
	if err == nil && b.KID != kid {
		err = fmt.Errorf("%w: the record for %s names another key", ErrCorruptBinding, kid)
	}
	return b, err
}

// Bindings implements BindingStore.
func (s *DirStore) Bindings(context.Context) ([]Binding, error) { return list[Binding](s, "keys") }

// Claim implements BindingStore.
func (s *DirStore) Claim(_ context.Context, c Claim) error {
	return s.create("claims", string(c.KID), c)
}

// Release implements BindingStore.
func (s *DirStore) Release(_ context.Context, kid KID) error {
	return s.remove("claims", string(kid))
}

// Claims implements BindingStore.
func (s *DirStore) Claims(context.Context) ([]Claim, error) { return list[Claim](s, "claims") }

// Choose implements BindingStore.
func (s *DirStore) Choose(_ context.Context, c Choice) (Choice, error) {
	key := choiceKey(c.Issuer, c.CredentialType)
	err := s.create("choices", key, c)
	if err != nil && !errors.Is(err, ErrExists) {
		return Choice{}, err
	}
	var got Choice
	if err := s.get("choices", key, &got); err != nil {
		return Choice{}, err
	}
	if got.Issuer != c.Issuer || got.CredentialType != c.CredentialType {
		return Choice{}, fmt.Errorf("%w: choice record names another issuer", ErrCorruptBinding)
	}
	return got, nil
}

// choiceKey is a fixed-size name for an issuer and a credential type.
func choiceKey(issuer, typ string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s%d:%s", len(issuer), issuer, len(typ), typ)
	return hex.EncodeToString(h.Sum(nil))
}
