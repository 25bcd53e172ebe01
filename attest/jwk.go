package attest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"fmt"

	"github.com/wsca/wsca/ecp256"
)

// JWK is a public P-256 key as a JSON Web Key (RFC 7517, RFC 7518 §6.2):
// the members this profile emits and reads. Kid is wsca's key id
// (ecp256.KID). Alg, Use and X5C appear only in a KeySet.
type JWK struct {
	Kty string   `json:"kty"`
	Crv string   `json:"crv"`
	X   string   `json:"x"`
	Y   string   `json:"y"`
	Kid string   `json:"kid,omitempty"`
	Alg string   `json:"alg,omitempty"`
	Use string   `json:"use,omitempty"`
	X5C []string `json:"x5c,omitempty"`
	// D is read only to refuse a private key where a public one belongs.
	D string `json:"d,omitempty"`
}

// jwkMembers is JWK without methods, for decoding.
type jwkMembers JWK

// UnmarshalJSON implements json.Unmarshaler under decodeObject's rules.
func (j *JWK) UnmarshalJSON(b []byte) error {
	return decodeObject(b, (*jwkMembers)(j))
}

// coordSize is the size of a P-256 coordinate.
const coordSize = 32

// NewJWK returns the public JWK of pub, with kid = ecp256.KID(pub).
func NewJWK(pub *ecdsa.PublicKey) (JWK, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return JWK{}, fmt.Errorf("%w: not a P-256 key", ErrKey)
	}
	raw, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		return JWK{}, fmt.Errorf("%w: %v", ErrKey, err)
	}
	kid, err := ecp256.KID(pub)
	if err != nil {
		return JWK{}, fmt.Errorf("%w: %v", ErrKey, err)
	}
	return JWK{
		Kty: "EC",
		Crv: "P-256",
		X:   b64.EncodeToString(raw[1 : 1+coordSize]),
		Y:   b64.EncodeToString(raw[1+coordSize:]),
		Kid: kid,
	}, nil
}

// PublicKey returns the key of j after checking that it is a public P-256
// key on the curve, with no private member, and that a kid, when present,
// is the key's ecp256.KID.
func (j JWK) PublicKey() (*ecdsa.PublicKey, error) {
	pub, err := j.publicKey()
	if err != nil {
		return nil, err
	}
	if j.Kid != "" {
		kid, err := ecp256.KID(pub)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKey, err)
		}
		if kid != j.Kid {
			return nil, fmt.Errorf("%w: kid is not the key's", ErrKey)
		}
	}
	return pub, nil
}

// publicKey is PublicKey without the kid rule (a key set from another
// provider may use other kids).
func (j JWK) publicKey() (*ecdsa.PublicKey, error) {
	if j.Kty != "EC" || j.Crv != "P-256" {
		return nil, fmt.Errorf("%w: not an EC P-256 JWK", ErrKey)
	}
	if j.D != "" {
		return nil, fmt.Errorf("%w: private key member", ErrKey)
	}
	x, errX := b64.DecodeString(j.X)
	y, errY := b64.DecodeString(j.Y)
	if errX != nil || errY != nil {
		return nil, fmt.Errorf("%w: bad coordinates", ErrKey)
	}
	raw := make([]byte, 0, 1+2*coordSize)
	raw = append(append(append(raw, 4), x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return nil, fmt.Errorf("%w: not on the curve", ErrKey)
	}
	return pub, nil
}

// ParseJWK decodes one public P-256 JWK (strict JSON) and returns its key.
func ParseJWK(b []byte) (JWK, *ecdsa.PublicKey, error) {
	var j JWK
	if err := json.Unmarshal(b, &j); err != nil {
		return JWK{}, nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	pub, err := j.PublicKey()
	if err != nil {
		return JWK{}, nil, err
	}
	return j, pub, nil
}

// attestedKeys converts keys to JWKs, refusing an empty list, a key that
// is not P-256 and a key given twice.
func attestedKeys(keys []*ecdsa.PublicKey, min int) ([]JWK, error) {
	if len(keys) < min {
		return nil, fmt.Errorf("%w: %d keys, want at least %d", ErrInput, len(keys), min)
	}
	out := make([]JWK, 0, len(keys))
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		j, err := NewJWK(k)
		if err != nil {
			return nil, err
		}
		if seen[j.Kid] {
			return nil, fmt.Errorf("%w: key %s given twice", ErrKey, j.Kid)
		}
		seen[j.Kid] = true
		out = append(out, j)
	}
	return out, nil
}

// AttestedKey is one key a verified attestation vouches for.
type AttestedKey struct {
	KID    string // ecp256.KID of Public
	Public *ecdsa.PublicKey
}

// readKeys checks a list of JWKs read from a token: at least min, each a
// public P-256 key, none twice.
func readKeys(jwks []JWK, min int) ([]AttestedKey, error) {
	if len(jwks) < min {
		return nil, fmt.Errorf("%w: %d keys, want at least %d", ErrKey, len(jwks), min)
	}
	out := make([]AttestedKey, 0, len(jwks))
	seen := make(map[string]bool, len(jwks))
	for i, j := range jwks {
		pub, err := j.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		kid, err := ecp256.KID(pub)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKey, err)
		}
		if seen[kid] {
			return nil, fmt.Errorf("%w: key %s listed twice", ErrKey, kid)
		}
		seen[kid] = true
		out = append(out, AttestedKey{KID: kid, Public: pub})
	}
	return out, nil
}
