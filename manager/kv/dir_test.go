package kv_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wsca/wsca/manager/kv"
	"github.com/wsca/wsca/manager/kv/kvtest"
)

func TestDir(t *testing.T) {
	d, err := kv.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	kvtest.RunStoreTests(t, d)
}

func TestFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := kv.OpenFiles(dir, "jwe"); !errors.Is(err, kv.ErrInvalid) {
		t.Fatalf("suffix without a dot: %v", err)
	}
	f, err := kv.OpenFiles(dir, ".jwe")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Create(ctx, "N916YvNon1Hze8FV97mC_A", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// The file is named by the key, so directories written before read alike.
	if b, err := os.ReadFile(filepath.Join(dir, "N916YvNon1Hze8FV97mC_A.jwe")); err != nil || string(b) != "x" {
		t.Fatalf("file: %q %v", b, err)
	}
	if err := f.Create(ctx, "N916YvNon1Hze8FV97mC_A", []byte("y")); !errors.Is(err, kv.ErrExists) {
		t.Fatalf("second Create: %v", err)
	}
	for _, bad := range []string{"a/b", "../x", "a.b", "", "a b"} {
		if err := f.Put(ctx, bad, nil); !errors.Is(err, kv.ErrInvalid) {
			t.Errorf("Put(%q): %v, want ErrInvalid", bad, err)
		}
		if _, err := f.Get(ctx, bad); !errors.Is(err, kv.ErrInvalid) {
			t.Errorf("Get(%q): %v, want ErrInvalid", bad, err)
		}
	}
	// Other files are not keys.
	for _, n := range []string{"notes.txt", "a.b.jwe", ".jwe"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := f.List(ctx, "")
	if err != nil || !slices.Equal(keys, []string{"N916YvNon1Hze8FV97mC_A"}) {
		t.Fatalf("List: %q %v", keys, err)
	}
	if err := f.Delete(ctx, "N916YvNon1Hze8FV97mC_A"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Get(ctx, "N916YvNon1Hze8FV97mC_A"); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
}
