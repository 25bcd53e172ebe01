package softkey

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/wsca/wsca/internal/atomicfile"
	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/kv"
)

// files is where the key containers live, by handle: a directory (the
// layout of every keystore written so far) or a kv.Store. read returns
// manager.ErrKeyNotFound for a missing handle and at most maxFile+1
// bytes; create never replaces; remove of a missing handle is no error.
type files interface {
	read(ctx context.Context, handle string) ([]byte, error)
	create(ctx context.Context, handle string, b []byte) error
	remove(ctx context.Context, handle string) error
	list(ctx context.Context) ([]string, error)
}

// dirFiles keeps <handle>.jwe files in a directory.
type dirFiles struct{ dir string }

func (d dirFiles) path(handle string) string { return filepath.Join(d.dir, handle+".jwe") }

func (d dirFiles) read(_ context.Context, handle string) ([]byte, error) {
	f, err := os.Open(d.path(handle))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, manager.ErrKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("softkey: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("softkey: %w", err)
	}
	return b, nil
}

func (d dirFiles) create(_ context.Context, handle string, b []byte) error {
	if err := atomicfile.Create(d.path(handle), b, 0o600); err != nil {
		return fmt.Errorf("softkey: %w", err)
	}
	return nil
}

func (d dirFiles) remove(_ context.Context, handle string) error {
	if err := os.Remove(d.path(handle)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("softkey: %w", err)
	}
	return nil
}

func (d dirFiles) list(context.Context) ([]string, error) {
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("softkey: %w", err)
	}
	var out []string
	for _, e := range ents {
		if h, ok := strings.CutSuffix(e.Name(), ".jwe"); ok {
			out = append(out, h)
		}
	}
	return out, nil
}

// kvFiles keeps one value prefix+handle per key in a kv.Store.
type kvFiles struct {
	kv     kv.Store
	prefix string
}

func (s kvFiles) read(ctx context.Context, handle string) ([]byte, error) {
	b, err := s.kv.Get(ctx, s.prefix+handle)
	if errors.Is(err, kv.ErrNotFound) {
		return nil, manager.ErrKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("softkey: %w", err)
	}
	return b, nil
}

func (s kvFiles) create(ctx context.Context, handle string, b []byte) error {
	if err := s.kv.Create(ctx, s.prefix+handle, b); err != nil {
		return fmt.Errorf("softkey: %w", err)
	}
	return nil
}

func (s kvFiles) remove(ctx context.Context, handle string) error {
	if err := s.kv.Delete(ctx, s.prefix+handle); err != nil {
		return fmt.Errorf("softkey: %w", err)
	}
	return nil
}

func (s kvFiles) list(ctx context.Context) ([]string, error) {
	keys, err := s.kv.List(ctx, s.prefix)
	if err != nil {
		return nil, fmt.Errorf("softkey: %w", err)
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, strings.TrimPrefix(k, s.prefix))
	}
	return out, nil
}
