package remote

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
	"github.com/wsca/wsca/manager/kv"
)

// maxJournalEntry bounds one journal entry.
const maxJournalEntry = 1 << 20

// journal keeps the generation journal by name (hex of the label): a
// directory of <name>.json files (the layout so far) or a kv.Store.
type journal interface {
	put(ctx context.Context, name string, b []byte) error
	get(ctx context.Context, name string) (b []byte, ok bool, err error)
	list(ctx context.Context) ([]string, error)
}

type dirJournal struct{ dir string }

func (d dirJournal) path(name string) string { return filepath.Join(d.dir, name+".json") }

func (d dirJournal) put(_ context.Context, name string, b []byte) error {
	if err := atomicfile.Replace(d.path(name), b, 0o600); err != nil {
		return fmt.Errorf("remote: journal: %w", err)
	}
	return nil
}

func (d dirJournal) get(_ context.Context, name string) ([]byte, bool, error) {
	f, err := os.Open(d.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("remote: journal: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxJournalEntry))
	if err != nil {
		return nil, false, fmt.Errorf("remote: journal: %w", err)
	}
	return b, true, nil
}

func (d dirJournal) list(context.Context) ([]string, error) {
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("remote: journal: %w", err)
	}
	var out []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			out = append(out, n)
		}
	}
	return out, nil
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
