//go:build cgo && !nopkcs11

package pkcs11

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/device/devicetest"
)

// extractableTokenKey puts a P-256 pair on the token as another tool
// could have made it: token objects with the kid as CKA_ID and the owner
// as CKA_LABEL, the private one sensitive but extractable (and, with
// trusted, wrappable by trusted keys only).
func extractableTokenKey(t testing.TB, cfg Config, owner device.Owner, trusted bool) device.Key {
	t.Helper()
	return extractableTokenKeyFor(t, cfg, owner, trusted, true)
}

// extractableTokenKeyFor is extractableTokenKey with CKA_SIGN as sign.
func extractableTokenKeyFor(t testing.TB, cfg Config, owner device.Owner, trusted, sign bool) device.Key {
	t.Helper()
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := device.PublicKeyFromBytes(priv.PublicKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	kid, err := device.KIDOf(pub)
	if err != nil {
		t.Fatal(err)
	}
	lib, s := rawSession(t, cfg)
	common := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC), p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_EC_PARAMS, p256OID), p11.NewAttribute(p11.CKA_ID, kid.Bytes()),
		p11.NewAttribute(p11.CKA_LABEL, string(owner)),
	}
	if _, err := lib.CreateObject(s, append([]*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true), p11.NewAttribute(p11.CKA_EXTRACTABLE, true),
		p11.NewAttribute(p11.CKA_WRAP_WITH_TRUSTED, trusted),
		p11.NewAttribute(p11.CKA_SIGN, sign), p11.NewAttribute(p11.CKA_DERIVE, true),
		p11.NewAttribute(p11.CKA_VALUE, priv.Bytes()),
	}, common...)); err != nil {
		t.Fatal(err)
	}
	if _, err := lib.CreateObject(s, append([]*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY), p11.NewAttribute(p11.CKA_PRIVATE, false),
		p11.NewAttribute(p11.CKA_VERIFY, true), p11.NewAttribute(p11.CKA_EC_POINT, wrapOctetString(priv.PublicKey().Bytes())),
	}, common...)); err != nil {
		t.Fatal(err)
	}
	return device.Key{KID: kid, Owner: owner, Public: pub}
}

// TestRewrap: a device on a new wrapping label re-wraps a blob of the old
// key: the new blob names the new key, signs for the same public key, and
// keeps working once the old wrapping key is gone; re-wrapping it again
// changes nothing and calls nothing. The temporary object is destroyed.
func TestRewrap(t *testing.T) {
	ctx := context.Background()
	oldCfg := wrappedConfig(t, "", 0)
	oldDev := openWith(t, oldCfg)
	owner := devicetest.NewOwner(t, "rw")
	k, err := oldDev.Generate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	newDev := openWith(t, wrappedConfig(t, WrapAESKeyWrap, 0))
	prefix, err := newDev.CurrentBlobPrefix(ctx)
	if err != nil || len(prefix) != blobHeaderSize-1 {
		t.Fatalf("prefix %x, %v", prefix, err)
	}
	if bytes.HasPrefix(k.Wrapped[1:], prefix) {
		t.Fatal("the old blob already has the new prefix")
	}

	before := newDev.Calls()
	blob, err := newDev.Rewrap(ctx, k.Ref())
	if err != nil {
		t.Fatal(err)
	}
	// (Plus a lookup of the old wrapping key, new to this device.)
	if got := device.CallsDelta(before, newDev.Calls()); got[CallUnwrapKey] != 1 || got[CallDeriveKey] != 1 ||
		got[CallWrapKey] != 1 || got[CallDestroyObject] != 2 || got[CallSign] != 0 {
		t.Fatalf("rewrap made calls %v", got)
	}
	if !bytes.HasPrefix(blob[1:], prefix) || blob[0] != k.Wrapped[0] {
		t.Fatalf("re-wrapped blob %x does not have %x after its version %x", blob[:blobHeaderSize], prefix, k.Wrapped[0])
	}
	if n := sessionKeysOf(t, newDev, owner); n != 0 {
		t.Fatalf("%d session objects of the owner after Rewrap", n)
	}
	if id, err := newDev.WrappingKeyOf(blob[1:]); err != nil || !bytes.Equal(id, prefix[:wrapIDSize]) {
		t.Fatalf("WrappingKeyOf = %x, %v", id, err)
	}

	before = newDev.Calls()
	again, err := newDev.Rewrap(ctx, device.Ref{Owner: owner, KID: k.KID, Wrapped: blob})
	if err != nil || !bytes.Equal(again, blob) {
		t.Fatalf("re-wrapping a current blob: %v", err)
	}
	if got := device.CallsDelta(before, newDev.Calls()); len(got) != 0 {
		t.Fatalf("re-wrapping a current blob made calls %v", got)
	}

	removeWrappingKeys(t, oldCfg, oldCfg.WrapLabel)
	fresh := openWith(t, newDev.cfg)
	digest := sha256.Sum256([]byte("rewrapped"))
	sig, err := fresh.Sign(ctx, device.Ref{Owner: owner, KID: k.KID, Wrapped: blob}, digest[:])
	if err != nil || !device.VerifyRaw(k.Public, digest[:], sig) {
		t.Fatalf("sign with the re-wrapped blob after the old key is gone: %v", err)
	}
	if _, err := fresh.Sign(ctx, k.Ref(), digest[:]); !errors.Is(err, device.ErrInvalidBlob) {
		t.Fatalf("old blob after its wrapping key is gone: %v, want ErrInvalidBlob", err)
	}
}

// TestRewrapRefusesAnotherKey: a blob holding another key than the kid's
// is refused before anything is wrapped (the kid check), and a ref
// without a blob is no re-wrap.
func TestRewrapRefusesAnotherKey(t *testing.T) {
	ctx := context.Background()
	oldDev := openWith(t, wrappedConfig(t, "", 0))
	owner := devicetest.NewOwner(t, "rwx")
	k1, err := oldDev.Generate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := oldDev.Generate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	newDev := openWith(t, wrappedConfig(t, "", 0))
	before := newDev.Calls()
	if _, err := newDev.Rewrap(ctx, device.Ref{Owner: owner, KID: k2.KID, Wrapped: k1.Wrapped}); !errors.Is(err, device.ErrInvalidBlob) {
		t.Fatalf("blob of another key: %v, want ErrInvalidBlob", err)
	}
	if n := device.CallsDelta(before, newDev.Calls())[CallWrapKey]; n != 0 {
		t.Fatalf("%d C_WrapKey for a blob of another key", n)
	}
	if n := sessionKeysOf(t, newDev, owner); n != 0 {
		t.Fatalf("%d session objects left", n)
	}
	if _, err := newDev.Rewrap(ctx, device.Ref{Owner: owner, KID: k1.KID}); !errors.Is(err, device.ErrInvalidBlob) {
		t.Fatalf("ref without a blob: %v, want ErrInvalidBlob", err)
	}
	if _, err := openTest(t).Rewrap(ctx, k1.Ref()); !errors.Is(err, device.ErrWrappedUnsupported) {
		t.Fatalf("token storage: %v, want ErrWrappedUnsupported", err)
	}
}

// TestWrapTokenKey: an extractable token key is wrapped (and checked) and
// stays on the token until destroyed; its blob signs for its public key.
// A key made by this device (never extractable) or one wrappable by a
// trusted key only is ErrNotExtractable without any C_WrapKey; a kid the
// token does not hold is ErrKeyNotFound.
func TestWrapTokenKey(t *testing.T) {
	ctx := context.Background()
	cfg := wrappedConfig(t, "", 0)
	d := openWith(t, cfg)
	owner := devicetest.NewOwner(t, "mig")

	k := extractableTokenKey(t, cfg, owner, false)
	blob, err := d.WrapTokenKey(ctx, k.Ref())
	if err != nil {
		t.Fatal(err)
	}
	if n := tokenObjects(t, d, k.KID); n != 2 {
		t.Fatalf("%d token objects after WrapTokenKey, want the pair still there", n)
	}
	if n := sessionKeysOf(t, d, owner); n != 0 {
		t.Fatalf("%d session objects after WrapTokenKey", n)
	}
	wrapped := device.Ref{Owner: owner, KID: k.KID, Wrapped: blob}
	digest := sha256.Sum256([]byte("migrated"))
	sig, err := d.Sign(ctx, wrapped, digest[:])
	if err != nil || !device.VerifyRaw(k.Public, digest[:], sig) {
		t.Fatalf("sign with the migrated blob: %v", err)
	}
	if err := d.Destroy(ctx, k.Ref()); err != nil {
		t.Fatal(err)
	}
	// The cached unwrapped copy (a session object with the kid) stays.
	if n := tokenObjects(t, d, k.KID); n != 1 || d.CachedKeys() != 1 {
		t.Fatalf("%d objects with the kid after Destroy of the token object, want the cached copy only", n)
	}
	d.Destroy(ctx, wrapped)
	if _, err := d.WrapTokenKey(ctx, k.Ref()); !errors.Is(err, device.ErrKeyNotFound) {
		t.Fatalf("kid no longer on the token: %v, want ErrKeyNotFound", err)
	}

	tok := openTest(t)
	own, err := tok.Generate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Destroy(ctx, own.Ref())
	trusted := extractableTokenKey(t, cfg, owner, true)
	defer d.Destroy(ctx, trusted.Ref())
	for name, ref := range map[string]device.Ref{"own": own.Ref(), "trusted only": trusted.Ref()} {
		before := d.Calls()
		if _, err := d.WrapTokenKey(ctx, ref); !errors.Is(err, device.ErrNotExtractable) {
			t.Fatalf("%s: %v, want ErrNotExtractable", name, err)
		}
		if n := device.CallsDelta(before, d.Calls())[CallWrapKey]; n != 0 {
			t.Fatalf("%s: %d C_WrapKey", name, n)
		}
	}
	sig, err = d.Sign(ctx, own.Ref(), digest[:])
	if err != nil || !device.VerifyRaw(own.Public, digest[:], sig) {
		t.Fatalf("a key that stays a token object: %v", err)
	}
}

// TestDestroyWrappedDropsTokenCopy: a migrated key whose token object was
// not destroyed yet (the migration stopped between the record and the
// destroy) leaves no copy when the key is destroyed through its blob.
func TestDestroyWrappedDropsTokenCopy(t *testing.T) {
	ctx := context.Background()
	cfg := wrappedConfig(t, "", 0)
	d := openWith(t, cfg)
	owner := devicetest.NewOwner(t, "migcopy")
	k := extractableTokenKey(t, cfg, owner, false)
	blob, err := d.WrapTokenKey(ctx, k.Ref())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Destroy(ctx, device.Ref{Owner: owner, KID: k.KID, Wrapped: blob}); err != nil {
		t.Fatal(err)
	}
	if n := tokenObjects(t, d, k.KID); n != 0 {
		t.Fatalf("%d token objects left after destroying the wrapped key", n)
	}
}

// TestWrappingKeysLifecycle: the device lists the wrapping keys with the
// current one marked, refuses to delete the current one, deletes another
// (whose blobs are then refused) and reports a deleted one as not found.
func TestWrappingKeysLifecycle(t *testing.T) {
	ctx := context.Background()
	oldCfg := wrappedConfig(t, "", 0)
	oldDev := openWith(t, oldCfg)
	owner := devicetest.NewOwner(t, "wkl")
	k, err := oldDev.Generate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	newCfg := wrappedConfig(t, "", 0)
	d := openWith(t, newCfg)
	keys, err := d.WrappingKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byLabel := map[string]device.WrappingKey{}
	for _, wk := range keys {
		byLabel[wk.Label] = wk
	}
	oldKey, newKey := byLabel[oldCfg.WrapLabel], byLabel[newCfg.WrapLabel]
	if oldKey.ID == nil || newKey.ID == nil || oldKey.Current || !newKey.Current {
		t.Fatalf("wrapping keys %+v", keys)
	}
	if id, _ := d.WrappingKeyOf(k.Wrapped[1:]); !bytes.Equal(id, oldKey.ID) {
		t.Fatalf("blob names %x, want %x", id, oldKey.ID)
	}
	if err := d.DeleteWrappingKey(ctx, newKey.ID); !errors.Is(err, device.ErrWrappingKeyInUse) {
		t.Fatalf("deleting the current key: %v, want ErrWrappingKeyInUse", err)
	}
	digest := sha256.Sum256([]byte("wkl"))
	if _, err := d.Sign(ctx, k.Ref(), digest[:]); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteWrappingKey(ctx, oldKey.ID); err != nil {
		t.Fatal(err)
	}
	d.Destroy(ctx, k.Ref()) // drop the cached copy
	if _, err := d.Sign(ctx, k.Ref(), digest[:]); !errors.Is(err, device.ErrInvalidBlob) {
		t.Fatalf("blob of a deleted wrapping key: %v, want ErrInvalidBlob", err)
	}
	if err := d.DeleteWrappingKey(ctx, oldKey.ID); !errors.Is(err, device.ErrKeyNotFound) {
		t.Fatalf("deleting it again: %v, want ErrKeyNotFound", err)
	}
}

// FuzzBlobWrappingKey: the header reader never panics and agrees with
// parseBlob on every blob parseBlob accepts.
func FuzzBlobWrappingKey(f *testing.F) {
	f.Add(appendBlob(nil, blob{wrapID: make([]byte, wrapIDSize), mech: WrapAESKeyWrapPad, wrapped: make([]byte, 80)}))
	f.Add(appendBlob(nil, blob{wrapID: make([]byte, wrapIDSize), mech: WrapAESKeyWrap, usage: usageDerive, wrapped: make([]byte, 80)}))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		id, err := blobWrappingKey(b[1:])
		if pb, perr := parseBlob(b); perr == nil && (err != nil || !bytes.Equal(id, pb.wrapID)) {
			t.Fatalf("blobWrappingKey = %x, %v; parseBlob names %x", id, err, pb.wrapID)
		}
		if err == nil && len(id) != wrapIDSize {
			t.Fatalf("id of %d bytes", len(id))
		}
	})
}

// BenchmarkRewrap (docs/benchmarks.md, Issue 12): one re-wrap of a blob
// under another wrapping key (C_UnwrapKey into a temporary object, the
// kid check, C_WrapKey, C_DestroyObject), cycling over 64 keys; reports
// re-wraps per second.
func BenchmarkRewrap(b *testing.B) {
	ctx := context.Background()
	oldDev := openWith(b, wrappedConfig(b, "", 0))
	owner := devicetest.NewOwner(b, "bench-rw")
	var keys [64]device.Key
	for i := range keys {
		var err error
		if keys[i], err = oldDev.Generate(ctx, owner); err != nil {
			b.Fatal(err)
		}
	}
	newDev := openWith(b, wrappedConfig(b, "", 0))
	i := 0
	for b.Loop() {
		if _, err := newDev.Rewrap(ctx, keys[i%len(keys)].Ref()); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rewraps/s")
}

// TestRewrapKeepsDeriveOnly: a derive-only key (SECDSA's aU) re-wrapped
// under a new wrapping key is still derive-only: its new blob keeps the
// version that says so, Sign refuses it, ECDH works.
func TestRewrapKeepsDeriveOnly(t *testing.T) {
	ctx := context.Background()
	oldDev := openWith(t, wrappedConfig(t, "", 0))
	owner := devicetest.NewOwner(t, "rwd")
	k, err := oldDev.GenerateDeriveOnly(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	newDev := openWith(t, wrappedConfig(t, WrapAESKeyWrap, 0))
	b, err := newDev.Rewrap(ctx, k.Ref())
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != k.Wrapped[0] || bytes.Equal(b, k.Wrapped) {
		t.Fatalf("re-wrapped blob version %d, was %d", b[0], k.Wrapped[0])
	}
	ref := device.Ref{Owner: owner, KID: k.KID, Wrapped: b}
	if _, err := newDev.Sign(ctx, ref, make([]byte, 32)); !errors.Is(err, device.ErrKeyUsage) {
		t.Fatalf("sign with a re-wrapped derive-only key: %v, want ErrKeyUsage", err)
	}
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	if _, err := newDev.ECDH(ctx, ref, peer.PublicKey()); err != nil {
		t.Fatal(err)
	}
}

// TestWrapTokenKeyKeepsDeriveOnly: a token key without CKA_SIGN (derive
// only) is wrapped into a derive-only blob: Sign refuses the blob, ECDH
// works. Before, every migrated key got a version-1 blob, which unwraps
// with CKA_SIGN: a key the token would not sign with signed once migrated.
func TestWrapTokenKeyKeepsDeriveOnly(t *testing.T) {
	ctx := context.Background()
	cfg := wrappedConfig(t, "", 0)
	d := openWith(t, cfg)
	owner := devicetest.NewOwner(t, "migd")
	k := extractableTokenKeyFor(t, cfg, owner, false, false)
	defer d.Destroy(ctx, k.Ref())
	if _, err := d.Sign(ctx, k.Ref(), make([]byte, 32)); !errors.Is(err, device.ErrKeyUsage) {
		t.Fatalf("sign with the token object: %v, want ErrKeyUsage", err)
	}
	blob, err := d.WrapTokenKey(ctx, k.Ref())
	if err != nil {
		t.Fatal(err)
	}
	ref := device.Ref{Owner: owner, KID: k.KID, Wrapped: blob}
	defer d.Destroy(ctx, ref)
	if _, err := d.Sign(ctx, ref, make([]byte, 32)); !errors.Is(err, device.ErrKeyUsage) {
		t.Fatalf("sign with the migrated blob: %v, want ErrKeyUsage", err)
	}
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	if _, err := d.ECDH(ctx, ref, peer.PublicKey()); err != nil {
		t.Fatal(err)
	}
}
