//go:build cgo && !nopkcs11

package pkcs11

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	p11 "github.com/miekg/pkcs11"

	"github.com/wsca/wsca/device"
)

// ErrWrappingKey is returned by Open in wrapped storage when the wrapping
// key found by label is unfit: extractable, not sensitive, not an AES-256
// key for wrapping and unwrapping, or without a 16-byte CKA_ID. The device
// refuses to wrap under a key that could leave the token.
var ErrWrappingKey = errors.New("pkcs11: unusable wrapping key")

// wrapState is the wrapped-storage part of a generation.
type wrapState struct {
	mech    WrapMech
	cur     wrapKey // wraps new keys
	cache   *keyCache
	kmu     sync.Mutex
	unwrapH map[string]p11.ObjectHandle // wrapping keys by CKA_ID, for unwrap
}

type wrapKey struct {
	id      []byte
	h       p11.ObjectHandle
	trusted bool // CKA_TRUSTED: new keys are CKA_WRAP_WITH_TRUSTED
}

// settleTries and settleWait bound the wait for concurrent creators of
// the wrapping key to agree on one (see findOrCreateWrappingKey).
const (
	settleTries = 40
	settleWait  = 10 * time.Millisecond
	stableWait  = 100 * time.Millisecond
)

// openWrapped prepares wrapped storage on a new generation: checks that
// the token wraps and unwraps with the configured mechanism, and finds or
// creates the wrapping key.
func (d *Device) openWrapped(ctx context.Context, slot uint, s p11.SessionHandle) (*wrapState, error) {
	mech := d.cfg.wrapMech()
	d.calls.Inc(CallGetMechanismInfo)
	info, err := d.lib.GetMechanismInfo(slot, []*p11.Mechanism{p11.NewMechanism(mech.ckm(), nil)})
	if err != nil || info.Flags&(p11.CKF_WRAP|p11.CKF_UNWRAP) != p11.CKF_WRAP|p11.CKF_UNWRAP {
		return nil, fmt.Errorf("%w: the token cannot wrap and unwrap with %s (%v)", device.ErrWrappedUnsupported, mech, err)
	}
	k, err := d.findOrCreateWrappingKey(ctx, s, d.cfg.wrapLabel())
	if err != nil {
		return nil, err
	}
	return &wrapState{
		mech: mech, cur: k, cache: newKeyCache(d.cfg.cache()),
		unwrapH: map[string]p11.ObjectHandle{string(k.id): k.h},
	}, nil
}

// findOrCreateWrappingKey returns the AES key labelled label. PKCS#11 has
// no atomic create-if-absent, so instances starting together agree like
// this (docs/wrapped-keys.md):
//   - an instance that finds no key creates one (random CKA_ID) and looks
//     again at once;
//   - a creator that then sees any other key under the label destroys its
//     own (it has wrapped nothing with it) and starts over after a random
//     wait, so of several concurrent creators the first to see its key
//     alone keeps it and every other one yields to it;
//   - a creator that sees its own key alone uses it;
//   - an instance that finds one key it did not create uses it only if it
//     is still the only one after stableWait (a creator still settling
//     may yet destroy it), unless it is the key this device used before a
//     re-initialisation.
//
// If several keys stay under the label (a creator died between creating
// and looking again, or an operator made one), the one with the smallest
// CKA_ID is used after a warning: every blob names its wrapping key, so
// blobs under the others stay readable. Errors of objects vanishing under
// a concurrent destroy are retried.
func (d *Device) findOrCreateWrappingKey(ctx context.Context, s p11.SessionHandle, label string) (wrapKey, error) {
	var own []byte
	var keys []wrapKey
	var candidate []byte // a key found alone, being confirmed
	wait := func(base time.Duration, try int) error {
		t := time.NewTimer(base + rand.N(settleWait*time.Duration(try+1)))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
	for try := range settleTries {
		var err error
		keys, err = d.wrappingKeys(s, label)
		if transient(err) {
			if err := wait(0, try); err != nil {
				return wrapKey{}, err
			}
			continue
		}
		if err != nil {
			return wrapKey{}, fmt.Errorf("pkcs11: looking for the wrapping key: %w", err)
		}
		switch {
		case len(keys) == 0:
			candidate = nil
			// After a transient failure the key may exist all the same:
			// it is ours, to keep or to yield, as if made.
			if own, err = d.createWrappingKey(s, label); err != nil && !transient(err) {
				return wrapKey{}, fmt.Errorf("pkcs11: creating the wrapping key: %w", err)
			}
			continue
		case len(keys) > 1:
			candidate = nil
			if own != nil {
				for _, k := range keys {
					if bytes.Equal(k.id, own) {
						if err := d.destroy(s, k.h); err != nil && !transient(err) {
							return wrapKey{}, fmt.Errorf("pkcs11: yielding a wrapping key: %w", err)
						}
					}
				}
				own = nil
			}
		case own != nil && bytes.Equal(own, keys[0].id),
			candidate != nil && bytes.Equal(candidate, keys[0].id),
			d.wrapID != nil && bytes.Equal(d.wrapID, keys[0].id):
			k, err := d.checkWrappingKey(s, keys[0])
			if transient(err) {
				continue
			}
			if err == nil {
				d.wrapID = k.id
			}
			return k, err
		default:
			// Found alone but not ours: confirm after creators settled.
			own, candidate = nil, keys[0].id
			if err := wait(stableWait, 0); err != nil {
				return wrapKey{}, err
			}
			continue
		}
		if err := wait(settleWait, try); err != nil {
			return wrapKey{}, err
		}
	}
	if len(keys) == 0 {
		return wrapKey{}, fmt.Errorf("%w: no wrapping key labelled %q could be settled", device.ErrUnavailable, label)
	}
	d.log.WarnContext(ctx, "pkcs11: several wrapping keys share one label; using the one with the smallest CKA_ID",
		"label", label, "count", len(keys))
	k, err := d.checkWrappingKey(s, keys[0])
	if err == nil {
		d.wrapID = k.id
	}
	return k, err
}

// wrappingKeys returns the AES secret keys labelled label, by CKA_ID.
func (d *Device) wrappingKeys(s p11.SessionHandle, label string) ([]wrapKey, error) {
	hs, err := d.find(s, p11.CKO_SECRET_KEY,
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES), p11.NewAttribute(p11.CKA_LABEL, label))
	if err != nil {
		return nil, err
	}
	keys := make([]wrapKey, 0, len(hs))
	for _, h := range hs {
		d.calls.Inc(CallGetAttributeValue)
		a, err := d.lib.GetAttributeValue(s, h, []*p11.Attribute{p11.NewAttribute(p11.CKA_ID, nil)})
		if err != nil {
			if vanished(err) {
				continue // destroyed by a settling creator
			}
			return nil, err
		}
		keys = append(keys, wrapKey{id: a[0].Value, h: h})
	}
	slices.SortFunc(keys, func(a, b wrapKey) int { return bytes.Compare(a.id, b.id) })
	return keys, nil
}

// createWrappingKey makes the token's AES-256 wrapping key and returns
// its CKA_ID (also with an error, once chosen): a private, sensitive, never-extractable token object for
// C_WrapKey and C_UnwrapKey only, not modifiable (nobody can turn on
// CKA_DECRYPT later and read wrapped keys with it).
func (d *Device) createWrappingKey(s p11.SessionHandle, label string) ([]byte, error) {
	d.calls.Inc(CallGenerateRandom)
	id, err := d.lib.GenerateRandom(s, wrapIDSize)
	if err != nil {
		return nil, err
	}
	d.calls.Inc(CallGenerateKey)
	_, err = d.lib.GenerateKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_GEN, nil)}, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
		p11.NewAttribute(p11.CKA_VALUE_LEN, 32),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
		p11.NewAttribute(p11.CKA_WRAP, true),
		p11.NewAttribute(p11.CKA_UNWRAP, true),
		p11.NewAttribute(p11.CKA_ENCRYPT, false),
		p11.NewAttribute(p11.CKA_DECRYPT, false),
		p11.NewAttribute(p11.CKA_SIGN, false),
		p11.NewAttribute(p11.CKA_VERIFY, false),
		p11.NewAttribute(p11.CKA_DERIVE, false),
		p11.NewAttribute(p11.CKA_MODIFIABLE, false),
		p11.NewAttribute(p11.CKA_ID, id),
		p11.NewAttribute(p11.CKA_LABEL, label),
	})
	return id, err
}

// checkWrappingKey refuses a wrapping key that could leave the token or
// is not an AES-256 wrap/unwrap key, and reads CKA_TRUSTED.
func (d *Device) checkWrappingKey(s p11.SessionHandle, k wrapKey) (wrapKey, error) {
	d.calls.Inc(CallGetAttributeValue)
	a, err := d.lib.GetAttributeValue(s, k.h, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_SENSITIVE, nil),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, nil),
		p11.NewAttribute(p11.CKA_WRAP, nil),
		p11.NewAttribute(p11.CKA_UNWRAP, nil),
		p11.NewAttribute(p11.CKA_VALUE_LEN, nil),
		p11.NewAttribute(p11.CKA_TRUSTED, nil),
	})
	if err != nil {
		return wrapKey{}, err
	}
	isTrue := func(i int) bool { return len(a[i].Value) == 1 && a[i].Value[0] == 1 }
	switch {
	case len(k.id) != wrapIDSize:
		return wrapKey{}, fmt.Errorf("%w: CKA_ID of %d bytes, want %d", ErrWrappingKey, len(k.id), wrapIDSize)
	case !isTrue(0) || isTrue(1):
		return wrapKey{}, fmt.Errorf("%w: extractable or not sensitive", ErrWrappingKey)
	case !isTrue(2) || !isTrue(3):
		return wrapKey{}, fmt.Errorf("%w: not for wrapping and unwrapping", ErrWrappingKey)
	case bytesToUint(a[4].Value) != 32:
		return wrapKey{}, fmt.Errorf("%w: not an AES-256 key", ErrWrappingKey)
	}
	k.trusted = isTrue(5)
	return k, nil
}

// vanished reports whether err means an object found a moment ago is gone:
// SoftHSM 2.6.1 answers C_GetAttributeValue on an object another context
// just destroyed with CKR_ATTRIBUTE_VALUE_INVALID as well as with the
// handle codes.
func vanished(err error) bool {
	return stale(err) || isCode(err, p11.CKR_ATTRIBUTE_VALUE_INVALID)
}

// transient reports whether err, while instances settle on the wrapping
// key, may be a concurrent create or destroy: SoftHSM 2.6.1 also answers
// CKR_GENERAL_ERROR to a search or read racing one, and (rarely, seen in a
// full test run) CKR_TEMPLATE_INCONSISTENT to a C_GenerateKey racing
// another in the same process with a template that is otherwise accepted.
// Such errors are retried a bounded number of times.
func transient(err error) bool {
	return vanished(err) || isCode(err, p11.CKR_GENERAL_ERROR) || isCode(err, p11.CKR_TEMPLATE_INCONSISTENT)
}

func bytesToUint(b []byte) uint64 {
	// CKA_VALUE_LEN is a CK_ULONG in host byte order (miekg/pkcs11 does
	// not decode it); every platform we build for is little-endian.
	var n uint64
	for i := len(b) - 1; i >= 0; i-- {
		n = n<<8 | uint64(b[i])
	}
	return n
}

// sessionPrivateTemplate is an extractable session private key, made only
// to be wrapped and destroyed at once; with a trusted wrapping key it can
// be wrapped by trusted keys only.
func sessionPrivateTemplate(owner device.Owner, trusted bool, usage keyUsage) []*p11.Attribute {
	return []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC),
		p11.NewAttribute(p11.CKA_TOKEN, false),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, true),
		p11.NewAttribute(p11.CKA_WRAP_WITH_TRUSTED, trusted),
		p11.NewAttribute(p11.CKA_SIGN, usage == usageSignDerive),
		p11.NewAttribute(p11.CKA_DERIVE, true),
		p11.NewAttribute(p11.CKA_LABEL, string(owner)),
	}
}

// unwrappedTemplate is the session object a blob unwraps into: sensitive,
// not extractable, never a token object, and for a derive-only blob
// without CKA_SIGN.
func unwrappedTemplate(ref device.Ref, usage keyUsage) []*p11.Attribute {
	return []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC),
		p11.NewAttribute(p11.CKA_TOKEN, false),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
		p11.NewAttribute(p11.CKA_SIGN, usage == usageSignDerive),
		p11.NewAttribute(p11.CKA_DERIVE, true),
		p11.NewAttribute(p11.CKA_ID, ref.KID.Bytes()),
		p11.NewAttribute(p11.CKA_LABEL, string(ref.Owner)),
	}
}

// generateWrapped makes the pair as session objects, wraps the private
// key and destroys both: C_GenerateKeyPair, C_GetAttributeValue,
// C_WrapKey, 2× C_DestroyObject.
func (d *Device) generateWrapped(g *generation, s p11.SessionHandle, owner device.Owner, usage keyUsage) (device.Key, error) {
	w := g.w
	d.calls.Inc(CallGenerateKeyPair)
	pubH, privH, err := d.lib.GenerateKeyPair(s,
		[]*p11.Mechanism{p11.NewMechanism(p11.CKM_EC_KEY_PAIR_GEN, nil)},
		[]*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY),
			p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC),
			p11.NewAttribute(p11.CKA_TOKEN, false),
			p11.NewAttribute(p11.CKA_VERIFY, true),
			p11.NewAttribute(p11.CKA_EC_PARAMS, p256OID),
		},
		sessionPrivateTemplate(owner, w.cur.trusted, usage))
	if err != nil {
		return device.Key{}, err
	}
	pub, err := d.readPoint(s, pubH)
	if derr := d.destroy(s, pubH); err == nil && derr != nil {
		err = derr
	}
	if err != nil {
		d.destroy(s, privH)
		return device.Key{}, err
	}
	return d.wrapAndDestroy(w, s, owner, privH, pub, usage)
}

// importWrapped takes in a scalar as an extractable session object, wraps
// it and destroys it.
func (d *Device) importWrapped(g *generation, s p11.SessionHandle, owner device.Owner, scalar []byte, pub *ecdsa.PublicKey) (device.Key, error) {
	d.calls.Inc(CallCreateObject)
	privH, err := d.lib.CreateObject(s, append(sessionPrivateTemplate(owner, g.w.cur.trusted, usageSignDerive),
		p11.NewAttribute(p11.CKA_EC_PARAMS, p256OID),
		p11.NewAttribute(p11.CKA_VALUE, scalar)))
	if err != nil {
		return device.Key{}, err
	}
	return d.wrapAndDestroy(g.w, s, owner, privH, pub, usageSignDerive)
}

func (d *Device) wrapAndDestroy(w *wrapState, s p11.SessionHandle, owner device.Owner, privH p11.ObjectHandle, pub *ecdsa.PublicKey, usage keyUsage) (device.Key, error) {
	k, err := d.wrapWith(w, s, owner, privH, pub, usage)
	if derr := d.destroy(s, privH); err == nil && derr != nil {
		err = derr
	}
	if err != nil {
		return device.Key{}, err
	}
	return k, nil
}

// withWrapped runs fn with the unwrapped session object of ref's blob,
// from the cache or unwrapped now. A handle found stale is dropped and
// the blob unwrapped once more.
func (d *Device) withWrapped(ctx context.Context, ref device.Ref, fn func(s p11.SessionHandle, e *cacheEntry) error) error {
	return d.do(ctx, func(g *generation, s p11.SessionHandle) error {
		if g.w == nil {
			return device.ErrWrappedUnsupported
		}
		for range 2 {
			e, err := d.unwrapped(g, s, ref)
			if err != nil {
				return err
			}
			err = fn(s, e)
			if g.w.cache.release(e) {
				d.destroyQuiet(s, uint(e.h))
			}
			if !stale(err) {
				return err
			}
			d.destroyAll(s, g.w.cache.remove(ref.KID, ref.Owner))
		}
		return device.ErrKeyNotFound
	})
}

// unwrapped returns ref's cache entry, in use: a hit costs no device call;
// a miss is C_UnwrapKey and the check that the key is the kid's.
func (d *Device) unwrapped(g *generation, s p11.SessionHandle, ref device.Ref) (*cacheEntry, error) {
	if e := g.w.cache.acquire(ref); e != nil {
		return e, nil
	}
	b, err := parseBlob(ref.Wrapped)
	if err != nil {
		return nil, err
	}
	var h p11.ObjectHandle
	for try := 0; ; try++ {
		wh, err := d.unwrappingKey(g.w, s, b.wrapID)
		if err != nil {
			return nil, err
		}
		d.calls.Inc(CallUnwrapKey)
		h, err = d.lib.UnwrapKey(s, []*p11.Mechanism{p11.NewMechanism(b.mech.ckm(), nil)}, wh, b.wrapped, unwrappedTemplate(ref, b.usage))
		if err == nil {
			break
		}
		if try == 0 && (isCode(err, p11.CKR_UNWRAPPING_KEY_HANDLE_INVALID) || stale(err)) {
			// The wrapping key was removed (or replaced) since we found
			// it: look it up again.
			g.w.kmu.Lock()
			delete(g.w.unwrapH, string(b.wrapID))
			g.w.kmu.Unlock()
			continue
		}
		return nil, d.unwrapError(s, err)
	}
	pub, err := d.publicOf(s, h, ref.KID)
	if err != nil {
		d.destroyQuiet(s, uint(h))
		return nil, err
	}
	e := &cacheEntry{kid: ref.KID, owner: ref.Owner, blob: bytes.Clone(ref.Wrapped), pub: pub, h: uint(h), refs: 1}
	d.destroyAll(s, g.w.cache.insert(e))
	return e, nil
}

// unwrapError classifies a failed C_UnwrapKey. SoftHSM 2.6.1 answers an
// altered blob with CKR_GENERAL_ERROR, which otherwise means the library
// failed: if the session still answers, the blob was at fault, and the
// answer must not trigger a re-initialisation.
func (d *Device) unwrapError(s p11.SessionHandle, err error) error {
	switch {
	case isCode(err, p11.CKR_WRAPPED_KEY_INVALID), isCode(err, p11.CKR_WRAPPED_KEY_LEN_RANGE),
		isCode(err, p11.CKR_ENCRYPTED_DATA_INVALID), isCode(err, p11.CKR_ENCRYPTED_DATA_LEN_RANGE),
		isCode(err, p11.CKR_TEMPLATE_INCONSISTENT), isCode(err, p11.CKR_DATA_INVALID):
		return fmt.Errorf("%w: the token refused to unwrap it (%v)", device.ErrInvalidBlob, err)
	case isCode(err, p11.CKR_GENERAL_ERROR):
		d.calls.Inc(CallGetSessionInfo)
		if _, serr := d.lib.GetSessionInfo(s); serr == nil {
			return fmt.Errorf("%w: the token failed to unwrap it (%v)", device.ErrInvalidBlob, err)
		}
	}
	return err
}

// unwrappingKey returns the handle of the wrapping key with CKA_ID id: the
// current one, one found before, or one looked up now (a blob made before
// a rotation). A blob naming a key the token does not hold is invalid.
func (d *Device) unwrappingKey(w *wrapState, s p11.SessionHandle, id []byte) (p11.ObjectHandle, error) {
	w.kmu.Lock()
	h, ok := w.unwrapH[string(id)]
	w.kmu.Unlock()
	if ok {
		return h, nil
	}
	hs, err := d.find(s, p11.CKO_SECRET_KEY,
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES), p11.NewAttribute(p11.CKA_ID, id),
		p11.NewAttribute(p11.CKA_UNWRAP, true))
	if err != nil {
		return 0, err
	}
	switch len(hs) {
	case 0:
		return 0, fmt.Errorf("%w: its wrapping key %x is not on the token", device.ErrInvalidBlob, id)
	case 1:
	default:
		return 0, fmt.Errorf("pkcs11: %d wrapping keys with CKA_ID %x", len(hs), id)
	}
	w.kmu.Lock()
	w.unwrapH[string(id)] = hs[0]
	w.kmu.Unlock()
	return hs[0], nil
}

// publicOf returns the public key of the unwrapped private key h if its
// kid is kid, and ErrInvalidBlob otherwise. A private key object has no
// public point (CKA_EC_POINT is refused in its template, and SoftHSM
// leaves CKA_PUBLIC_KEY_INFO empty), but ECDH with the base point G gives
// the x-coordinate of d·G, which is the public point's: one
// C_DeriveKey + C_GetAttributeValue + C_DestroyObject. Of the two points
// with that x, the one whose kid matches is the key.
func (d *Device) publicOf(s p11.SessionHandle, h p11.ObjectHandle, kid device.KID) (*ecdsa.PublicKey, error) {
	x, err := d.derive(s, h, baseG)
	if err != nil {
		if isCode(err, p11.CKR_KEY_TYPE_INCONSISTENT) || isCode(err, p11.CKR_KEY_FUNCTION_NOT_PERMITTED) {
			return nil, fmt.Errorf("%w: it does not hold a P-256 key", device.ErrInvalidBlob)
		}
		return nil, err
	}
	defer clear(x)
	if len(x) == 32 {
		for _, prefix := range []byte{2, 3} {
			pub, err := device.PublicKeyFromBytes(append([]byte{prefix}, x...))
			if err != nil {
				break
			}
			if k, err := device.KIDOf(pub); err == nil && k == kid {
				return pub, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: it holds another key than kid %s", device.ErrInvalidBlob, kid)
}

// baseG is the uncompressed P-256 base point (SEC 2, §2.4.2).
var baseG, _ = hex.DecodeString("04" +
	"6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296" +
	"4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5")

// derive runs ECDH of h with a SEC1 point: C_DeriveKey into a session
// object, C_GetAttributeValue of its value, and C_DestroyObject, which runs
// even when reading fails.
func (d *Device) derive(s p11.SessionHandle, h p11.ObjectHandle, point []byte) ([]byte, error) {
	mech := p11.NewMechanism(p11.CKM_ECDH1_DERIVE, p11.NewECDH1DeriveParams(p11.CKD_NULL, nil, point))
	d.calls.Inc(CallDeriveKey)
	secret, err := d.lib.DeriveKey(s, []*p11.Mechanism{mech}, h, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_GENERIC_SECRET),
		p11.NewAttribute(p11.CKA_TOKEN, false),
		p11.NewAttribute(p11.CKA_SENSITIVE, false),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, true),
		p11.NewAttribute(p11.CKA_VALUE_LEN, 32),
	})
	if err != nil {
		return nil, err
	}
	d.calls.Inc(CallGetAttributeValue)
	attrs, err := d.lib.GetAttributeValue(s, secret, []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)})
	if derr := d.destroy(s, secret); err == nil && derr != nil {
		return nil, derr
	}
	if err != nil {
		return nil, err
	}
	return attrs[0].Value, nil
}

// destroyWrapped drops the owner's unwrapped copy of ref's key, if cached,
// and any token object of the key a migration left (destroyTokenCopy).
func (d *Device) destroyWrapped(ctx context.Context, ref device.Ref) error {
	return d.do(ctx, func(g *generation, s p11.SessionHandle) error {
		if g.w == nil {
			return device.ErrWrappedUnsupported
		}
		d.destroyAll(s, g.w.cache.remove(ref.KID, ref.Owner))
		return d.destroyTokenCopy(g, s, ref)
	})
}

func (d *Device) destroyAll(s p11.SessionHandle, hs []uint) {
	for _, h := range hs {
		d.destroyQuiet(s, h)
	}
}

// destroyQuiet destroys a session object whose loss changes nothing for
// the caller; a failure is logged (the object dies with its session).
func (d *Device) destroyQuiet(s p11.SessionHandle, h uint) {
	if err := d.destroy(s, p11.ObjectHandle(h)); err != nil && !stale(err) {
		d.log.Warn("pkcs11: destroying an unwrapped key", "err", err)
	}
}

// checkWrappedRef validates the blob part of a ref before any device call.
func (d *Device) checkWrappedRef(ref device.Ref) error {
	if ref.Wrapped == nil {
		return nil
	}
	if d.cfg.storage() != device.StorageWrapped {
		return device.ErrWrappedUnsupported
	}
	_, err := parseBlob(ref.Wrapped)
	return err
}

// CachedKeys returns how many unwrapped keys the cache holds (0 in token
// storage), for metrics and tests.
func (d *Device) CachedKeys() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.g == nil || d.g.w == nil {
		return 0
	}
	return d.g.w.cache.len()
}
