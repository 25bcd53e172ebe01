package pin

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"filippo.io/nistec"
	"github.com/bytemare/ecc"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/store"
)

// HSM-bound OPRF keys (docs/protocol.md, "HSM-bound OPRF key"). The OPRF
// of RFC 9497 (P256-SHA256, mode 0x00) evaluates Z = k·M for the client's
// blinded element M. With k a derive-only P-256 key in the HSM, the only
// operation PKCS#11 offers is CKM_ECDH1_DERIVE with CKD_NULL, which gives
// x(k·P) alone. Two derives recover Z: X1 = x(k·M) names the two
// candidates ±Y with that x-coordinate, and X2 = x(k·(M+G)) = x(Z + K),
// with K = k·G the key's public point, tells them apart: exactly one
// candidate C has x(C + K) = X2. The proof is in docs/protocol.md.

// OPRFDevice is what HSM-bound OPRF keys need of a device: derive-only
// key generation, ECDH (x-coordinate only) and destruction.
type OPRFDevice interface {
	device.Device
	device.DeriveOnlyGenerator
}

// blindedLen is the length of a blinded or evaluated element: a
// compressed SEC1 P-256 point.
const blindedLen = 33

// errDevice marks a device answer that the recovery cannot use: a
// coordinate that is no point's, or one that matches no candidate. It is
// the device's fault (or a wrong key), never the client's.
var errDevice = errors.New("pin: the device's OPRF evaluation is inconsistent")

// parseElement validates a blinded element before any device call: a
// compressed SEC1 encoding (33 bytes, prefix 2 or 3) of a point on P-256
// whose x-coordinate is canonical (below p: nistec refuses any other,
// as it refuses an x with no point); the identity has no such encoding.
// It refuses −G too: a real key evaluates it with no derive (M + G is the
// identity) and a fake record (t_u·M) with two, so its timing would tell
// whether a unit has a record; an honest client never sends it.
func parseElement(b []byte) (*nistec.P256Point, error) {
	if len(b) != blindedLen || b[0] != 2 && b[0] != 3 {
		return nil, fmt.Errorf("%w: blinded element: not a compressed P-256 point", ErrMalformed)
	}
	p, err := nistec.NewP256Point().SetBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%w: blinded element: not on P-256 or not canonical", ErrMalformed)
	}
	if isIdentity(nistec.NewP256Point().Add(p, nistec.NewP256Point().SetGenerator())) {
		return nil, fmt.Errorf("%w: blinded element: −G", ErrMalformed)
	}
	return p, nil
}

// ecdhPeer converts a validated point to the form device.ECDH takes.
func ecdhPeer(p *nistec.P256Point) (*ecdh.PublicKey, error) {
	pub, err := ecdh.P256().NewPublicKey(p.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return pub, nil
}

// deviceEvaluate returns Z = k·M, compressed, where k is the device key
// ref with public point pub (compressed SEC1) and m a validated element
// (parseElement). It makes two device derives, except for M = −G, where
// M + G is the identity and Z = −K needs none (parseElement refuses −G
// from a client; a fake record's t_u·M is −G with negligible chance).
func deviceEvaluate(ctx context.Context, dev device.Device, ref device.Ref, pub []byte, m *nistec.P256Point) ([]byte, error) {
	k, err := nistec.NewP256Point().SetBytes(pub)
	if err != nil {
		return nil, fmt.Errorf("pin: OPRF public key: %w", err)
	}
	m2 := nistec.NewP256Point().Add(m, nistec.NewP256Point().SetGenerator())
	if isIdentity(m2) {
		// M = −G, so Z = k·(−G) = −K: K's encoding with the other prefix.
		z := k.BytesCompressed()
		z[0] ^= 1
		return z, nil
	}
	p1, err := ecdhPeer(m)
	if err != nil {
		return nil, err
	}
	p2, err := ecdhPeer(m2)
	if err != nil {
		return nil, err
	}
	x1, err := dev.ECDH(ctx, ref, p1)
	if err != nil {
		return nil, fmt.Errorf("pin: OPRF evaluation: %w", err)
	}
	defer clear(x1)
	x2, err := dev.ECDH(ctx, ref, p2)
	if err != nil {
		return nil, fmt.Errorf("pin: OPRF evaluation: %w", err)
	}
	defer clear(x2)
	return recoverPoint(x1, x2, k)
}

// recoverPoint returns the compressed point C with x(C) = x1 and
// x(C + K) = x2. Of the two candidates ±Y with x-coordinate x1, exactly
// one qualifies when x1 and x2 come from k·M and k·(M+G) (with M + G not
// the identity): see docs/protocol.md for the proof. Anything else is
// errDevice.
func recoverPoint(x1, x2 []byte, k *nistec.P256Point) ([]byte, error) {
	if len(x1) != 32 || len(x2) != 32 {
		return nil, errDevice
	}
	var found []byte
	matches := 0
	for _, prefix := range []byte{2, 3} {
		enc := append([]byte{prefix}, x1...)
		c, err := nistec.NewP256Point().SetBytes(enc)
		if err != nil {
			return nil, errDevice
		}
		sum := nistec.NewP256Point().Add(c, k)
		x, err := sum.BytesX() // fails for the identity: C = −K
		if err != nil {
			continue
		}
		if subtle.ConstantTimeCompare(x, x2) == 1 {
			found = enc
			matches++
		}
	}
	if matches != 1 {
		return nil, errDevice
	}
	return found, nil
}

func isIdentity(p *nistec.P256Point) bool {
	_, err := p.BytesX()
	return err != nil
}

// compressedPublic returns a device key's public point, compressed.
func compressedPublic(k device.Key) ([]byte, error) {
	if k.Public == nil {
		return nil, errDevice
	}
	raw, err := k.Public.Bytes()
	if err != nil {
		return nil, fmt.Errorf("pin: OPRF public key: %w", err)
	}
	p, err := nistec.NewP256Point().SetBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("pin: OPRF public key: %w", err)
	}
	return p.BytesCompressed(), nil
}

// oprfKey returns the store's reference to a unit's new HSM OPRF key,
// with its MAC.
func (s *Server) oprfKey(unit string, k device.Key) store.OPRFKey {
	pub, _ := compressedPublic(k) // checked by evaluateOnDevice
	return store.OPRFKey{Public: pub, Wrapped: bytes.Clone(k.Wrapped), MAC: oprfKeyMAC(s.sealer, unit, pub, k.Wrapped)}
}

// oprfRef returns the device reference of a unit's HSM OPRF key.
func oprfRef(unit string, k store.OPRFKey) (device.Ref, error) {
	owner, err := device.ParseOwner(unit)
	if err != nil {
		return device.Ref{}, fmt.Errorf("%w: unit id is no device owner", ErrMalformed)
	}
	pub, err := device.PublicKeyFromBytes(k.Public)
	if err != nil {
		return device.Ref{}, fmt.Errorf("pin: OPRF key: %w", err)
	}
	kid, err := device.KIDOf(pub)
	if err != nil {
		return device.Ref{}, fmt.Errorf("pin: OPRF key: %w", err)
	}
	var blob []byte
	if len(k.Wrapped) > 0 {
		blob = k.Wrapped
	}
	return device.Ref{Owner: owner, KID: kid, Wrapped: blob}, nil
}

// evaluateOnDevice is the evaluate step of a registration with an HSM
// OPRF key: the request (the blinded element) is validated, a
// derive-only key made for the unit and the element evaluated with it.
// It returns the RegistrationResponse and the key, which the caller
// destroys if it cannot keep it.
func (s *Server) evaluateOnDevice(ctx context.Context, unit string, req []byte) ([]byte, device.Key, error) {
	op, unlock, err := s.acquire()
	if err != nil {
		return nil, device.Key{}, err
	}
	serverPK := bytes.Clone(op.ServerKeyMaterial.PublicKeyBytes)
	unlock()
	m, err := parseElement(req)
	if err != nil {
		return nil, device.Key{}, err
	}
	owner, err := device.ParseOwner(unit)
	if err != nil {
		return nil, device.Key{}, fmt.Errorf("%w: unit id is no device owner", ErrMalformed)
	}
	key, err := s.dev.GenerateDeriveOnly(ctx, owner)
	if err != nil {
		return nil, device.Key{}, fmt.Errorf("pin: OPRF key: %w", err)
	}
	pub, err := compressedPublic(key)
	if err != nil {
		s.destroyKey(ctx, key.Ref())
		return nil, device.Key{}, err
	}
	z, err := deviceEvaluate(ctx, s.dev, key.Ref(), pub, m)
	if err != nil {
		s.destroyKey(ctx, key.Ref())
		return nil, device.Key{}, err
	}
	return append(z, serverPK...), key, nil
}

// destroyKey destroys an HSM OPRF key that nothing names (yet); a failure
// is logged.
func (s *Server) destroyKey(ctx context.Context, ref device.Ref) {
	if err := s.dev.Destroy(context.WithoutCancel(ctx), ref); err != nil && !errors.Is(err, device.ErrKeyNotFound) {
		s.log.ErrorContext(ctx, "pin: orphaned OPRF key: destroy failed", "unit", ref.Owner, "kid", ref.KID, "err", err)
	}
}

// retiredBatch bounds the retired keys one DestroyRetiredOPRFKeys call
// destroys.
const retiredBatch = 64

// DestroyRetiredOPRFKeys destroys, on the device, HSM OPRF keys that no
// record or pending registration uses any more (store.RetiredOPRFKeys):
// a unit's, or every unit's when unit is empty, at most retiredBatch of
// them. A key whose MAC fails is left alone and logged (a database
// writer cannot have another key destroyed). It returns how many went;
// failures are logged, and the next call tries again.
func (s *Server) DestroyRetiredOPRFKeys(ctx context.Context, unit string) int {
	if s.dev == nil {
		return 0
	}
	keys, err := s.st.RetiredOPRFKeys(ctx, unit, retiredBatch)
	if err != nil {
		s.log.ErrorContext(ctx, "pin: retired OPRF keys", "err", err)
		return 0
	}
	n := 0
	for _, k := range keys {
		if !hmac.Equal(k.MAC, oprfKeyMAC(s.sealer, k.UnitID, k.Public, k.Wrapped)) {
			s.log.ErrorContext(ctx, "pin: retired OPRF key fails its MAC: not destroyed", "unit", k.UnitID)
			continue
		}
		ref, err := oprfRef(k.UnitID, k.OPRFKey)
		if err == nil {
			err = s.dev.Destroy(context.WithoutCancel(ctx), ref)
			if errors.Is(err, device.ErrKeyNotFound) {
				err = nil
			}
		}
		if err == nil {
			err = s.st.DeleteRetiredOPRFKey(ctx, k.UnitID, k.Public)
		}
		if err != nil {
			s.log.ErrorContext(ctx, "pin: retired OPRF key: destroy failed", "unit", k.UnitID, "err", err)
			continue
		}
		n++
		s.log.InfoContext(ctx, "pin: retired OPRF key destroyed", "unit", k.UnitID, "kid", ref.KID)
	}
	return n
}

// FakeKeyName is the server secret holding the reference (sealed) to the
// HSM key that answers units without a record.
const FakeKeyName = "opaque-fake-oprf-key"

// fakeOwner owns the fake key on the device.
const fakeOwner device.Owner = "wsca.opaque-fake-oprf"

// fakeKey is the server-wide HSM key of fake records. A unit u without a
// record is answered with the OPRF key k_f·t_u, t_u a scalar hashed from
// the OPRF seed and u: Z = k_f·(t_u·M), two derives as for a real key.
type fakeKey struct {
	key store.OPRFKey // Public and Wrapped; no MAC (it is sealed)
}

// loadFakeKey returns the fake key named in the store, making it (and
// naming it there) if there is none. When another instance names its
// own first, that one is used and ours destroyed.
func loadFakeKey(ctx context.Context, st Store, sealer Sealer, dev OPRFDevice, log *slog.Logger, now time.Time) (fakeKey, error) {
	sealed, err := st.GetServerSecret(ctx, FakeKeyName)
	if err == nil {
		return openFakeKey(sealer, sealed)
	}
	if !errors.Is(err, store.ErrNotFound) {
		return fakeKey{}, fmt.Errorf("pin: load fake OPRF key: %w", err)
	}
	k, err := dev.GenerateDeriveOnly(ctx, fakeOwner)
	if err != nil {
		return fakeKey{}, fmt.Errorf("pin: fake OPRF key: %w", err)
	}
	pub, err := compressedPublic(k)
	if err != nil {
		return fakeKey{}, err
	}
	enc := append(bytes.Clone(pub), k.Wrapped...)
	sealed, err = sealer.Seal(enc, []byte(FakeKeyName))
	if err != nil {
		return fakeKey{}, fmt.Errorf("pin: seal fake OPRF key: %w", err)
	}
	err = st.PutServerSecret(ctx, FakeKeyName, sealed, now)
	if err == nil {
		log.Info("pin: created the fake-record OPRF key", "kid", k.KID)
		return fakeKey{key: store.OPRFKey{Public: pub, Wrapped: k.Wrapped}}, nil
	}
	if derr := dev.Destroy(context.WithoutCancel(ctx), k.Ref()); derr != nil {
		err = errors.Join(err, derr)
	}
	if !errors.Is(err, store.ErrExists) {
		return fakeKey{}, fmt.Errorf("pin: store fake OPRF key: %w", err)
	}
	if sealed, err = st.GetServerSecret(ctx, FakeKeyName); err != nil {
		return fakeKey{}, fmt.Errorf("pin: load fake OPRF key: %w", err)
	}
	return openFakeKey(sealer, sealed)
}

func openFakeKey(sealer Sealer, sealed []byte) (fakeKey, error) {
	enc, err := sealer.Open(sealed, []byte(FakeKeyName))
	if err != nil {
		return fakeKey{}, fmt.Errorf("pin: open fake OPRF key: %w", err)
	}
	if len(enc) < blindedLen {
		return fakeKey{}, errors.New("pin: fake OPRF key: malformed")
	}
	key := store.OPRFKey{Public: bytes.Clone(enc[:blindedLen]), Wrapped: bytes.Clone(enc[blindedLen:])}
	if _, err := oprfRef(string(fakeOwner), key); err != nil {
		return fakeKey{}, err
	}
	return fakeKey{key: key}, nil
}

// fakeScalarDST separates the hash of a fake record's scalar t_u.
const fakeScalarDST = "wsca-pin-fake-oprf-v1"

// fakeScalar returns t_u for a unit in a context (credID without nonce),
// big-endian: a scalar only the holder of the OPRF seed can compute.
func fakeScalar(seed, credID []byte) []byte {
	in := append(bytes.Clone(seed), credID...)
	defer clear(in)
	return ecc.P256Sha256.HashToScalar(in, []byte(fakeScalarDST)).Encode()
}
