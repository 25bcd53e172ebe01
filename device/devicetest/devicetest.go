// Package devicetest is the conformance suite every device backend passes.
// Backends call Run from their tests with a real device (the soft keystore,
// SoftHSM through PKCS#11).
package devicetest

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/wycheproof"
)

// NewOwner returns an owner no other test uses, even in another process
// sharing the same token.
func NewOwner(t testing.TB, prefix string) device.Owner {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	o, err := device.ParseOwner(prefix + "-" + hex.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// Run runs the whole suite on dev, in the storage its Info reports: in
// device.StorageWrapped every generated key must come with a blob, every
// use passes it, wrapped keys are not listed, and a bad blob is refused;
// in device.StorageToken no key has a blob and a ref with one is refused.
func Run(t *testing.T, dev device.Device) {
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, dev) })
	t.Run("CrossUnit", func(t *testing.T) { testCrossUnit(t, dev) })
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, dev) })
	t.Run("WycheproofECDH", func(t *testing.T) { testWycheproofECDH(t, dev) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, dev) })
	if wrapped(dev) {
		t.Run("Blobs", func(t *testing.T) { testBlobs(t, dev) })
	}
	if g, ok := dev.(device.DeriveOnlyGenerator); ok {
		t.Run("DeriveOnly", func(t *testing.T) { testDeriveOnly(t, dev, g) })
	}
}

// testDeriveOnly: a derive-only key does ECDH (the same secret as the
// peer computes), is refused for Sign with ErrKeyUsage (also through a
// stale or fresh lookup), is listed and destroyed like any key, and keeps
// to its owner.
func testDeriveOnly(t *testing.T, dev device.Device, g device.DeriveOnlyGenerator) {
	ctx := context.Background()
	owner := NewOwner(t, "derive")
	k, err := g.GenerateDeriveOnly(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	checkStorage(t, dev, k)
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	pubECDH, err := k.Public.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := peer.ECDH(pubECDH)
	z, err := dev.ECDH(ctx, k.Ref(), peer.PublicKey())
	if err != nil || string(z) != string(want) {
		t.Fatalf("ECDH with a derive-only key = %x, %v; want %x", z, err, want)
	}
	for range 2 { // the second time from the device's handle cache
		if sig, err := dev.Sign(ctx, k.Ref(), digestOf("derive only")); !errors.Is(err, device.ErrKeyUsage) {
			t.Fatalf("Sign with a derive-only key = %x, %v; want ErrKeyUsage", sig, err)
		}
	}
	if got, err := dev.PublicKey(ctx, k.Ref()); err != nil || !got.Public.Equal(k.Public) {
		t.Fatalf("PublicKey = %v", err)
	}
	other := NewOwner(t, "derive-other")
	if _, err := dev.ECDH(ctx, device.Ref{Owner: other, KID: k.KID, Wrapped: k.Wrapped}, peer.PublicKey()); !wrapped(dev) && !errors.Is(err, device.ErrKeyNotFound) {
		t.Fatalf("ECDH by another owner = %v", err)
	}
	if !wrapped(dev) {
		keys, err := dev.List(ctx, owner)
		if err != nil || len(keys) != 1 || keys[0].KID != k.KID {
			t.Fatalf("List = %v, %v", kids(keys), err)
		}
	}
	if err := dev.Destroy(ctx, k.Ref()); err != nil {
		t.Fatal(err)
	}
	if !wrapped(dev) {
		if _, err := dev.ECDH(ctx, k.Ref(), peer.PublicKey()); !errors.Is(err, device.ErrKeyNotFound) {
			t.Fatalf("ECDH after Destroy = %v", err)
		}
	}
}

func wrapped(dev device.Device) bool { return dev.Info().Storage == device.StorageWrapped }

// checkStorage fails unless k has a blob exactly when dev is wrapped.
func checkStorage(t testing.TB, dev device.Device, k device.Key) {
	t.Helper()
	if wrapped(dev) != (k.Wrapped != nil) {
		t.Fatalf("storage %q, key with a %d-byte blob", dev.Info().Storage, len(k.Wrapped))
	}
}

func digestOf(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}

func testLifecycle(t *testing.T, dev device.Device) {
	ctx := context.Background()
	owner := NewOwner(t, "life")
	k1, err := dev.Generate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := dev.Generate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	if k1.KID == k2.KID {
		t.Fatal("two keys with one kid")
	}
	if kid, err := device.KIDOf(k1.Public); err != nil || kid != k1.KID {
		t.Fatalf("kid %s is not the kid of its public key (%s, %v)", k1.KID, kid, err)
	}
	checkStorage(t, dev, k1)
	ref := k1.Ref()

	pk, err := dev.PublicKey(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if !pk.Public.Equal(k1.Public) {
		t.Fatal("PublicKey differs from the generated key")
	}

	d := digestOf("lifecycle")
	sig, err := dev.Sign(ctx, ref, d)
	if err != nil {
		t.Fatal(err)
	}
	if !device.VerifyRaw(k1.Public, d, sig) {
		t.Fatal("signature does not verify")
	}
	der, err := device.RawToDER(sig)
	if err != nil || !device.VerifyDER(k1.Public, d, der) {
		t.Fatalf("DER form does not verify: %v", err)
	}
	if device.VerifyRaw(k2.Public, d, sig) {
		t.Fatal("signature verifies under another key")
	}

	peer, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	z, err := dev.ECDH(ctx, ref, peer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	devPub, err := device.ParsePoint(mustBytes(t, k1.Public))
	if err != nil {
		t.Fatal(err)
	}
	want, err := peer.ECDH(devPub)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(z) != hex.EncodeToString(want) {
		t.Fatal("ECDH secret differs from the peer's")
	}

	keys, err := dev.List(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	if wrapped(dev) {
		// Wrapped keys are no objects on the device: the caller lists them.
		if len(keys) != 0 {
			t.Fatalf("List = %v, want no wrapped keys", kids(keys))
		}
	} else {
		if len(keys) != 2 || keys[0].KID > keys[1].KID {
			t.Fatalf("List = %v, want the two keys ordered by kid", kids(keys))
		}
		for _, k := range keys {
			if k.Owner != owner || (k.KID != k1.KID && k.KID != k2.KID) {
				t.Fatalf("List returned %v", k)
			}
		}
	}

	if err := dev.Destroy(ctx, ref); err != nil {
		t.Fatal(err)
	}
	// A wrapped key's blob is erased by the caller with the Destroy: what
	// is left to name it is a ref without one.
	ref.Wrapped = nil
	if _, err := dev.Sign(ctx, ref, d); !errors.Is(err, device.ErrKeyNotFound) {
		t.Fatalf("Sign after Destroy = %v, want ErrKeyNotFound", err)
	}
	if _, err := dev.PublicKey(ctx, ref); !errors.Is(err, device.ErrKeyNotFound) {
		t.Fatalf("PublicKey after Destroy = %v", err)
	}
	if err := dev.Destroy(ctx, ref); !errors.Is(err, device.ErrKeyNotFound) {
		t.Fatalf("second Destroy = %v", err)
	}
	keys, err = dev.List(ctx, owner)
	if wrapped(dev) {
		if err != nil || len(keys) != 0 {
			t.Fatalf("List after Destroy = %v, %v", kids(keys), err)
		}
	} else if err != nil || len(keys) != 1 || keys[0].KID != k2.KID {
		t.Fatalf("List after Destroy = %v, %v", kids(keys), err)
	}
	if err := dev.Destroy(ctx, k2.Ref()); err != nil {
		t.Fatal(err)
	}
	if err := dev.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func mustBytes(t testing.TB, k interface{ Bytes() ([]byte, error) }) []byte {
	t.Helper()
	b, err := k.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func kids(keys []device.Key) []device.KID {
	var out []device.KID
	for _, k := range keys {
		out = append(out, k.KID)
	}
	return out
}

// testCrossUnit: unit B can neither use nor see nor destroy unit A's key,
// and gets the same answer as for a kid that does not exist.
func testCrossUnit(t *testing.T, dev device.Device) {
	ctx := context.Background()
	a, b := NewOwner(t, "unit-a"), NewOwner(t, "unit-b")
	ka, err := dev.Generate(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Destroy(ctx, ka.Ref())
	asB := device.Ref{Owner: b, KID: ka.KID}
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)

	if _, err := dev.Sign(ctx, asB, digestOf("x")); !errors.Is(err, device.ErrKeyNotFound) {
		t.Errorf("B signs with A's key: %v", err)
	}
	if _, err := dev.ECDH(ctx, asB, peer.PublicKey()); !errors.Is(err, device.ErrKeyNotFound) {
		t.Errorf("B derives with A's key: %v", err)
	}
	if _, err := dev.PublicKey(ctx, asB); !errors.Is(err, device.ErrKeyNotFound) {
		t.Errorf("B reads A's key: %v", err)
	}
	if err := dev.Destroy(ctx, asB); !errors.Is(err, device.ErrKeyNotFound) {
		t.Errorf("B destroys A's key: %v", err)
	}
	keys, err := dev.List(ctx, b)
	if err != nil || len(keys) != 0 {
		t.Errorf("B lists %v, %v", kids(keys), err)
	}
	if wrapped(dev) {
		// B names A's kid with the blob of a key of its own: the device
		// finds that the blob holds another key and signs nothing.
		kb, err := dev.Generate(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		defer dev.Destroy(ctx, kb.Ref())
		foreign := device.Ref{Owner: b, KID: ka.KID, Wrapped: kb.Wrapped}
		if _, err := dev.Sign(ctx, foreign, digestOf("x")); !errors.Is(err, device.ErrInvalidBlob) {
			t.Errorf("B signs for A's kid with its own blob: %v", err)
		}
	}
	// A's key is untouched and still A's.
	sig, err := dev.Sign(ctx, ka.Ref(), digestOf("x"))
	if err != nil || !device.VerifyRaw(ka.Public, digestOf("x"), sig) {
		t.Fatalf("A's key after B's attempts: %v", err)
	}
	keys, err = dev.List(ctx, a)
	if wrapped(dev) {
		if err != nil || len(keys) != 0 {
			t.Fatalf("A lists %v, %v", kids(keys), err)
		}
	} else if err != nil || len(keys) != 1 || keys[0].KID != ka.KID {
		t.Fatalf("A lists %v, %v", kids(keys), err)
	}
}

// testBadInput: malformed input gets a typed error and makes no device call.
func testBadInput(t *testing.T, dev device.Device) {
	ctx := context.Background()
	owner := NewOwner(t, "bad")
	k, err := dev.Generate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Destroy(ctx, k.Ref())
	ref := k.Ref()
	cases := []struct {
		name string
		op   func() error
		want error
	}{
		{"short digest", func() error { _, err := dev.Sign(ctx, ref, make([]byte, 31)); return err }, device.ErrInvalidDigest},
		{"long digest", func() error { _, err := dev.Sign(ctx, ref, make([]byte, 33)); return err }, device.ErrInvalidDigest},
		{"nil digest", func() error { _, err := dev.Sign(ctx, ref, nil); return err }, device.ErrInvalidDigest},
		{"bad kid", func() error {
			_, err := dev.Sign(ctx, device.Ref{Owner: owner, KID: "XYZ"}, digestOf("x"))
			return err
		}, device.ErrInvalidKID},
		{"bad owner", func() error {
			_, err := dev.Sign(ctx, device.Ref{Owner: "a b", KID: k.KID}, digestOf("x"))
			return err
		}, device.ErrInvalidOwner},
		{"empty owner generate", func() error { _, err := dev.Generate(ctx, ""); return err }, device.ErrInvalidOwner},
		{"nil peer", func() error { _, err := dev.ECDH(ctx, ref, nil); return err }, device.ErrInvalidPoint},
		{"X25519 peer", func() error {
			p, _ := ecdh.X25519().GenerateKey(rand.Reader)
			_, err := dev.ECDH(ctx, ref, p.PublicKey())
			return err
		}, device.ErrInvalidPoint},
		{"bad owner list", func() error { _, err := dev.List(ctx, "x/y"); return err }, device.ErrInvalidOwner},
	}
	if wrapped(dev) {
		short := device.Ref{Owner: owner, KID: k.KID, Wrapped: k.Wrapped[:len(k.Wrapped)/2]}
		cases = append(cases, []struct {
			name string
			op   func() error
			want error
		}{
			{"short blob sign", func() error { _, err := dev.Sign(ctx, short, digestOf("x")); return err }, device.ErrInvalidBlob},
			{"short blob public key", func() error { _, err := dev.PublicKey(ctx, short); return err }, device.ErrInvalidBlob},
			{"short blob destroy", func() error { return dev.Destroy(ctx, short) }, device.ErrInvalidBlob},
			{"empty blob", func() error {
				_, err := dev.Sign(ctx, device.Ref{Owner: owner, KID: k.KID, Wrapped: []byte{}}, digestOf("x"))
				return err
			}, device.ErrInvalidBlob},
		}...)
	} else {
		blob := device.Ref{Owner: owner, KID: k.KID, Wrapped: []byte{1, 2, 3}}
		cases = append(cases, []struct {
			name string
			op   func() error
			want error
		}{
			{"blob sign", func() error { _, err := dev.Sign(ctx, blob, digestOf("x")); return err }, device.ErrWrappedUnsupported},
			{"blob ecdh", func() error {
				p, _ := ecdh.P256().GenerateKey(rand.Reader)
				_, err := dev.ECDH(ctx, blob, p.PublicKey())
				return err
			}, device.ErrWrappedUnsupported},
			{"blob public key", func() error { _, err := dev.PublicKey(ctx, blob); return err }, device.ErrWrappedUnsupported},
			{"blob destroy", func() error { return dev.Destroy(ctx, blob) }, device.ErrWrappedUnsupported},
		}...)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := dev.Calls()
			err := tc.op()
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if d := device.CallsDelta(before, dev.Calls()); len(d) != 0 {
				t.Fatalf("rejected input made device calls: %v", d)
			}
		})
	}
}

// testWycheproofECDH runs Wycheproof's ecpoint ECDH vectors: each peer
// point goes through device.ParsePoint; invalid points must be rejected
// there, with no device call; valid ones (and the one "acceptable"
// compressed point, which we accept) must give the vector's secret from the
// device, using the vector's private key imported into it.
func testWycheproofECDH(t *testing.T, dev device.Device) {
	imp, ok := dev.(device.Importer)
	if !ok {
		t.Skip("device cannot import keys")
	}
	ctx := context.Background()
	owner := NewOwner(t, "wycheproof")
	imported := map[string]device.Ref{}
	defer func() {
		for _, ref := range imported {
			dev.Destroy(ctx, ref)
		}
	}()
	var valid, invalid int
	for _, v := range wycheproof.ECDH(t, "ecdh_secp256r1_ecpoint_test.json") {
		name := fmt.Sprintf("tcId %d (%s)", v.TcID, v.Comment)
		before := dev.Calls()
		peer, perr := device.ParsePoint(v.Public)
		if v.Result == wycheproof.Invalid {
			invalid++
			if perr == nil {
				t.Errorf("%s: invalid point accepted", name)
			} else if !errors.Is(perr, device.ErrInvalidPoint) {
				t.Errorf("%s: untyped error %v", name, perr)
			}
			if d := device.CallsDelta(before, dev.Calls()); len(d) != 0 {
				t.Errorf("%s: device called for an invalid point: %v", name, d)
			}
			continue
		}
		if perr != nil {
			t.Errorf("%s: %s point rejected: %v", name, v.Result, perr)
			continue
		}
		valid++
		ref, ok := imported[hex.EncodeToString(v.Private)]
		if !ok {
			priv, err := ecdh.P256().NewPrivateKey(scalar32(v.Private))
			if err != nil {
				t.Fatalf("%s: private key: %v", name, err)
			}
			k, err := imp.Import(ctx, owner, priv)
			if err != nil {
				t.Fatalf("%s: import: %v", name, err)
			}
			checkStorage(t, dev, k)
			ref = k.Ref()
			imported[hex.EncodeToString(v.Private)] = ref
		}
		z, err := dev.ECDH(ctx, ref, peer)
		if err != nil {
			t.Errorf("%s: ECDH: %v", name, err)
			continue
		}
		if hex.EncodeToString(z) != hex.EncodeToString(v.Shared) {
			t.Errorf("%s: shared secret %x, want %x", name, z, v.Shared)
		}
	}
	t.Logf("%d valid/acceptable secrets equal, %d invalid points rejected before the device", valid, invalid)
	if valid == 0 || invalid == 0 {
		t.Fatal("vector file did not exercise both outcomes")
	}
}

// scalar32 left-pads or strips a Wycheproof private key to 32 bytes.
func scalar32(b []byte) []byte {
	for len(b) > 32 && b[0] == 0 {
		b = b[1:]
	}
	out := make([]byte, 32)
	copy(out[32-len(b):], b)
	return out
}

// testConcurrent signs and derives from many goroutines on one device.
func testConcurrent(t *testing.T, dev device.Device) {
	ctx := context.Background()
	owner := NewOwner(t, "conc")
	var keys []device.Key
	for range 4 {
		k, err := dev.Generate(ctx, owner)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		defer dev.Destroy(ctx, k.Ref())
	}
	const workers, ops = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := keys[w%len(keys)]
			ref := k.Ref()
			devPub, err := device.ParsePoint(mustBytesNoT(k.Public))
			if err != nil {
				errs <- err
				return
			}
			for i := range ops {
				d := digestOf(fmt.Sprint(w, i))
				sig, err := dev.Sign(ctx, ref, d)
				if err != nil {
					errs <- fmt.Errorf("worker %d sign %d: %w", w, i, err)
					return
				}
				if !device.VerifyRaw(k.Public, d, sig) {
					errs <- fmt.Errorf("worker %d: bad signature", w)
					return
				}
				peer, _ := ecdh.P256().GenerateKey(rand.Reader)
				z, err := dev.ECDH(ctx, ref, peer.PublicKey())
				if err != nil {
					errs <- fmt.Errorf("worker %d ecdh %d: %w", w, i, err)
					return
				}
				want, _ := peer.ECDH(devPub)
				if hex.EncodeToString(z) != hex.EncodeToString(want) {
					errs <- fmt.Errorf("worker %d: wrong secret", w)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func mustBytesNoT(k interface{ Bytes() ([]byte, error) }) []byte {
	b, _ := k.Bytes()
	return b
}

// testBlobs (wrapped storage): a blob that is truncated, altered anywhere,
// or another key's is refused with ErrInvalidBlob by every operation, and
// the key's own blob still works afterwards.
func testBlobs(t *testing.T, dev device.Device) {
	ctx := context.Background()
	owner := NewOwner(t, "blobs")
	k, err := dev.Generate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	other, err := dev.Generate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Destroy(ctx, k.Ref())
	defer dev.Destroy(ctx, other.Ref())
	flip := func(i int) []byte {
		b := slices.Clone(k.Wrapped)
		b[i] ^= 0x01
		return b
	}
	n := len(k.Wrapped)
	cases := []struct {
		name string
		blob []byte
	}{
		{"truncated by one", k.Wrapped[:n-1]},
		{"truncated by a block", k.Wrapped[:n-8]},
		{"extended", append(slices.Clone(k.Wrapped), make([]byte, 8)...)},
		{"version", flip(0)},
		{"wrapping key id", flip(1)},
		{"mechanism", flip(17)},
		{"first wrapped byte", flip(18)},
		{"middle", flip(n / 2)},
		{"last byte", flip(n - 1)},
		{"another key's", other.Wrapped},
	}
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref := device.Ref{Owner: owner, KID: k.KID, Wrapped: tc.blob}
			if _, err := dev.Sign(ctx, ref, digestOf("blob")); !errors.Is(err, device.ErrInvalidBlob) {
				t.Errorf("Sign = %v, want ErrInvalidBlob", err)
			}
			if _, err := dev.ECDH(ctx, ref, peer.PublicKey()); !errors.Is(err, device.ErrInvalidBlob) {
				t.Errorf("ECDH = %v, want ErrInvalidBlob", err)
			}
			if _, err := dev.PublicKey(ctx, ref); !errors.Is(err, device.ErrInvalidBlob) {
				t.Errorf("PublicKey = %v, want ErrInvalidBlob", err)
			}
		})
	}
	sig, err := dev.Sign(ctx, k.Ref(), digestOf("blob"))
	if err != nil || !device.VerifyRaw(k.Public, digestOf("blob"), sig) {
		t.Fatalf("the key's own blob after the refusals: %v", err)
	}
	if err := dev.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}
