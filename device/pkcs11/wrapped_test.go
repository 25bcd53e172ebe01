//go:build cgo && !nopkcs11

package pkcs11

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/device/devicetest"
)

// wrappedConfig is the test token in wrapped storage under a wrapping key
// of its own label (removed at the end), so tests do not share one.
func wrappedConfig(t testing.TB, mech WrapMech, cache int) Config {
	t.Helper()
	cfg := testConfig(t)
	cfg.Storage = device.StorageWrapped
	cfg.WrapMech = mech
	cfg.Cache = cache
	cfg.WrapLabel = string(devicetest.NewOwner(t, "wrap"))
	t.Cleanup(func() { removeWrappingKeys(t, cfg, cfg.WrapLabel) })
	return cfg
}

func openWith(t testing.TB, cfg Config) *Device {
	t.Helper()
	d, err := Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// wrappingKeyHandles lists the secret keys labelled label through a raw
// session.
func wrappingKeyHandles(t testing.TB, lib *p11.Ctx, s p11.SessionHandle, label string) []p11.ObjectHandle {
	t.Helper()
	if err := lib.FindObjectsInit(s, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY), p11.NewAttribute(p11.CKA_LABEL, label)}); err != nil {
		t.Fatal(err)
	}
	defer lib.FindObjectsFinal(s)
	hs, _, err := lib.FindObjects(s, 100)
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

func removeWrappingKeys(t testing.TB, cfg Config, label string) {
	lib, s := rawSession(t, cfg)
	for _, h := range wrappingKeyHandles(t, lib, s, label) {
		lib.DestroyObject(s, h)
	}
}

// sessionKeys counts the private-key session objects the application
// holds (every PKCS#11 context of this process sees the same ones).
func sessionKeys(t testing.TB, d *Device) int {
	t.Helper()
	return sessionKeysOf(t, d, "")
}

// sessionKeysOf counts the session private keys labelled with owner (all
// of them when owner is empty): session objects are visible to every
// PKCS#11 context of the process, so a test counts its own.
func sessionKeysOf(t testing.TB, d *Device, owner device.Owner) int {
	t.Helper()
	attrs := []*p11.Attribute{p11.NewAttribute(p11.CKA_TOKEN, false)}
	if owner != "" {
		attrs = append(attrs, p11.NewAttribute(p11.CKA_LABEL, string(owner)))
	}
	var n int
	err := d.do(context.Background(), func(g *generation, s p11.SessionHandle) error {
		hs, err := d.find(s, p11.CKO_PRIVATE_KEY, attrs...)
		n = len(hs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWrappedConformance: the device conformance suite, Wycheproof's ECDH
// vectors included (imported keys are wrapped too), in wrapped storage
// with each mechanism offered.
func TestWrappedConformance(t *testing.T) {
	for _, mech := range []WrapMech{WrapAESKeyWrapPad, WrapAESKeyWrap} {
		t.Run(string(mech), func(t *testing.T) {
			d := openWith(t, wrappedConfig(t, mech, 0))
			if st := d.Info().Storage; st != device.StorageWrapped {
				t.Fatalf("storage %q", st)
			}
			devicetest.Run(t, d)
		})
	}
}

// TestWrappedCalls: a generation is C_GenerateKeyPair, C_GetAttributeValue,
// C_WrapKey and two C_DestroyObject; the first use of a blob unwraps it
// and checks its kid (C_UnwrapKey, C_DeriveKey, C_GetAttributeValue,
// C_DestroyObject) before signing; every later signature is C_SignInit +
// C_Sign, as for a token object. No object of the key is left after
// Generate, and the unwrapped one is a sensitive, non-extractable session
// object.
func TestWrappedCalls(t *testing.T) {
	ctx := context.Background()
	d := openWith(t, wrappedConfig(t, "", 0))
	owner := devicetest.NewOwner(t, "wcalls")
	base := sessionKeys(t, d)

	before := d.Calls()
	k, err := d.Generate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	if got := device.CallsDelta(before, d.Calls()); len(got) != 4 || got[CallGenerateKeyPair] != 1 ||
		got[CallGetAttributeValue] != 1 || got[CallWrapKey] != 1 || got[CallDestroyObject] != 2 {
		t.Fatalf("generate made calls %v", got)
	}
	if n := sessionKeys(t, d); n != base {
		t.Fatalf("%d private session objects after Generate, want %d", n, base)
	}
	if n := tokenObjects(t, d, k.KID); n != 0 {
		t.Fatalf("%d objects with the new kid after Generate", n)
	}

	digest := sha256.Sum256([]byte("x"))
	before = d.Calls()
	if _, err := d.Sign(ctx, k.Ref(), digest[:]); err != nil {
		t.Fatal(err)
	}
	if got := device.CallsDelta(before, d.Calls()); len(got) != 6 || got[CallUnwrapKey] != 1 || got[CallDeriveKey] != 1 ||
		got[CallGetAttributeValue] != 1 || got[CallDestroyObject] != 1 || got[CallSignInit] != 1 || got[CallSign] != 1 {
		t.Fatalf("sign on a miss made calls %v", got)
	}
	before = d.Calls()
	if _, err := d.Sign(ctx, k.Ref(), digest[:]); err != nil {
		t.Fatal(err)
	}
	if got := device.CallsDelta(before, d.Calls()); len(got) != 2 || got[CallSignInit] != 1 || got[CallSign] != 1 {
		t.Fatalf("sign on a hit made calls %v", got)
	}

	// The unwrapped object.
	err = d.do(ctx, func(g *generation, s p11.SessionHandle) error {
		hs, err := d.find(s, p11.CKO_PRIVATE_KEY, p11.NewAttribute(p11.CKA_ID, k.KID.Bytes()))
		if err != nil || len(hs) != 1 {
			return fmt.Errorf("%d objects with the kid: %v", len(hs), err)
		}
		attrs, err := d.lib.GetAttributeValue(s, hs[0], []*p11.Attribute{
			p11.NewAttribute(p11.CKA_TOKEN, nil), p11.NewAttribute(p11.CKA_SENSITIVE, nil),
			p11.NewAttribute(p11.CKA_EXTRACTABLE, nil), p11.NewAttribute(p11.CKA_LABEL, nil)})
		if err != nil {
			return err
		}
		want := map[uint]string{p11.CKA_TOKEN: "\x00", p11.CKA_SENSITIVE: "\x01", p11.CKA_EXTRACTABLE: "\x00", p11.CKA_LABEL: string(owner)}
		for _, a := range attrs {
			if string(a.Value) != want[a.Type] {
				return fmt.Errorf("attribute %#x = %q, want %q", a.Type, a.Value, want[a.Type])
			}
		}
		if _, err := d.lib.WrapKey(s, []*p11.Mechanism{p11.NewMechanism(WrapAESKeyWrapPad.ckm(), nil)}, g.w.cur.h, hs[0]); !isCode(err, p11.CKR_KEY_UNEXTRACTABLE) {
			return fmt.Errorf("wrapping the unwrapped key: %v, want CKR_KEY_UNEXTRACTABLE", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Destroy drops the unwrapped object.
	if err := d.Destroy(ctx, k.Ref()); err != nil {
		t.Fatal(err)
	}
	if n := sessionKeys(t, d); n != base {
		t.Fatalf("%d private session objects after Destroy, want %d", n, base)
	}
	if d.CachedKeys() != 0 {
		t.Fatal("Destroy left the key in the cache")
	}
}

// tokenObjects counts the objects of any class with CKA_ID = kid.
func tokenObjects(t testing.TB, d *Device, kid device.KID) int {
	t.Helper()
	var n int
	err := d.do(context.Background(), func(g *generation, s p11.SessionHandle) error {
		for _, class := range []uint{p11.CKO_PRIVATE_KEY, p11.CKO_PUBLIC_KEY} {
			hs, err := d.find(s, class, p11.NewAttribute(p11.CKA_ID, kid.Bytes()))
			if err != nil {
				return err
			}
			n += len(hs)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWrappingKeyAttributes: the wrapping key made by the device is a
// private, sensitive, never-extractable, unmodifiable AES-256 token key for
// wrap and unwrap only.
func TestWrappingKeyAttributes(t *testing.T) {
	cfg := wrappedConfig(t, "", 0)
	openWith(t, cfg)
	lib, s := rawSession(t, cfg)
	hs := wrappingKeyHandles(t, lib, s, cfg.WrapLabel)
	if len(hs) != 1 {
		t.Fatalf("%d wrapping keys", len(hs))
	}
	attrs, err := lib.GetAttributeValue(s, hs[0], []*p11.Attribute{
		p11.NewAttribute(p11.CKA_TOKEN, nil), p11.NewAttribute(p11.CKA_PRIVATE, nil),
		p11.NewAttribute(p11.CKA_SENSITIVE, nil), p11.NewAttribute(p11.CKA_EXTRACTABLE, nil),
		p11.NewAttribute(p11.CKA_NEVER_EXTRACTABLE, nil), p11.NewAttribute(p11.CKA_MODIFIABLE, nil),
		p11.NewAttribute(p11.CKA_WRAP, nil), p11.NewAttribute(p11.CKA_UNWRAP, nil),
		p11.NewAttribute(p11.CKA_ENCRYPT, nil), p11.NewAttribute(p11.CKA_DECRYPT, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"\x01", "\x01", "\x01", "\x00", "\x01", "\x00", "\x01", "\x01", "\x00", "\x00"}
	for i, a := range attrs {
		if string(a.Value) != want[i] {
			t.Errorf("attribute %#x = %q, want %q", a.Type, a.Value, want[i])
		}
	}
}

// TestWrappingKeyRefused: a key under the wrapping label that could leave
// the token, or cannot unwrap, is refused at Open.
func TestWrappingKeyRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		attrs []*p11.Attribute
	}{
		{"extractable", []*p11.Attribute{p11.NewAttribute(p11.CKA_EXTRACTABLE, true), p11.NewAttribute(p11.CKA_SENSITIVE, true)}},
		{"not sensitive", []*p11.Attribute{p11.NewAttribute(p11.CKA_EXTRACTABLE, false), p11.NewAttribute(p11.CKA_SENSITIVE, false)}},
		{"no unwrap", []*p11.Attribute{p11.NewAttribute(p11.CKA_EXTRACTABLE, false), p11.NewAttribute(p11.CKA_SENSITIVE, true),
			p11.NewAttribute(p11.CKA_UNWRAP, false)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := wrappedConfig(t, "", 0)
			lib, s := rawSession(t, cfg)
			id := make([]byte, wrapIDSize)
			rand.Read(id)
			tmpl := []*p11.Attribute{
				p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY), p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
				p11.NewAttribute(p11.CKA_VALUE_LEN, 32), p11.NewAttribute(p11.CKA_TOKEN, true),
				p11.NewAttribute(p11.CKA_WRAP, true), p11.NewAttribute(p11.CKA_LABEL, cfg.WrapLabel), p11.NewAttribute(p11.CKA_ID, id),
			}
			if tc.name != "no unwrap" {
				tmpl = append(tmpl, p11.NewAttribute(p11.CKA_UNWRAP, true))
			}
			if _, err := lib.GenerateKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_GEN, nil)}, append(tmpl, tc.attrs...)); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(context.Background(), cfg, nil); !errors.Is(err, ErrWrappingKey) {
				t.Fatalf("Open = %v, want ErrWrappingKey", err)
			}
		})
	}
}

// TestWrappingKeyRace: eight devices open at once on a label with no key:
// one key is left, every device wraps under it, and a blob made by one is
// used by every other.
func TestWrappingKeyRace(t *testing.T) {
	// SoftHSM 2.6.1 crashes on concurrent first C_Initialize calls in one
	// process; initialise it once so that the devices race on the
	// wrapping key, not on the library.
	if err := p11.New(testConfig(t).Module).Initialize(); err != nil && !isCode(err, p11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		t.Fatal(err)
	}
	for round := range 3 {
		cfg := wrappedConfig(t, "", 0)
		const n = 8
		devs := make([]*Device, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				devs[i], errs[i] = Open(context.Background(), cfg, nil)
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: device %d: %v", round, i, err)
			}
			t.Cleanup(func() { devs[i].Close() })
		}
		lib, s := rawSession(t, cfg)
		if hs := wrappingKeyHandles(t, lib, s, cfg.WrapLabel); len(hs) != 1 {
			t.Fatalf("round %d: %d wrapping keys after a concurrent start", round, len(hs))
		}
		ctx := context.Background()
		owner := devicetest.NewOwner(t, "race")
		digest := sha256.Sum256([]byte("race"))
		for i, d := range devs {
			k, err := d.Generate(ctx, owner)
			if err != nil {
				t.Fatal(err)
			}
			other := devs[(i+1)%n]
			sig, err := other.Sign(ctx, k.Ref(), digest[:])
			if err != nil || !device.VerifyRaw(k.Public, digest[:], sig) {
				t.Fatalf("round %d: blob of device %d on device %d: %v", round, i, (i+1)%n, err)
			}
		}
	}
}

// TestWrappedBlobRefusedBeforeSigning: an altered, truncated or foreign
// blob makes no C_SignInit/C_Sign and no C_DeriveKey with the caller's
// peer: the token signs nothing with it.
func TestWrappedBlobRefusedBeforeSigning(t *testing.T) {
	ctx := context.Background()
	d := openWith(t, wrappedConfig(t, "", 0))
	owner := devicetest.NewOwner(t, "wrefuse")
	k, err := d.Generate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	other, err := d.Generate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	altered := append([]byte(nil), k.Wrapped...)
	altered[len(altered)-3] ^= 0x80
	digest := sha256.Sum256([]byte("refuse"))
	for name, blob := range map[string][]byte{
		"altered": altered, "truncated": k.Wrapped[:len(k.Wrapped)-8], "foreign": other.Wrapped,
	} {
		before := d.Calls()
		_, err := d.Sign(ctx, device.Ref{Owner: owner, KID: k.KID, Wrapped: blob}, digest[:])
		if !errors.Is(err, device.ErrInvalidBlob) {
			t.Errorf("%s: %v, want ErrInvalidBlob", name, err)
		}
		got := device.CallsDelta(before, d.Calls())
		if got[CallSignInit] != 0 || got[CallSign] != 0 || got[CallInitialize] != 0 {
			t.Errorf("%s: calls %v", name, got)
		}
	}
	if d.CachedKeys() != 0 {
		t.Fatalf("%d keys cached after refusals", d.CachedKeys())
	}
}

// TestWrappedCacheBound: 2 000 keys generated and each used twice through
// a cache of 64: the token never holds more than 64 unwrapped session
// objects (plus none in flight here), the cache never more than 64
// entries, and Close destroys them all.
func TestWrappedCacheBound(t *testing.T) {
	const keys, size = 2000, 64
	ctx := context.Background()
	cfg := wrappedConfig(t, "", size)
	d := openWith(t, cfg)
	owner := devicetest.NewOwner(t, "wbound")
	base := sessionKeysOf(t, d, owner)
	digest := sha256.Sum256([]byte("bound"))
	var first device.Key
	maxSeen := 0
	for i := range keys {
		k, err := d.Generate(ctx, owner)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = k
		}
		for range 2 {
			if _, err := d.Sign(ctx, k.Ref(), digest[:]); err != nil {
				t.Fatal(err)
			}
		}
		if i%100 == 99 {
			n := sessionKeysOf(t, d, owner) - base
			maxSeen = max(maxSeen, n)
			if n > size || d.CachedKeys() > size {
				t.Fatalf("after %d keys: %d session objects, %d cached (bound %d)", i+1, n, d.CachedKeys(), size)
			}
		}
	}
	if maxSeen != size {
		t.Fatalf("the cache peaked at %d objects, want it full at %d", maxSeen, size)
	}
	// The first key was evicted long ago: it unwraps again.
	before := d.Calls()
	sig, err := d.Sign(ctx, first.Ref(), digest[:])
	if err != nil || !device.VerifyRaw(first.Public, digest[:], sig) {
		t.Fatalf("evicted key: %v", err)
	}
	if device.CallsDelta(before, d.Calls())[CallUnwrapKey] != 1 {
		t.Fatal("an evicted key did not unwrap again")
	}
	lib, s := rawSession(t, cfg)
	count := func() int {
		if err := lib.FindObjectsInit(s, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), p11.NewAttribute(p11.CKA_LABEL, string(owner))}); err != nil {
			t.Fatal(err)
		}
		defer lib.FindObjectsFinal(s)
		hs, _, err := lib.FindObjects(s, 2*size)
		if err != nil {
			t.Fatal(err)
		}
		return len(hs)
	}
	if n := count(); n != size {
		t.Fatalf("another context sees %d of the owner's objects, want %d", n, size)
	}
	d.Close()
	if n := count(); n != 0 {
		t.Fatalf("%d unwrapped objects left after Close", n)
	}
}

// TestWrappedConcurrentEviction: 16 goroutines sign and derive with 8 keys
// through a cache of 2, so entries are evicted while in use (run under
// -race): every answer is right and the token ends with at most 2
// unwrapped objects.
func TestWrappedConcurrentEviction(t *testing.T) {
	ctx := context.Background()
	cfg := wrappedConfig(t, "", 2)
	cfg.Sessions = 8
	d := openWith(t, cfg)
	base := sessionKeys(t, d)
	owner := devicetest.NewOwner(t, "wevict")
	var keys []device.Key
	for range 8 {
		k, err := d.Generate(ctx, owner)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				k := keys[(w+i)%len(keys)]
				digest := sha256.Sum256([]byte(fmt.Sprint(w, i)))
				sig, err := d.Sign(ctx, k.Ref(), digest[:])
				if err != nil || !device.VerifyRaw(k.Public, digest[:], sig) {
					errs <- fmt.Errorf("worker %d sign %d: %v", w, i, err)
					return
				}
				peer, _ := ecdh.P256().GenerateKey(rand.Reader)
				z, err := d.ECDH(ctx, k.Ref(), peer.PublicKey())
				devPub, _ := device.ParsePoint(mustPoint(k))
				want, _ := peer.ECDH(devPub)
				if err != nil || hex.EncodeToString(z) != hex.EncodeToString(want) {
					errs <- fmt.Errorf("worker %d ecdh %d: %v", w, i, err)
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
	if n := sessionKeys(t, d) - base; n > 2 {
		t.Fatalf("%d unwrapped objects with a cache of 2", n)
	}
}

func mustPoint(k device.Key) []byte {
	b, _ := k.Public.Bytes()
	return b
}

// TestWrappedRecoversFromFinalize: the library is finalised under the
// device; the next operations re-initialise once, find the wrapping key
// again, start with an empty cache (its objects died with the sessions)
// and sign with the same blobs.
func TestWrappedRecoversFromFinalize(t *testing.T) {
	ctx := context.Background()
	cfg := wrappedConfig(t, "", 0)
	d := openWith(t, cfg)
	owner := devicetest.NewOwner(t, "wfault")
	k, err := d.Generate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("fault"))
	if _, err := d.Sign(ctx, k.Ref(), digest[:]); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		if d.CachedKeys() != 1 {
			t.Fatalf("round %d: %d cached keys", round, d.CachedKeys())
		}
		if err := p11.New(cfg.Module).Finalize(); err != nil {
			t.Fatal(err)
		}
		inits, unwraps := d.Calls()[CallInitialize], d.Calls()[CallUnwrapKey]
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sig, err := d.Sign(ctx, k.Ref(), digest[:])
				if err == nil && !device.VerifyRaw(k.Public, digest[:], sig) {
					err = errors.New("bad signature")
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: sign after finalize: %v", round, err)
			}
		}
		if n := d.Calls()[CallInitialize] - inits; n != 1 {
			t.Fatalf("round %d: %d re-initialisations for one failure", round, n)
		}
		if d.Calls()[CallUnwrapKey] == unwraps {
			t.Fatalf("round %d: the cache survived the re-initialisation", round)
		}
	}
}

// TestWrappedRotation: a device on a new wrapping label wraps new keys
// under the new key and still uses blobs of the old one while it is on
// the token; once the old key is gone, its blobs are refused.
func TestWrappedRotation(t *testing.T) {
	ctx := context.Background()
	oldCfg := wrappedConfig(t, "", 0)
	oldDev := openWith(t, oldCfg)
	owner := devicetest.NewOwner(t, "wrot")
	k1, err := oldDev.Generate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	newCfg := wrappedConfig(t, WrapAESKeyWrap, 0)
	newDev := openWith(t, newCfg)
	k2, err := newDev.Generate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	if string(k1.Wrapped[1:17]) == string(k2.Wrapped[1:17]) {
		t.Fatal("new key wrapped under the old wrapping key")
	}
	digest := sha256.Sum256([]byte("rotation"))
	for _, k := range []device.Key{k1, k2} {
		sig, err := newDev.Sign(ctx, k.Ref(), digest[:])
		if err != nil || !device.VerifyRaw(k.Public, digest[:], sig) {
			t.Fatalf("sign with %s: %v", k.KID, err)
		}
	}
	// Re-wrapping (the lead's operator command) is Import-free: a key
	// cannot be re-wrapped without unwrapping; here we only check that
	// the old blob dies with its wrapping key.
	removeWrappingKeys(t, oldCfg, oldCfg.WrapLabel)
	newDev.Destroy(ctx, k1.Ref()) // drop the cached copy
	if _, err := newDev.Sign(ctx, k1.Ref(), digest[:]); !errors.Is(err, device.ErrInvalidBlob) {
		t.Fatalf("blob of a removed wrapping key: %v, want ErrInvalidBlob", err)
	}
}

// TestWrappedServesTokenKeys: in wrapped storage a ref without a blob
// names a token object, so keys made before the switch keep working and
// are listed.
func TestWrappedServesTokenKeys(t *testing.T) {
	ctx := context.Background()
	tok := openTest(t)
	owner := devicetest.NewOwner(t, "wlegacy")
	k, err := tok.Generate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Destroy(ctx, k.Ref())
	d := openWith(t, wrappedConfig(t, "", 0))
	digest := sha256.Sum256([]byte("legacy"))
	sig, err := d.Sign(ctx, k.Ref(), digest[:])
	if err != nil || !device.VerifyRaw(k.Public, digest[:], sig) {
		t.Fatalf("token key on a wrapped device: %v", err)
	}
	keys, err := d.List(ctx, owner)
	if err != nil || len(keys) != 1 || keys[0].KID != k.KID || keys[0].Wrapped != nil {
		t.Fatalf("List = %v, %v", keys, err)
	}
}
