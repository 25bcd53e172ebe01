package wscd

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/store"
)

// ClientKeyMACDomain separates client-key MACs from other MACs.
const ClientKeyMACDomain = "wsca-client-key-v1"

// ProfileCompat is the R2PS profile of an operator-provisioned client
// signing key: go-r2ps-service clients (docs/protocol.md §8). It is the
// dispatcher's profile of the same name.
const ProfileCompat = "compat"

// ProfileStrict is the profile of client keys bound by an R2PS enrolment
// with an activation code (the strict I-D profile).
const ProfileStrict = "strict"

// MACer computes MACs under a key derived from an HSM key ([Sealer]).
type MACer interface {
	MAC(domain string, parts ...[]byte) []byte
}

// ShareMAC returns a client key's MAC under the share key of split roles,
// or nil while there is none (share may be nil).
func ShareMAC(ctx context.Context, share *Share, k store.ClientKey) ([]byte, error) {
	if share == nil {
		return nil, nil
	}
	sl, err := share.Sealer(ctx)
	if err != nil || sl == nil {
		return nil, err
	}
	return ClientKeyMAC(sl, k), nil
}

// ClientKeyMAC returns the MAC that binds a client key row (kid, unit,
// usage, point, profile) under the HSM-derived MAC key, so someone who can
// write the database cannot plant a client key.
func ClientKeyMAC(m MACer, k store.ClientKey) []byte {
	return m.MAC(ClientKeyMACDomain, []byte(k.KID), []byte(k.UnitID), []byte(k.Usage), k.PublicKey, []byte(k.Profile))
}

// Errors of client key provisioning.
var (
	// ErrBadClientKey means the key given is not a P-256 public key in a
	// form ParseClientKey reads. It wraps ErrInvalidInput.
	ErrBadClientKey = fmt.Errorf("%w: not a P-256 public key (JWK or PEM SPKI)", ErrInvalidInput)
	// ErrStrictEnrolled means the unit enrolled under the strict profile:
	// its keys are its wallet's, not the operator's to replace.
	ErrStrictEnrolled = errors.New("wscd: the unit is enrolled under the strict profile")
	// ErrClientKeyInUse means the key is another unit's client key.
	ErrClientKeyInUse = errors.New("wscd: the key is another unit's client key")
)

// maxClientKeyInput bounds what ParseClientKey reads: a JWK or PEM public
// key is a few hundred bytes.
const maxClientKeyInput = 8 << 10

// ParseClientKey reads a P-256 public key given as a PEM "PUBLIC KEY"
// block (X.509 SubjectPublicKeyInfo) or as a JWK (kty EC, crv P-256),
// nothing around it but white space. A private key in either form is
// refused, so it is never sent or kept by mistake. Errors wrap
// ErrBadClientKey.
func ParseClientKey(data []byte) (*ecdsa.PublicKey, error) {
	if len(data) > maxClientKeyInput {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBadClientKey, maxClientKeyInput)
	}
	data = bytes.TrimSpace(data)
	var pub any
	switch {
	case bytes.HasPrefix(data, []byte("-----BEGIN ")):
		block, rest := pem.Decode(data)
		switch {
		case block == nil:
			return nil, fmt.Errorf("%w: malformed PEM", ErrBadClientKey)
		case len(bytes.TrimSpace(rest)) > 0:
			return nil, fmt.Errorf("%w: data after the PEM block", ErrBadClientKey)
		case block.Type != "PUBLIC KEY":
			return nil, fmt.Errorf("%w: PEM block %q, want PUBLIC KEY", ErrBadClientKey, block.Type)
		case len(block.Headers) > 0:
			return nil, fmt.Errorf("%w: PEM headers", ErrBadClientKey)
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadClientKey, err)
		}
		pub = k
	case bytes.HasPrefix(data, []byte("{")):
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(data); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadClientKey, err)
		}
		pub = k.Key
	default:
		return nil, fmt.Errorf("%w: neither PEM nor JSON", ErrBadClientKey)
	}
	return checkClientKey(pub)
}

// checkClientKey accepts a P-256 ECDSA public key on the curve.
func checkClientKey(k any) (*ecdsa.PublicKey, error) {
	// A private key (a JWK with "d") is some other type and refused.
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub == nil || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: not an EC P-256 key", ErrBadClientKey)
	}
	// Through the point encoding, which checks it is on the curve and
	// not the identity.
	b, err := pub.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadClientKey, err)
	}
	out, err := device.PublicKeyFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadClientKey, err)
	}
	return out, nil
}

// ClientKeyThumbprint is a client key's kid: its RFC 7638 JWK thumbprint
// (SHA-256, base64url without padding).
func ClientKeyThumbprint(pub *ecdsa.PublicKey) (string, error) {
	if _, err := checkClientKey(pub); err != nil {
		return "", err
	}
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadClientKey, err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// ProvisionClientKey binds pub to a unit as its client signing key (CSK)
// under the compat profile: the operator's step before a go-r2ps-service
// wallet, which registers with neither its key nor an activation code,
// can enrol (docs/protocol.md §8). It replaces a compat CSK the unit had
// and ends the unit's sessions. It refuses reserved ids (ErrInvalidInput),
// unknown units (ErrUnitNotActive), revoked ones (ErrUnitRevoked), units
// enrolled under the strict profile (ErrStrictEnrolled), a key that is not
// P-256 (ErrBadClientKey) and another unit's key (ErrClientKeyInUse). A
// suspended unit gets its key; it is served once resumed.
func (s *Units) ProvisionClientKey(ctx context.Context, unit string, pub *ecdsa.PublicKey) (store.ClientKey, error) {
	if s.wscaOnly {
		return store.ClientKey{}, ErrNoDevice
	}
	if _, err := device.ParseOwner(unit); err != nil || reservedUnit(unit) {
		return store.ClientKey{}, fmt.Errorf("%w: unit id", ErrInvalidInput)
	}
	pub, err := checkClientKey(pub)
	if err != nil {
		return store.ClientKey{}, err
	}
	u, err := s.Get(ctx, unit)
	if err != nil {
		return store.ClientKey{}, err
	}
	if u.State.Final() {
		return store.ClientKey{}, ErrUnitRevoked
	}
	old, err := s.st.GetUnitClientKey(ctx, unit, store.UsageSign)
	switch {
	case err == nil && old.Profile != ProfileCompat:
		return store.ClientKey{}, ErrStrictEnrolled
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return store.ClientKey{}, storeErr(err)
	}
	kid, err := ClientKeyThumbprint(pub)
	if err != nil {
		return store.ClientKey{}, err
	}
	point, err := pub.Bytes()
	if err != nil {
		return store.ClientKey{}, fmt.Errorf("%w: %v", ErrBadClientKey, err)
	}
	sl, err := s.server.Sealer(ctx)
	if err != nil {
		return store.ClientKey{}, err
	}
	ck := store.ClientKey{KID: kid, UnitID: unit, Usage: store.UsageSign, PublicKey: point,
		Profile: ProfileCompat, CreatedAt: s.now().UTC()}
	ck.MAC = ClientKeyMAC(sl, ck)
	if ck.ShareMAC, err = s.shareMAC(ctx, ck); err != nil {
		return store.ClientKey{}, err
	}
	err = s.st.PutClientKey(ctx, ck)
	switch {
	case errors.Is(err, store.ErrExists):
		return store.ClientKey{}, fmt.Errorf("%w: %v", ErrClientKeyInUse, err)
	case errors.Is(err, store.ErrProfileConflict):
		// A strict enrolment since the check above.
		return store.ClientKey{}, ErrStrictEnrolled
	case errors.Is(err, store.ErrUnitNotActive):
		// Revoked or destroyed since the check above.
		return store.ClientKey{}, ErrUnitRevoked
	case err != nil:
		return store.ClientKey{}, storeErr(err)
	}
	if err := s.st.DeleteUnitSessions(ctx, unit); err != nil {
		return store.ClientKey{}, storeErr(err)
	}
	s.log.InfoContext(ctx, "client signing key provisioned", "unit", unit, "kid", kid, "profile", ProfileCompat)
	return ck, nil
}
