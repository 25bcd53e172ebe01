package attest

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"slices"
	"time"
)

// Issuer signs attestations with the Wallet Provider's attestation key: a
// crypto.Signer (software, or a PKCS#11 key) and its certificate chain,
// sent as x5c. It holds no mutable state; use one per signing key.
type Issuer struct {
	key   crypto.Signer
	x5c   []string
	chain []*x509.Certificate
	now   func() time.Time
}

// IssuerConfig configures an Issuer.
type IssuerConfig struct {
	// Key signs (ES256); its public key must be the leaf's.
	Key crypto.Signer
	// Chain is the certificate chain, leaf first, without the trust anchor
	// (HAIP §4.5.1), as from ParseChainPEM or DevCA.Issue.
	Chain []*x509.Certificate
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// NewIssuer checks the configuration: a P-256 key that is the leaf's, and
// a chain with a leaf that is not self-signed and no self-signed
// certificate (a trust anchor) in it.
func NewIssuer(cfg IssuerConfig) (*Issuer, error) {
	if cfg.Key == nil {
		return nil, fmt.Errorf("%w: no signing key", ErrInput)
	}
	pub, err := checkShape(cfg.Chain)
	if err != nil {
		return nil, fmt.Errorf("%w: signing chain: %w", ErrInput, err)
	}
	if !pub.Equal(cfg.Key.Public()) {
		return nil, fmt.Errorf("%w: signing key is not the leaf certificate's", ErrInput)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Issuer{key: cfg.Key, x5c: encodeX5C(cfg.Chain), chain: cfg.Chain, now: now}, nil
}

// Chain returns the issuer's certificate chain (leaf first).
func (i *Issuer) Chain() []*x509.Certificate {
	return append([]*x509.Certificate(nil), i.chain...)
}

// sign signs claims with typ and the x5c chain.
func (i *Issuer) sign(typ string, claims any) (string, error) {
	return signCompact(i.key, typ, map[string]any{"x5c": i.x5c}, claims)
}

// Verifier verifies attestations signed by Wallet Providers it trusts:
// x5c chains up to its trust anchors and, when a key set is configured,
// signing keys in that set. It holds no mutable state.
type Verifier struct {
	roots []*x509.Certificate
	keys  *KeySet
	now   func() time.Time
	skew  time.Duration
}

// DefaultSkew is the clock skew a Verifier allows on iat, nbf and exp.
const DefaultSkew = 60 * time.Second

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Roots are the trust anchors (the Wallet Providers' root
	// certificates, as on a Trusted List). Required.
	Roots []*x509.Certificate
	// Keys, when set, pins the signing keys: the x5c leaf's key must be in
	// the set. Keep old and new keys in it during a rotation.
	Keys *KeySet
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Skew is the clock skew allowed (DefaultSkew when 0; negative: none).
	Skew time.Duration
}

// NewVerifier checks the configuration.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if len(cfg.Roots) == 0 {
		return nil, fmt.Errorf("%w: no trust anchor", ErrInput)
	}
	v := &Verifier{roots: append([]*x509.Certificate(nil), cfg.Roots...), keys: cfg.Keys, now: cfg.Now, skew: cfg.Skew}
	if v.now == nil {
		v.now = time.Now
	}
	switch {
	case v.skew == 0:
		v.skew = DefaultSkew
	case v.skew < 0:
		v.skew = 0
	}
	return v, nil
}

// signed is a token whose header and signature were verified.
type signed struct {
	*compact
	chain []*x509.Certificate
}

// verifySigned parses token and runs the header and signature checks, in
// the order of the OIDF conformance conditions: typ (one of typs), alg
// ES256, x5c present, x5c chain (HAIP §4.5.1) to a trust anchor at now,
// leaf key in the key set when pinned, signature by the leaf key.
func (v *Verifier) verifySigned(token string, now time.Time, typs ...string) (*signed, error) {
	c, err := parseCompact(token)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(typs, c.header.Typ) {
		return nil, fmt.Errorf("%w: %q", ErrTyp, c.header.Typ)
	}
	if c.header.Alg != algES256 {
		return nil, fmt.Errorf("%w: %q", ErrAlg, c.header.Alg)
	}
	chain, err := parseX5C(c.header.X5C) // ErrNoX5C when absent or empty
	if err != nil {
		return nil, err
	}
	pub, err := CheckChain(chain, v.roots, now)
	if err != nil {
		return nil, err
	}
	if v.keys != nil && !v.keys.Contains(pub) {
		return nil, ErrUntrustedKey
	}
	if err := c.verifyES256(pub); err != nil {
		return nil, err
	}
	return &signed{compact: c, chain: chain}, nil
}

// checkTimes checks iat (required, not after now+skew), exp (required, not
// before now-skew, after iat) and nbf (optional, not after now+skew).
func (v *Verifier) checkTimes(now time.Time, iat, exp, nbf NumericDate) error {
	if iat == 0 {
		return fmt.Errorf("%w: no iat", ErrTime)
	}
	if exp == 0 {
		return fmt.Errorf("%w: no exp", ErrTime)
	}
	skew := int64(v.skew / time.Second)
	n := now.Unix()
	switch {
	case int64(iat) > n+skew:
		return fmt.Errorf("%w: iat in the future", ErrTime)
	case int64(nbf) > n+skew:
		return fmt.Errorf("%w: nbf in the future", ErrTime)
	case int64(exp) < n-skew:
		return fmt.Errorf("%w: expired", ErrTime)
	case exp <= iat:
		return fmt.Errorf("%w: exp not after iat", ErrTime)
	}
	return nil
}
