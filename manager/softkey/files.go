package softkey

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/kv"
)

// files is where the key containers live, by handle, in a kv.Store: a
// directory of <handle>.jwe files (kv.OpenFiles, the layout of every
// keystore written so far) or the browser's storage. read returns
// manager.ErrKeyNotFound for a missing handle (the caller bounds its
// size); create never replaces; remove of a missing handle is no error.
type files interface {
	read(ctx context.Context, handle string) ([]byte, error)
	create(ctx context.Context, handle string, b []byte) error
	remove(ctx context.Context, handle string) error
	list(ctx context.Context) ([]string, error)
}

// kvFiles keeps one value prefix+handle per key.
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
