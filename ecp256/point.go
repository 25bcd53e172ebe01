package ecp256

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"fmt"

	"filippo.io/nistec"
)

// ErrInvalidPoint is returned for input that is not a valid P-256 point.
var ErrInvalidPoint = errors.New("ecp256: invalid point")

// ParsePoint validates a SEC1-encoded P-256 point (SEC 1 v2.0 §2.3.4),
// uncompressed (65 bytes) or compressed (33 bytes). It rejects empty input,
// wrong lengths, the point at infinity and points not on the curve, so an
// invalid-curve point never reaches a key.
func ParsePoint(b []byte) (*ecdh.PublicKey, error) {
	switch {
	case len(b) == 0:
		return nil, fmt.Errorf("%w: empty", ErrInvalidPoint)
	case len(b) == 65 && b[0] == 4, len(b) == 33 && (b[0] == 2 || b[0] == 3):
	default:
		return nil, fmt.Errorf("%w: not a SEC1 P-256 encoding", ErrInvalidPoint)
	}
	p, err := nistec.NewP256Point().SetBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%w: not on the curve", ErrInvalidPoint)
	}
	pub, err := ecdh.P256().NewPublicKey(p.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPoint, err)
	}
	return pub, nil
}

// ParsePublicKey parses a SEC1 P-256 point (as [ParsePoint]) into its ECDSA
// form.
func ParsePublicKey(b []byte) (*ecdsa.PublicKey, error) {
	pub, err := ParsePoint(b)
	if err != nil {
		return nil, err
	}
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pub.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPoint, err)
	}
	return k, nil
}
