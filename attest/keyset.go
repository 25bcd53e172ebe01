package attest

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
)

// KeySet is a JWKS (RFC 7517 §5) of Wallet Provider signing keys: what the
// provider publishes (at /.well-known/jwks.json, say) and what a verifier
// can pin. During a rotation it holds the old and the new key, so tokens
// signed by either verify until the old one is dropped.
type KeySet struct {
	Keys []JWK `json:"keys"`
}

// keySetMembers is KeySet without methods, for decoding.
type keySetMembers KeySet

// UnmarshalJSON implements json.Unmarshaler under decodeObject's rules.
func (ks *KeySet) UnmarshalJSON(b []byte) error {
	return decodeObject(b, (*keySetMembers)(ks))
}

// NewKeySet makes the JWKS of the signing certificates' chains (leaf first,
// as in x5c): per chain one key with kid = ecp256.KID, alg ES256, use sig
// and the chain as x5c. A key given twice is refused.
func NewKeySet(chains ...[]*x509.Certificate) (*KeySet, error) {
	ks := &KeySet{Keys: []JWK{}}
	seen := map[string]bool{}
	for i, chain := range chains {
		pub, err := checkShape(chain)
		if err != nil {
			return nil, fmt.Errorf("chain %d: %w", i, err)
		}
		j, err := NewJWK(pub)
		if err != nil {
			return nil, err
		}
		if seen[j.Kid] {
			return nil, fmt.Errorf("%w: key %s given twice", ErrKey, j.Kid)
		}
		seen[j.Kid] = true
		j.Alg, j.Use, j.X5C = algES256, "sig", encodeX5C(chain)
		ks.Keys = append(ks.Keys, j)
	}
	return ks, nil
}

// ParseKeySet decodes a JWKS and checks each key as JWK.PublicKey does.
func ParseKeySet(data []byte) (*KeySet, error) {
	if len(data) > MaxTokenSize {
		return nil, fmt.Errorf("%w: key set longer than %d bytes", ErrInput, MaxTokenSize)
	}
	var ks KeySet
	if err := json.Unmarshal(data, &ks); err != nil {
		return nil, fmt.Errorf("%w: key set: %v", ErrInput, err)
	}
	if ks.Keys == nil {
		return nil, fmt.Errorf("%w: key set has no keys member", ErrInput)
	}
	for i, j := range ks.Keys {
		if _, err := j.publicKey(); err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		if j.Alg != "" && j.Alg != algES256 {
			return nil, fmt.Errorf("key %d: %w: alg %q", i, ErrKey, j.Alg)
		}
	}
	return &ks, nil
}

// Contains reports whether pub is one of the set's keys.
func (ks *KeySet) Contains(pub *ecdsa.PublicKey) bool {
	for _, j := range ks.Keys {
		if k, err := j.publicKey(); err == nil && k.Equal(pub) {
			return true
		}
	}
	return false
}
