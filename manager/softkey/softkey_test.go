package softkey_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/kv"
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

// openKV opens a keystore in a kv.Dir under a prefix.
func openKV(t *testing.T, s kv.Store, k []byte) *softkey.Plugin {
	t.Helper()
	p, err := softkey.OpenStore(s, "softkey/", k)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func kvDir(t *testing.T) *kv.Dir {
	t.Helper()
	d, err := kv.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fresh func(t *testing.T) manager.Plugin
	}{
		{"dir", func(t *testing.T) manager.Plugin { return open(t, t.TempDir(), kek(1)) }},
		{"kv", func(t *testing.T) manager.Plugin { return openKV(t, kvDir(t), kek(1)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plugintest.Run(t, manager.Env{}, tc.fresh)
			plugintest.RunBindings(t, manager.Env{}, tc.fresh)
		})
	}
}

// A keystore written before the kv backing (testdata, made by the code of
// 2026-12-01) still opens: its key lists under its label and signs.
func TestKeystoreWrittenBeforeOpens(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/keystore-2026-12")); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/keystore-2026-12.pub")
	if err != nil {
		t.Fatal(err)
	}
	handle, pubHex, _ := strings.Cut(strings.TrimSpace(string(want)), " ")
	p := open(t, dir, bytes.Repeat([]byte{0x4b}, softkey.KEKSize))
	k, found, err := p.Lookup(context.Background(), "legacy-label", manager.Env{})
	if err != nil || !found || k.Handle != handle {
		t.Fatalf("Lookup: %+v %v %v", k, found, err)
	}
	raw, _ := k.Public.Bytes()
	if hex.EncodeToString(raw) != pubHex {
		t.Fatal("the stored key has another public key")
	}
	d := sha256.Sum256([]byte("m"))
	sig, _, err := p.Sign(context.Background(), handle, d[:], manager.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.Verify(k.Public, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("signature does not verify")
	}
}

// In a kv.Store, as on disk: no value holds the key in the clear, and a
// value opens only under its KEK and its own name.
func TestKVStoreRefusals(t *testing.T) {
	ctx := context.Background()
	s := kvDir(t)
	p := openKV(t, s, kek(1))
	a, _, err := p.Generate(ctx, "a", manager.Env{})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := p.Generate(ctx, "b", manager.Env{})
	if err != nil {
		t.Fatal(err)
	}
	ek, err := p.Export(ctx, a.Handle, manager.Env{})
	if err != nil {
		t.Fatal(err)
	}
	d := ek.PrivateKey().Bytes()
	keys, err := s.List(ctx, "")
	if err != nil || len(keys) != 2 {
		t.Fatalf("List: %q %v", keys, err)
	}
	for _, k := range keys {
		v, _ := s.Get(ctx, k)
		if bytes.Contains(v, d) || strings.Contains(string(v), `"d"`) {
			t.Errorf("%s holds the private key in the clear", k)
		}
	}
	digest := sha256.Sum256([]byte("m"))
	if _, _, err := openKV(t, s, kek(2)).Sign(ctx, a.Handle, digest[:], manager.Env{}); !errors.Is(err, softkey.ErrDecrypt) {
		t.Fatalf("sign under the wrong KEK: %v, want ErrDecrypt", err)
	}
	bb, _ := s.Get(ctx, "softkey/"+b.Handle)
	if err := s.Put(ctx, "softkey/"+a.Handle, bb); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Sign(ctx, a.Handle, digest[:], manager.Env{}); !errors.Is(err, softkey.ErrDecrypt) {
		t.Fatalf("sign with a moved value: %v, want ErrDecrypt", err)
	}
	if _, err := softkey.OpenStore(s, strings.Repeat("p", kv.MaxKey), kek(1)); !errors.Is(err, manager.ErrInvalidInput) {
		t.Fatalf("a prefix too long for a key: %v", err)
	}
	if _, err := softkey.OpenStore(s, "p/", kek(1)[:16]); err == nil {
		t.Fatal("a 16-byte KEK was accepted")
	}
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
