package attest

import (
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"
	"time"
)

// TypProofOfAssociation is the typ of wsca's proof of association.
const TypProofOfAssociation = "wsca-poa+jwt"

// ProofOfAssociationClaims is the claims set of a proof of association:
// the Wallet Provider's statement that one WSCA holds every key in
// associated_keys for one wallet unit (ARF ACP_01). It names no unit.
type ProofOfAssociationClaims struct {
	IssuedAt       NumericDate `json:"iat"`
	Expiry         NumericDate `json:"exp"`
	Audience       string      `json:"aud,omitempty"`
	Nonce          string      `json:"nonce,omitempty"`
	AssociatedKeys []JWK       `json:"associated_keys"`
}

// ProofOfAssociationInput is what a proof of association states.
type ProofOfAssociationInput struct {
	// Keys are the associated keys: at least two, P-256, distinct, all
	// held by the WSCA for the same unit (the caller checked ownership).
	Keys []*ecdsa.PublicKey
	// Audience and Nonce are optional (the relying party and its nonce).
	Audience, Nonce string
	// Lifetime is exp - iat; positive.
	Lifetime time.Duration
}

// ProofOfAssociation builds and signs a proof of association.
func (i *Issuer) ProofOfAssociation(in ProofOfAssociationInput) (string, error) {
	keys, err := attestedKeys(in.Keys, 2)
	if err != nil {
		return "", err
	}
	if in.Lifetime <= 0 {
		return "", fmt.Errorf("%w: lifetime not positive", ErrLifetime)
	}
	now := i.now().Truncate(time.Second)
	claims := ProofOfAssociationClaims{
		IssuedAt:       NumericDate(now.Unix()),
		Expiry:         NumericDate(now.Add(in.Lifetime).Unix()),
		Audience:       in.Audience,
		Nonce:          in.Nonce,
		AssociatedKeys: keys,
	}
	return i.sign(TypProofOfAssociation, claims)
}

// ProofOfAssociationOptions tunes VerifyProofOfAssociation.
type ProofOfAssociationOptions struct {
	// Audience, when set, must equal aud.
	Audience string
	// Nonce, when set, must equal nonce.
	Nonce string
}

// ProofOfAssociation is a verified proof of association.
type ProofOfAssociation struct {
	Claims ProofOfAssociationClaims
	Keys   []AttestedKey
	Chain  []*x509.Certificate
}

// VerifyProofOfAssociation verifies a proof of association offline:
// verifySigned's checks with typ wsca-poa+jwt, iat and exp present and
// current, aud and nonce as expected, at least two distinct public P-256
// keys each with its ecp256 kid.
func (v *Verifier) VerifyProofOfAssociation(token string, opts ProofOfAssociationOptions) (*ProofOfAssociation, error) {
	now := v.now()
	s, err := v.verifySigned(token, now, TypProofOfAssociation)
	if err != nil {
		return nil, err
	}
	var c ProofOfAssociationClaims
	if err := s.claims(&c); err != nil {
		return nil, err
	}
	if err := v.checkTimes(now, c.IssuedAt, c.Expiry, 0); err != nil {
		return nil, err
	}
	if opts.Audience != "" && c.Audience != opts.Audience {
		return nil, ErrAudience
	}
	if opts.Nonce != "" && c.Nonce != opts.Nonce {
		return nil, ErrNonce
	}
	for i, j := range c.AssociatedKeys {
		if j.Kid == "" {
			return nil, fmt.Errorf("key %d: %w: no kid", i, ErrKey)
		}
	}
	keys, err := readKeys(c.AssociatedKeys, 2)
	if err != nil {
		return nil, err
	}
	return &ProofOfAssociation{Claims: c, Keys: keys, Chain: s.chain}, nil
}

// Covers reports whether the proof associates every kid in kids.
func (p *ProofOfAssociation) Covers(kids ...string) bool {
	for _, kid := range kids {
		found := false
		for _, k := range p.Keys {
			if k.KID == kid {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
