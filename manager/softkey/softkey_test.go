package softkey_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/plugintest"
	"github.com/wsca/wsca/manager/softkey"
)

func kek(b byte) []byte { return bytes.Repeat([]byte{b}, softkey.KEKSize) }

func open(t *testing.T, dir string, k []byte) *softkey.Plugin {
	t.Helper()
	p, err := softkey.Open(dir, k)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestConformance(t *testing.T) {
	plugintest.Run(t, manager.Env{}, func(t *testing.T) manager.Plugin { return open(t, t.TempDir(), kek(1)) })
	plugintest.RunBindings(t, manager.Env{}, func(t *testing.T) manager.Plugin { return open(t, t.TempDir(), kek(1)) })
}

// Nothing of a key is on disk in the clear: the private scalar never
// appears in any file.
func TestNoPlaintextOnDisk(t *testing.T) {
	dir := t.TempDir()
	p := open(t, dir, kek(1))
	k, _, err := p.Generate(context.Background(), "l", manager.Env{})
	if err != nil {
		t.Fatal(err)
	}
	ek, err := p.Export(context.Background(), k.Handle, manager.Env{})
	if err != nil {
		t.Fatal(err)
	}
	d := ek.PrivateKey().Bytes()
	err = filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, d) || strings.Contains(string(b), `"d"`) {
			t.Errorf("%s holds the private key in the clear", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A key file opens only under its KEK and only under its own name.
func TestKeyFileRefusals(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := open(t, dir, kek(1))
	a, _, err := p.Generate(ctx, "a", manager.Env{})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := p.Generate(ctx, "b", manager.Env{})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("m"))

	wrong := open(t, dir, kek(2))
	if _, _, err := wrong.Sign(ctx, a.Handle, digest[:], manager.Env{}); !errors.Is(err, softkey.ErrDecrypt) {
		t.Fatalf("sign under the wrong KEK: %v, want ErrDecrypt", err)
	}
	if _, err := wrong.List(ctx, manager.Env{}); !errors.Is(err, softkey.ErrDecrypt) {
		t.Fatalf("list under the wrong KEK: %v, want ErrDecrypt", err)
	}

	// Copy b's file over a's name: it decrypts, but names another key.
	bb, err := os.ReadFile(filepath.Join(dir, b.Handle+".jwe"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, a.Handle+".jwe"), bb, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Sign(ctx, a.Handle, digest[:], manager.Env{}); !errors.Is(err, softkey.ErrDecrypt) {
		t.Fatalf("sign with a moved file: %v, want ErrDecrypt", err)
	}

	// A flipped byte in the ciphertext.
	cb := bytes.Clone(bb)
	i := bytes.LastIndexByte(cb, '.') - 5
	cb[i] ^= 1
	if cb[i] == '.' {
		cb[i] ^= 3
	}
	if err := os.WriteFile(filepath.Join(dir, b.Handle+".jwe"), cb, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Sign(ctx, b.Handle, digest[:], manager.Env{}); !errors.Is(err, softkey.ErrDecrypt) {
		t.Fatalf("sign with an altered file: %v, want ErrDecrypt", err)
	}
}

func TestOpenRefusesShortKEK(t *testing.T) {
	if _, err := softkey.Open(t.TempDir(), make([]byte, 16)); err == nil {
		t.Fatal("a 16-byte KEK was accepted")
	}
	if _, err := softkey.KEKFromPassphrase([]byte("pw"), make([]byte, 8)); err == nil {
		t.Fatal("an 8-byte salt was accepted")
	}
}

func FuzzKeyFile(f *testing.F) {
	f.Add([]byte("eyJhbGciOiJBMjU2S1cifQ.a.b.c.d"))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		p, err := softkey.Open(dir, kek(1))
		if err != nil {
			t.Fatal(err)
		}
		h := "AAAAAAAAAAAAAAAAAAAAAA"
		if err := os.WriteFile(filepath.Join(dir, h+".jwe"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		d := sha256.Sum256(b)
		if _, _, err := p.Sign(context.Background(), h, d[:], manager.Env{}); err == nil {
			t.Fatal("a fuzzed key file signed")
		}
	})
}
