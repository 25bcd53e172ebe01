package manager_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wsca/wsca/manager"
)

// BenchmarkDirStore: the binding store's operations on the file system
// (each write is a synced file and a synced directory).
func BenchmarkDirStore(b *testing.B) {
	st, err := manager.OpenDirStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	kids := make([]manager.KID, 256)
	for i := range kids {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		kids[i], _ = manager.Thumbprint(&k.PublicKey)
	}
	now := time.Now().UTC()
	raw := b.TempDir()
	rec := []byte(`{"kid":"0123456789012345678901234567890123456789012","plugin":"softkey","handle":"0123456789012345678901","created":"2026-12-01T00:00:00Z"}`)
	// The floor of a durable record: write a small file and sync it and
	// its directory, then remove it and sync the directory (what a bind
	// and an unbind must do at least).
	b.Run("RawSyncedCreateRemove", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			p := filepath.Join(raw, fmt.Sprint(i%256))
			f, err := os.Create(p)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.Write(rec); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			f.Close()
			syncDirForBench(b, raw)
			if err := os.Remove(p); err != nil {
				b.Fatal(err)
			}
			syncDirForBench(b, raw)
		}
	})
	if err := os.WriteFile(filepath.Join(raw, "r"), rec, 0o600); err != nil {
		b.Fatal(err)
	}
	b.Run("RawRead", func(b *testing.B) {
		for b.Loop() {
			if _, err := os.ReadFile(filepath.Join(raw, "r")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("BindUnbind", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			kid := kids[i%len(kids)]
			if err := st.Bind(ctx, manager.Binding{KID: kid, Plugin: "p", Handle: "h", Created: now}); err != nil {
				b.Fatal(err)
			}
			if err := st.Unbind(ctx, kid); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, kid := range kids {
		if err := st.Bind(ctx, manager.Binding{KID: kid, Plugin: "p", Handle: "h", Created: now}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Read", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := st.Binding(ctx, kids[i%len(kids)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(fmt.Sprintf("List%d", len(kids)), func(b *testing.B) {
		for b.Loop() {
			if _, err := st.Bindings(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func syncDirForBench(b *testing.B, dir string) {
	d, err := os.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		b.Fatal(err)
	}
	d.Close()
}
