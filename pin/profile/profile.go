// Package profile is the OPAQUE profile (RFC 9807) that a PIN client and
// the PIN server must agree on beyond the fixed suite: the context string
// and the client's key stretching function. It imports no other wsca
// package, so the wallet side can build its OPAQUE client from it without
// linking the server (package pin, which uses it).
//
// The suite is fixed: OPRF P256-SHA256 (RFC 9497), 3DH on P-256,
// HKDF-SHA256, HMAC-SHA256 and SHA-256, no client or server identities.
package profile

import (
	"crypto"
	"errors"
	"fmt"

	"github.com/bytemare/ksf"
	"github.com/bytemare/opaque"
)

// ErrInvalid means a profile, or a KSF name, is invalid.
var ErrInvalid = errors.New("profile: invalid OPAQUE profile")

// KSF names the key stretching function a client applies to the OPRF
// output before it derives its envelope keys (RFC 9807's Stretch). The
// server never runs it; it is part of the profile so that both sides build
// the same configuration.
type KSF uint8

const (
	// KSFIdentity is no stretching: the SIROS-compatible default. A client
	// may still harden the PIN before OPAQUE; the server cannot tell.
	KSFIdentity KSF = iota
	KSFArgon2id
	KSFScrypt
	KSFPBKDF2
)

var ksfNames = [...]string{
	KSFIdentity: "identity",
	KSFArgon2id: "argon2id",
	KSFScrypt:   "scrypt",
	KSFPBKDF2:   "pbkdf2-sha512",
}

// String returns the name ParseKSF accepts.
func (k KSF) String() string {
	if int(k) < len(ksfNames) {
		return ksfNames[k]
	}
	return fmt.Sprintf("KSF(%d)", uint8(k))
}

// ParseKSF parses a KSF name: identity, argon2id, scrypt or pbkdf2-sha512.
func ParseKSF(s string) (KSF, error) {
	for k, name := range ksfNames {
		if s == name {
			return KSF(k), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown KSF %q", ErrInvalid, s)
}

func (k KSF) identifier() (ksf.Identifier, error) {
	switch k {
	case KSFIdentity:
		return 0, nil
	case KSFArgon2id:
		return ksf.Argon2id, nil
	case KSFScrypt:
		return ksf.Scrypt, nil
	case KSFPBKDF2:
		return ksf.PBKDF2Sha512, nil
	}
	return 0, fmt.Errorf("%w: unknown KSF %d", ErrInvalid, uint8(k))
}

// maxContextLen is the longest OPAQUE context string: RFC 9807 encodes it
// with a two-byte length.
const maxContextLen = 1<<16 - 1

// Profile is what client and server must agree on beyond the fixed suite.
// The zero value is the SIROS-compatible default.
type Profile struct {
	// Context is the OPAQUE context string bound into every handshake's
	// preamble (empty by default).
	Context string
	// KSF is the client's key stretching function (identity by default).
	KSF KSF
}

// Configuration returns the bytemare/opaque configuration of the profile:
// the fixed P256-SHA256 suite with the profile's context and KSF. A client
// uses it to build an opaque.Client.
func (p Profile) Configuration() (*opaque.Configuration, error) {
	id, err := p.KSF.identifier()
	if err != nil {
		return nil, err
	}
	if len(p.Context) > maxContextLen {
		return nil, fmt.Errorf("%w: OPAQUE context longer than %d bytes", ErrInvalid, maxContextLen)
	}
	c := &opaque.Configuration{
		OPRF: opaque.P256Sha256,
		AKE:  opaque.P256Sha256,
		KSF:  id,
		KDF:  crypto.SHA256,
		MAC:  crypto.SHA256,
		Hash: crypto.SHA256,
	}
	if p.Context != "" {
		c.Context = []byte(p.Context)
	}
	return c, nil
}
