package remote

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/wsca/wsca/manager/kv"
)

// journal keeps the generation journal by name (hex of the label) in a
// kv.Store: a directory of <name>.json files (kv.OpenFiles, the layout so
// far) or the browser's storage.
type journal interface {
	put(ctx context.Context, name string, b []byte) error
	get(ctx context.Context, name string) (b []byte, ok bool, err error)
	list(ctx context.Context) ([]string, error)
}

type kvJournal struct {
	kv     kv.Store
	prefix string
}

func (j kvJournal) put(ctx context.Context, name string, b []byte) error {
	if err := j.kv.Put(ctx, j.prefix+name, b); err != nil {
		return fmt.Errorf("remote: journal: %w", err)
	}
	return nil
}

func (j kvJournal) get(ctx context.Context, name string) ([]byte, bool, error) {
	b, err := j.kv.Get(ctx, j.prefix+name)
	if errors.Is(err, kv.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("remote: journal: %w", err)
	}
	return b, true, nil
}

func (j kvJournal) list(ctx context.Context) ([]string, error) {
	keys, err := j.kv.List(ctx, j.prefix)
	if err != nil {
		return nil, fmt.Errorf("remote: journal: %w", err)
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, strings.TrimPrefix(k, j.prefix))
	}
	return out, nil
}
