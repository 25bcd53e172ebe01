package wscd_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/wscd"
)

func TestServerKeys(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		// Two services on one store and device race for the same purpose:
		// both end up with one key, and the loser's key is gone.
		other, err := wscd.New(wscd.Config{Device: f.dev, Store: f.st})
		if err != nil {
			t.Fatal(err)
		}
		before, err := f.dev.List(ctx, wscd.ServerOwner)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		keys := make([]wscd.ServerKey, 2)
		errs := make([]error, 2)
		for i, svc := range []*wscd.Services{f.svc, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				keys[i], errs[i] = svc.ServerKeys.Key(ctx, wscd.PurposeR2PSSigning)
			}()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil || keys[0].KID != keys[1].KID {
			t.Fatalf("keys %v %v, errors %v %v", keys[0].KID, keys[1].KID, errs[0], errs[1])
		}
		// The token may be shared with other tests: compare with before. A
		// device in wrapped storage lists token objects only: the key is
		// a blob in the store, and no object is left behind.
		after, err := f.dev.List(ctx, wscd.ServerOwner)
		if f.dev.Info().Storage == device.StorageWrapped {
			if err != nil || len(after) != len(before) || len(keys[0].Wrapped) == 0 {
				t.Fatalf("wrapped: device held %d server keys, now %d (%v), blob %d bytes", len(before), len(after), err, len(keys[0].Wrapped))
			}
		} else if err != nil || len(after) != len(before)+1 || !holds(after, keys[0].KID) {
			t.Fatalf("device held %d server keys, now %d (%v)", len(before), len(after), err)
		}
		again, err := f.svc.ServerKeys.Key(ctx, wscd.PurposeR2PSSigning)
		if err != nil || again.KID != keys[0].KID || !again.Public.Equal(keys[0].Public) {
			t.Fatalf("second lookup: %v %v", again.KID, err)
		}

		d := sha256.Sum256([]byte("response"))
		sig, err := f.svc.ServerKeys.Sign(ctx, again, d[:])
		if err != nil || !device.VerifyRaw(again.Public, d[:], sig) {
			t.Fatalf("ServerKeys.Sign: %v", err)
		}
		der, err := f.svc.ServerKeys.Signer(ctx, again).Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil || !ecdsa.VerifyASN1(again.Public, d[:], der) {
			t.Fatalf("Signer: %v", err)
		}
		if _, err := f.svc.ServerKeys.Signer(ctx, again).Sign(rand.Reader, d[:], crypto.SHA384); err == nil {
			t.Fatal("Signer accepted SHA-384")
		}

		if err := f.svc.Units.Create(ctx, "wsca.server"); !errors.Is(err, wscd.ErrInvalidInput) {
			t.Fatalf("reserved unit id accepted: %v", err)
		}
	})
}

func TestSealer(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		s1, err := f.svc.ServerKeys.Sealer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		other, _ := wscd.New(wscd.Config{Device: f.dev, Store: f.st})
		s2, err := other.ServerKeys.Sealer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		secret := []byte("opaque server key material")
		sealed, err := s1.Seal(secret, []byte("name"))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(sealed, secret) {
			t.Fatal("sealed value shows the plaintext")
		}
		got, err := s2.Open(sealed, []byte("name"))
		if err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("another instance cannot open: %v", err)
		}
		if _, err := s2.Open(sealed, []byte("other")); !errors.Is(err, wscd.ErrSealed) {
			t.Fatalf("opened under another ad: %v", err)
		}
		sealed[len(sealed)-1] ^= 1
		if _, err := s2.Open(sealed, []byte("name")); !errors.Is(err, wscd.ErrSealed) {
			t.Fatalf("opened a tampered value: %v", err)
		}
		if _, err := s2.Open(sealed[:5], nil); !errors.Is(err, wscd.ErrSealed) {
			t.Fatalf("opened a short value: %v", err)
		}
	})
}

func holds(keys []device.Key, kid device.KID) bool {
	for _, k := range keys {
		if k.KID == kid {
			return true
		}
	}
	return false
}
