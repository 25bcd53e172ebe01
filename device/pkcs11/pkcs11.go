//go:build cgo && !nopkcs11

// Package pkcs11 is the WSCD backend for any PKCS#11 v2.40 token (tested on
// SoftHSMv2 2.6.1).
//
// Each key is a pair of token objects: a private key (CKA_SENSITIVE true,
// CKA_EXTRACTABLE false, CKA_SIGN and CKA_DERIVE) and its public key. Both
// carry CKA_ID = the 16 raw bytes of the kid and CKA_LABEL = the owning
// wallet unit; lookups always match both, so a key of another unit is
// never found.
//
// The device logs in once, keeps a pool of sessions and caches kid → object
// handle, so a signature costs exactly C_SignInit + C_Sign. When the library
// or token fails under it (C_Finalize by someone else, token removed,
// sessions lost) the next operation re-initialises the library, logs in
// again and retries once; no process restart is needed.
package pkcs11

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	p11 "github.com/miekg/pkcs11"

	"github.com/wsca/wsca/device"
)

// Available is true in builds with PKCS#11 support.
const Available = true

// Backend is the name this device reports in [device.Info].
const Backend = "pkcs11"

// Names of the counted PKCS#11 calls.
const (
	CallInitialize        = "C_Initialize"
	CallFinalize          = "C_Finalize"
	CallGetSlotList       = "C_GetSlotList"
	CallGetTokenInfo      = "C_GetTokenInfo"
	CallOpenSession       = "C_OpenSession"
	CallCloseSession      = "C_CloseSession"
	CallGetSessionInfo    = "C_GetSessionInfo"
	CallLogin             = "C_Login"
	CallFindObjectsInit   = "C_FindObjectsInit"
	CallFindObjects       = "C_FindObjects"
	CallFindObjectsFinal  = "C_FindObjectsFinal"
	CallGenerateKeyPair   = "C_GenerateKeyPair"
	CallCreateObject      = "C_CreateObject"
	CallGetAttributeValue = "C_GetAttributeValue"
	CallSetAttributeValue = "C_SetAttributeValue"
	CallDestroyObject     = "C_DestroyObject"
	CallSignInit          = "C_SignInit"
	CallSign              = "C_Sign"
	CallDeriveKey         = "C_DeriveKey"
	CallGenerateRandom    = "C_GenerateRandom"
	CallGetMechanismInfo  = "C_GetMechanismInfo"
	CallGenerateKey       = "C_GenerateKey"
	CallWrapKey           = "C_WrapKey"
	CallUnwrapKey         = "C_UnwrapKey"
)

var callNames = []string{
	CallInitialize, CallFinalize, CallGetSlotList, CallGetTokenInfo, CallOpenSession,
	CallCloseSession, CallGetSessionInfo, CallLogin, CallFindObjectsInit, CallFindObjects,
	CallFindObjectsFinal, CallGenerateKeyPair, CallCreateObject, CallGetAttributeValue,
	CallSetAttributeValue, CallDestroyObject, CallSignInit, CallSign, CallDeriveKey,
	CallGenerateRandom, CallGetMechanismInfo, CallGenerateKey, CallWrapKey, CallUnwrapKey,
}

// p256OID is the DER encoding of the prime256v1 OID, the CKA_EC_PARAMS of
// every key this device makes.
var p256OID = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}

// Device is a PKCS#11 WSCD.
type Device struct {
	cfg   Config
	log   *slog.Logger
	calls *device.CallCounter

	// mu is held shared by every operation and exclusively by re-init and
	// Close, so the library is never finalised under a running call.
	mu     sync.RWMutex
	lib    *p11.Ctx
	g      *generation
	closed bool
	// wrapID is the CKA_ID of the wrapping key in use (wrapped storage),
	// kept across re-initialisations; written only by start, under mu.
	wrapID []byte
}

var (
	_ device.Device   = (*Device)(nil)
	_ device.Importer = (*Device)(nil)
)

// Info implements device.Device. The assurance is the configured one
// (device.AssuranceNotCertified unless declared): no PKCS#11 answer tells
// a hardware token from SoftHSM.
func (d *Device) Info() device.Info {
	d.mu.RLock()
	defer d.mu.RUnlock()
	desc := d.cfg.String()
	if d.g != nil {
		desc = d.g.description
	}
	return device.Info{Backend: Backend, Assurance: d.cfg.assurance(), Description: desc, Storage: d.cfg.storage()}
}

// Calls implements device.Device.
func (d *Device) Calls() map[string]uint64 { return d.calls.Snapshot() }

// Ping checks that a session is alive and logged in.
func (d *Device) Ping(ctx context.Context) error {
	return d.do(ctx, func(g *generation, s p11.SessionHandle) error {
		d.calls.Inc(CallGetSessionInfo)
		info, err := d.lib.GetSessionInfo(s)
		if err != nil {
			return err
		}
		if info.State != p11.CKS_RW_USER_FUNCTIONS && info.State != p11.CKS_RO_USER_FUNCTIONS {
			return p11.Error(p11.CKR_USER_NOT_LOGGED_IN)
		}
		return nil
	})
}

// Close closes the sessions and unloads the module. It does not call
// C_Finalize: another device in this process may use the same library.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.g != nil {
		if d.g.w != nil {
			// Closing the sessions destroys their session objects too;
			// destroying them first does not rely on it.
			select {
			case s := <-d.g.pool:
				d.destroyAll(s, d.g.w.cache.drain())
				d.g.pool <- s
			default:
			}
		}
		d.closeSessions(d.g)
		d.g = nil
	}
	d.lib.Destroy()
	return nil
}

// Generate implements device.Device. The pair is made with a random
// temporary CKA_ID, because the kid depends on the public key; the real
// CKA_ID is set right after.
func (d *Device) Generate(ctx context.Context, owner device.Owner) (device.Key, error) {
	return d.generate(ctx, owner, usageSignDerive)
}

func (d *Device) generate(ctx context.Context, owner device.Owner, usage keyUsage) (device.Key, error) {
	if _, err := device.ParseOwner(string(owner)); err != nil {
		return device.Key{}, err
	}
	var key device.Key
	err := d.do(ctx, func(g *generation, s p11.SessionHandle) error {
		if g.w != nil {
			var err error
			key, err = d.generateWrapped(g, s, owner, usage)
			return err
		}
		d.calls.Inc(CallGenerateRandom)
		tmpID, err := d.lib.GenerateRandom(s, device.KIDSize)
		if err != nil {
			return err
		}
		d.calls.Inc(CallGenerateKeyPair)
		pubH, privH, err := d.lib.GenerateKeyPair(s,
			[]*p11.Mechanism{p11.NewMechanism(p11.CKM_EC_KEY_PAIR_GEN, nil)},
			publicTemplate(owner, tmpID), privateTemplate(owner, tmpID, usage))
		if err != nil {
			return err
		}
		key, err = d.finishKey(g, s, owner, pubH, privH)
		return err
	})
	return key, err
}

// Import implements device.Importer: the scalar becomes a sensitive,
// non-extractable token object (CKA_NEVER_EXTRACTABLE is false, as the
// token knows the key came from outside).
func (d *Device) Import(ctx context.Context, owner device.Owner, priv *ecdh.PrivateKey) (device.Key, error) {
	if _, err := device.ParseOwner(string(owner)); err != nil {
		return device.Key{}, err
	}
	if priv.Curve() != ecdh.P256() {
		return device.Key{}, errors.New("pkcs11: not a P-256 key")
	}
	scalar := priv.Bytes()
	defer clear(scalar)
	point := priv.PublicKey().Bytes()
	pub, err := device.PublicKeyFromBytes(point)
	if err != nil {
		return device.Key{}, err
	}
	var key device.Key
	err = d.do(ctx, func(g *generation, s p11.SessionHandle) error {
		if g.w != nil {
			var err error
			key, err = d.importWrapped(g, s, owner, scalar, pub)
			return err
		}
		d.calls.Inc(CallGenerateRandom)
		tmpID, err := d.lib.GenerateRandom(s, device.KIDSize)
		if err != nil {
			return err
		}
		d.calls.Inc(CallCreateObject)
		privH, err := d.lib.CreateObject(s, append(privateTemplate(owner, tmpID, usageSignDerive),
			p11.NewAttribute(p11.CKA_EC_PARAMS, p256OID),
			p11.NewAttribute(p11.CKA_VALUE, scalar)))
		if err != nil {
			return err
		}
		d.calls.Inc(CallCreateObject)
		pubH, err := d.lib.CreateObject(s, append(publicTemplate(owner, tmpID),
			p11.NewAttribute(p11.CKA_EC_POINT, wrapOctetString(point))))
		if err != nil {
			d.destroy(s, privH)
			return err
		}
		key, err = d.finishKey(g, s, owner, pubH, privH)
		return err
	})
	return key, err
}

// publicTemplate and privateTemplate are the attributes of every key pair
// (see the package doc); id is a temporary CKA_ID until the kid is known.
func publicTemplate(owner device.Owner, id []byte) []*p11.Attribute {
	return []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, false),
		p11.NewAttribute(p11.CKA_VERIFY, true),
		p11.NewAttribute(p11.CKA_EC_PARAMS, p256OID),
		p11.NewAttribute(p11.CKA_ID, id),
		p11.NewAttribute(p11.CKA_LABEL, string(owner)),
	}
}

func privateTemplate(owner device.Owner, id []byte, usage keyUsage) []*p11.Attribute {
	return []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
		p11.NewAttribute(p11.CKA_SIGN, usage == usageSignDerive),
		p11.NewAttribute(p11.CKA_DERIVE, true),
		p11.NewAttribute(p11.CKA_ID, id),
		p11.NewAttribute(p11.CKA_LABEL, string(owner)),
	}
}

// finishKey reads the new public point, derives the kid, sets it as CKA_ID
// on both objects and caches the private handle. On any failure it destroys
// both objects, so no half-made key is left on the token.
func (d *Device) finishKey(g *generation, s p11.SessionHandle, owner device.Owner, pubH, privH p11.ObjectHandle) (device.Key, error) {
	fail := func(err error) (device.Key, error) {
		d.destroy(s, privH)
		d.destroy(s, pubH)
		return device.Key{}, err
	}
	pub, err := d.readPoint(s, pubH)
	if err != nil {
		return fail(err)
	}
	kid, err := device.KIDOf(pub)
	if err != nil {
		return fail(err)
	}
	id := []*p11.Attribute{p11.NewAttribute(p11.CKA_ID, kid.Bytes())}
	for _, h := range []p11.ObjectHandle{privH, pubH} {
		d.calls.Inc(CallSetAttributeValue)
		if err := d.lib.SetAttributeValue(s, h, id); err != nil {
			return fail(err)
		}
	}
	g.hmu.Lock()
	g.handles[kid] = cachedKey{owner: owner, priv: privH}
	g.hmu.Unlock()
	return device.Key{KID: kid, Owner: owner, Public: pub}, nil
}

func (d *Device) destroy(s p11.SessionHandle, h p11.ObjectHandle) error {
	d.calls.Inc(CallDestroyObject)
	return d.lib.DestroyObject(s, h)
}

func (d *Device) readPoint(s p11.SessionHandle, pubH p11.ObjectHandle) (*ecdsa.PublicKey, error) {
	d.calls.Inc(CallGetAttributeValue)
	attrs, err := d.lib.GetAttributeValue(s, pubH, []*p11.Attribute{p11.NewAttribute(p11.CKA_EC_POINT, nil)})
	if err != nil {
		return nil, err
	}
	return parseECPoint(attrs[0].Value)
}

// find returns the handles of the objects of class with CKA_ID = kid and
// CKA_LABEL = owner.
func (d *Device) find(s p11.SessionHandle, class uint, tmpl ...*p11.Attribute) ([]p11.ObjectHandle, error) {
	tmpl = append([]*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, class)}, tmpl...)
	d.calls.Inc(CallFindObjectsInit)
	if err := d.lib.FindObjectsInit(s, tmpl); err != nil {
		return nil, err
	}
	var out []p11.ObjectHandle
	for {
		d.calls.Inc(CallFindObjects)
		hs, _, err := d.lib.FindObjects(s, 64)
		if err != nil {
			d.calls.Inc(CallFindObjectsFinal)
			d.lib.FindObjectsFinal(s)
			return nil, err
		}
		out = append(out, hs...)
		if len(hs) < 64 {
			break
		}
	}
	d.calls.Inc(CallFindObjectsFinal)
	if err := d.lib.FindObjectsFinal(s); err != nil {
		return nil, err
	}
	return out, nil
}

// refTemplate matches the token objects of ref's key. CKA_TOKEN matters in
// wrapped storage: unwrapped keys are session objects with the same CKA_ID
// and CKA_LABEL, visible to every context of the process.
func refTemplate(ref device.Ref) []*p11.Attribute {
	return []*p11.Attribute{
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_ID, ref.KID.Bytes()),
		p11.NewAttribute(p11.CKA_LABEL, string(ref.Owner)),
	}
}

// validRef checks a ref before any device call: kid, owner, and a blob
// only in wrapped storage and only if well-formed.
func (d *Device) validRef(ref device.Ref) error {
	if _, err := device.ParseKID(string(ref.KID)); err != nil {
		return err
	}
	if _, err := device.ParseOwner(string(ref.Owner)); err != nil {
		return err
	}
	return d.checkWrappedRef(ref)
}

// privateHandle returns the cached handle of the key's private object, or
// looks it up on the token and caches it.
func (d *Device) privateHandle(g *generation, s p11.SessionHandle, ref device.Ref) (p11.ObjectHandle, error) {
	g.hmu.RLock()
	c, ok := g.handles[ref.KID]
	g.hmu.RUnlock()
	if ok {
		if c.owner != ref.Owner {
			return 0, device.ErrKeyNotFound
		}
		return c.priv, nil
	}
	hs, err := d.find(s, p11.CKO_PRIVATE_KEY, refTemplate(ref)...)
	if err != nil {
		return 0, err
	}
	switch len(hs) {
	case 0:
		return 0, device.ErrKeyNotFound
	case 1:
	default:
		return 0, fmt.Errorf("pkcs11: %d private objects with kid %s", len(hs), ref.KID)
	}
	g.hmu.Lock()
	g.handles[ref.KID] = cachedKey{owner: ref.Owner, priv: hs[0]}
	g.hmu.Unlock()
	return hs[0], nil
}

func (g *generation) forget(kid device.KID) {
	g.hmu.Lock()
	delete(g.handles, kid)
	g.hmu.Unlock()
}

// withKey runs fn with the key's private handle; if the cached handle has
// gone stale it drops it and looks the key up once more.
func (d *Device) withKey(ctx context.Context, ref device.Ref, fn func(s p11.SessionHandle, h p11.ObjectHandle) error) error {
	if err := d.validRef(ref); err != nil {
		return err
	}
	if ref.Wrapped != nil {
		return d.withWrapped(ctx, ref, func(s p11.SessionHandle, e *cacheEntry) error {
			return fn(s, p11.ObjectHandle(e.h))
		})
	}
	return d.do(ctx, func(g *generation, s p11.SessionHandle) error {
		for range 2 {
			h, err := d.privateHandle(g, s, ref)
			if err != nil {
				return err
			}
			err = fn(s, h)
			if !stale(err) {
				return err
			}
			g.forget(ref.KID)
		}
		return device.ErrKeyNotFound
	})
}

// Sign implements device.Device: C_SignInit + C_Sign with CKM_ECDSA.
func (d *Device) Sign(ctx context.Context, ref device.Ref, digest []byte) ([]byte, error) {
	if err := device.CheckDigest(digest); err != nil {
		return nil, err
	}
	if b, err := parseBlob(ref.Wrapped); ref.Wrapped != nil && err == nil && b.usage == usageDerive {
		return nil, device.ErrKeyUsage
	}
	var sig []byte
	err := d.withKey(ctx, ref, func(s p11.SessionHandle, h p11.ObjectHandle) error {
		d.calls.Inc(CallSignInit)
		if err := d.lib.SignInit(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_ECDSA, nil)}, h); err != nil {
			return err
		}
		d.calls.Inc(CallSign)
		var err error
		sig, err = d.lib.Sign(s, digest)
		return err
	})
	if isCode(err, p11.CKR_KEY_FUNCTION_NOT_PERMITTED) {
		// A derive-only key: the token refuses it.
		return nil, fmt.Errorf("%w: %v", device.ErrKeyUsage, err)
	}
	if err != nil {
		return nil, err
	}
	if len(sig) != device.SignatureSize {
		return nil, fmt.Errorf("%w: token returned a %d-byte signature", device.ErrUnavailable, len(sig))
	}
	return sig, nil
}

// ECDH implements device.Device: C_DeriveKey (CKM_ECDH1_DERIVE, CKD_NULL)
// into a session object, C_GetAttributeValue of its value, and
// C_DestroyObject, which runs even when reading fails.
func (d *Device) ECDH(ctx context.Context, ref device.Ref, peer *ecdh.PublicKey) ([]byte, error) {
	if peer == nil || peer.Curve() != ecdh.P256() {
		return nil, device.ErrInvalidPoint
	}
	point := peer.Bytes()
	var z []byte
	err := d.withKey(ctx, ref, func(s p11.SessionHandle, h p11.ObjectHandle) error {
		var err error
		z, err = d.derive(s, h, point)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(z) != 32 {
		clear(z)
		return nil, fmt.Errorf("%w: token returned a %d-byte secret", device.ErrUnavailable, len(z))
	}
	return z, nil
}

// PublicKey implements device.Device.
func (d *Device) PublicKey(ctx context.Context, ref device.Ref) (device.Key, error) {
	if err := d.validRef(ref); err != nil {
		return device.Key{}, err
	}
	var key device.Key
	if ref.Wrapped != nil {
		err := d.withWrapped(ctx, ref, func(_ p11.SessionHandle, e *cacheEntry) error {
			key = device.Key{KID: ref.KID, Owner: ref.Owner, Public: e.pub, Wrapped: ref.Wrapped}
			return nil
		})
		return key, err
	}
	err := d.do(ctx, func(g *generation, s p11.SessionHandle) error {
		if _, err := d.privateHandle(g, s, ref); err != nil {
			return err
		}
		hs, err := d.find(s, p11.CKO_PUBLIC_KEY, refTemplate(ref)...)
		if err != nil {
			return err
		}
		if len(hs) != 1 {
			return fmt.Errorf("pkcs11: %d public objects with kid %s", len(hs), ref.KID)
		}
		pub, err := d.readPoint(s, hs[0])
		if err != nil {
			return err
		}
		if kid, err := device.KIDOf(pub); err != nil || kid != ref.KID {
			return fmt.Errorf("pkcs11: public object with kid %s holds another key", ref.KID)
		}
		key = device.Key{KID: ref.KID, Owner: ref.Owner, Public: pub}
		return nil
	})
	return key, err
}

// List implements device.Device: the owner's key pairs whose private half
// exists, ordered by kid.
func (d *Device) List(ctx context.Context, owner device.Owner) ([]device.Key, error) {
	if _, err := device.ParseOwner(string(owner)); err != nil {
		return nil, err
	}
	var keys []device.Key
	err := d.do(ctx, func(g *generation, s p11.SessionHandle) error {
		keys = keys[:0]
		label := p11.NewAttribute(p11.CKA_LABEL, string(owner))
		privs, err := d.find(s, p11.CKO_PRIVATE_KEY, label)
		if err != nil {
			return err
		}
		have := make(map[string]bool, len(privs))
		for _, h := range privs {
			d.calls.Inc(CallGetAttributeValue)
			a, err := d.lib.GetAttributeValue(s, h, []*p11.Attribute{p11.NewAttribute(p11.CKA_ID, nil)})
			if err != nil {
				return err
			}
			have[string(a[0].Value)] = true
		}
		pubs, err := d.find(s, p11.CKO_PUBLIC_KEY, label)
		if err != nil {
			return err
		}
		for _, h := range pubs {
			d.calls.Inc(CallGetAttributeValue)
			a, err := d.lib.GetAttributeValue(s, h, []*p11.Attribute{
				p11.NewAttribute(p11.CKA_ID, nil), p11.NewAttribute(p11.CKA_EC_POINT, nil)})
			if err != nil {
				return err
			}
			if !have[string(a[0].Value)] {
				continue // a half-made or foreign pair
			}
			pub, err := parseECPoint(a[1].Value)
			if err != nil {
				continue // not one of ours
			}
			kid, err := device.KIDOf(pub)
			if err != nil || string(kid.Bytes()) != string(a[0].Value) {
				continue
			}
			keys = append(keys, device.Key{KID: kid, Owner: owner, Public: pub})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(keys, func(a, b device.Key) int {
		switch {
		case a.KID < b.KID:
			return -1
		case a.KID > b.KID:
			return 1
		}
		return 0
	})
	return keys, nil
}

// Destroy implements device.Device: both objects of the pair go. For a
// ref with a blob it destroys the cached unwrapped object, if any; the
// blob itself is the caller's to erase.
func (d *Device) Destroy(ctx context.Context, ref device.Ref) error {
	if err := d.validRef(ref); err != nil {
		return err
	}
	if ref.Wrapped != nil {
		return d.destroyWrapped(ctx, ref)
	}
	err := d.do(ctx, func(g *generation, s p11.SessionHandle) error {
		g.forget(ref.KID)
		privs, err := d.find(s, p11.CKO_PRIVATE_KEY, refTemplate(ref)...)
		if err != nil {
			return err
		}
		if len(privs) == 0 {
			return device.ErrKeyNotFound
		}
		pubs, err := d.find(s, p11.CKO_PUBLIC_KEY, refTemplate(ref)...)
		if err != nil {
			return err
		}
		for _, h := range append(privs, pubs...) {
			if err := d.destroy(s, h); err != nil && !stale(err) {
				return err
			}
		}
		return nil
	})
	return err
}

// classify gives an error a device operation returns its class, so that
// callers can answer "try later" for an outage and "server error" only
// for a fault retrying cannot fix: a stale handle is ErrKeyNotFound; a
// PKCS#11 code meaning the token, its sessions or the library are gone or
// exhausted (unavailable) is ErrUnavailable; any other PKCS#11 code, and
// this package's own integrity findings (two objects with one kid), stay
// unclassified. The code stays in the message for the log.
func classify(err error) error {
	var e p11.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, device.ErrUnavailable), errors.Is(err, device.ErrClosed), errors.Is(err, device.ErrKeyNotFound),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case !errors.As(err, &e):
		return err
	case stale(err):
		return device.ErrKeyNotFound
	case unavailable(err):
		return fmt.Errorf("%w: %v", device.ErrUnavailable, err)
	}
	return fmt.Errorf("pkcs11: %w", err)
}
