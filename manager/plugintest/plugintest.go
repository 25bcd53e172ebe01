// Package plugintest is the conformance suite every manager plugin passes:
// generate, sign and verify (an assertion for a plugin whose keys sign
// WebAuthn assertions only), ECDH, lookup by label, list, delete,
// properties and the errors a plugin must give.
package plugintest

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"math/big"
	"testing"

	"github.com/wsca/wsca/manager"
)

// Run runs the suite against the plugin fresh returns (a new, empty
// plugin each call).
// env carries the callbacks the plugin needs (a PIN for a remote WSCD).
func Run(t *testing.T, env manager.Env, fresh func(t *testing.T) manager.Plugin) {
	ctx := context.Background()

	t.Run("GenerateSignVerify", func(t *testing.T) {
		p := fresh(t)
		k, _, err := p.Generate(ctx, "label-1", env)
		if err != nil {
			t.Fatal(err)
		}
		if k.Handle == "" || k.Public == nil || k.Public.Curve != elliptic.P256() {
			t.Fatalf("generated key %+v", k)
		}
		d := sha256.Sum256([]byte("message"))
		if ap, ok := p.(manager.AssertionPlugin); ok {
			// A key that signs WebAuthn assertions only (FIDO2).
			if _, _, err := p.Sign(ctx, k.Handle, d[:], env); !errors.Is(err, manager.ErrAssertionOnly) {
				t.Fatalf("Sign of an assertion key: %v, want ErrAssertionOnly", err)
			}
			a, _, err := ap.SignAssertion(ctx, k.Handle, d[:], env)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Verify(k.Public, d[:]); err != nil {
				t.Fatal(err)
			}
			if err := a.Verify(k.Public, []byte("other")); err == nil {
				t.Fatal("assertion verifies for another challenge")
			}
			return
		}
		sig, _, err := p.Sign(ctx, k.Handle, d[:], env)
		if err != nil {
			t.Fatal(err)
		}
		if len(sig) != 64 {
			t.Fatalf("signature is %d bytes, want raw r||s", len(sig))
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(k.Public, d[:], r, s) {
			t.Fatal("signature does not verify under the generated public key")
		}
		other := sha256.Sum256([]byte("other"))
		if ecdsa.Verify(k.Public, other[:], r, s) {
			t.Fatal("signature verifies for another digest")
		}
		pub, err := p.PublicKey(ctx, k.Handle, env)
		if err != nil || !pub.Equal(k.Public) {
			t.Fatalf("PublicKey = %v, %v", pub, err)
		}
	})

	t.Run("BadDigest", func(t *testing.T) {
		p := fresh(t)
		k, _, err := p.Generate(ctx, "l", env)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 31, 33, 64} {
			if _, _, err := p.Sign(ctx, k.Handle, make([]byte, n), env); err == nil {
				t.Errorf("signed a %d-byte digest", n)
			}
		}
	})

	t.Run("ECDH", func(t *testing.T) {
		p := fresh(t)
		e, ok := p.(manager.ECDHPlugin)
		if !ok {
			t.Skip("plugin does no ECDH")
		}
		k, _, err := p.Generate(ctx, "l", env)
		if err != nil {
			t.Fatal(err)
		}
		peer, _ := ecdh.P256().GenerateKey(rand.Reader)
		z, _, err := e.ECDH(ctx, k.Handle, peer.PublicKey(), env)
		if err != nil {
			t.Fatal(err)
		}
		mine, err := k.Public.ECDH()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := peer.ECDH(mine)
		if string(z) != string(want) {
			t.Fatal("ECDH secret differs from the peer's")
		}
	})

	t.Run("LookupListDelete", func(t *testing.T) {
		p := fresh(t)
		a, _, err := p.Generate(ctx, "label-a", env)
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := p.Generate(ctx, "label-b", env)
		if err != nil {
			t.Fatal(err)
		}
		got, found, err := p.Lookup(ctx, "label-b", env)
		if err != nil || !found || got.Handle != b.Handle || !got.Public.Equal(b.Public) {
			t.Fatalf("Lookup(label-b) = %+v, %v, %v", got, found, err)
		}
		if _, found, err := p.Lookup(ctx, "label-none", env); err != nil || found {
			t.Fatalf("Lookup of an unknown label found %v, %v", found, err)
		}
		list, err := p.List(ctx, env)
		if err != nil || len(list) != 2 {
			t.Fatalf("List = %d keys, %v", len(list), err)
		}
		if _, err := p.Delete(ctx, a.Handle, env); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Delete(ctx, a.Handle, env); err != nil {
			t.Fatalf("a second delete must not fail: %v", err)
		}
		d := sha256.Sum256([]byte("x"))
		if _, _, err := p.Sign(ctx, a.Handle, d[:], env); !errors.Is(err, manager.ErrKeyNotFound) {
			t.Fatalf("sign with a deleted key: %v, want ErrKeyNotFound", err)
		}
		if _, err := p.PublicKey(ctx, a.Handle, env); !errors.Is(err, manager.ErrKeyNotFound) {
			t.Fatalf("public key of a deleted key: %v, want ErrKeyNotFound", err)
		}
		list, err = p.List(ctx, env)
		if err != nil || len(list) != 1 || list[0].Handle != b.Handle {
			t.Fatalf("List after delete = %+v, %v", list, err)
		}
	})

	t.Run("UnknownHandles", func(t *testing.T) {
		p := fresh(t)
		d := sha256.Sum256([]byte("x"))
		for _, h := range []string{"", "nope", "../../etc/passwd", "AAAAAAAAAAAAAAAAAAAAAA", string(make([]byte, 300))} {
			if _, _, err := p.Sign(ctx, h, d[:], env); !errors.Is(err, manager.ErrKeyNotFound) {
				t.Errorf("Sign(%q): %v, want ErrKeyNotFound", h, err)
			}
			if _, err := p.Properties(ctx, h, env); !errors.Is(err, manager.ErrKeyNotFound) {
				t.Errorf("Properties(%q): %v, want ErrKeyNotFound", h, err)
			}
		}
	})

	t.Run("Properties", func(t *testing.T) {
		p := fresh(t)
		k, _, err := p.Generate(ctx, "l", env)
		if err != nil {
			t.Fatal(err)
		}
		props, err := p.Properties(ctx, k.Handle, env)
		if err != nil {
			t.Fatal(err)
		}
		if props.Storage == "" {
			t.Error("Properties.Storage is empty")
		}
		if props.Storage != p.NewKeyProperties().Storage || props.Exportable != p.NewKeyProperties().Exportable {
			t.Errorf("key properties %+v disagree with NewKeyProperties %+v", props, p.NewKeyProperties())
		}
	})

	t.Run("Cancelled", func(t *testing.T) {
		p := fresh(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, _, err := p.Generate(cctx, "l", env); !errors.Is(err, context.Canceled) {
			t.Fatalf("Generate with a cancelled context: %v", err)
		}
	})
}
