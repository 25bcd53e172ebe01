package statuslist

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"fmt"
	"time"
)

// DefaultMaxEntries bounds the lists a [Verifier] decompresses when its
// MaxEntries is 0: 2^24 entries, at most 16 MiB at 8 bits.
const DefaultMaxEntries = 1 << 24

// Verifier checks status list tokens. Set exactly one of Key and Roots.
//
// A token passes when it parses; its typ is exactly statuslist+jwt (JWT)
// or application/statuslist+cwt (CWT); its algorithm is ES256; its
// signature verifies under Key, or under the leaf of its x5c / x5chain
// when that chain verifies to Roots; sub equals the uri asked for; iat is
// present and not in the future; exp, when present, is in the future; ttl,
// when present, is positive; and status_list holds bits 1, 2, 4 or 8 and an
// lst that decompresses, with a valid ZLIB checksum, to at most MaxEntries
// entries.
type Verifier struct {
	// Key is the issuer's P-256 public key (*ecdsa.PublicKey).
	Key crypto.PublicKey
	// Roots are the trust anchors the token's certificate chain must reach.
	Roots *x509.CertPool
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Leeway is the clock skew allowed on exp and iat.
	Leeway time.Duration
	// MaxEntries bounds the decompressed list; 0 means DefaultMaxEntries.
	MaxEntries int
}

// Verified is a token that passed a [Verifier].
type Verified struct {
	Token
	// List is the decompressed list.
	List *List
	// Chain is the verified certificate chain, leaf first and ending with
	// the trust anchor; nil when the Verifier had a Key.
	Chain []*x509.Certificate
	// KeyID is the token's kid, "" when absent.
	KeyID string
}

// Status returns the status at idx, or [ErrIndex] when idx is outside the
// list: then nothing can be said and the referenced token must be rejected.
func (v *Verified) Status(idx uint64) (Status, error) {
	if idx >= uint64(v.List.Len()) {
		return 0, fmt.Errorf("%w: %d not in [0,%d)", ErrIndex, idx, v.List.Len())
	}
	return v.List.Get(int(idx))
}

func (v *Verifier) maxEntries() int {
	if v.MaxEntries > 0 {
		return v.MaxEntries
	}
	return DefaultMaxEntries
}

// check refuses a misconfigured verifier and a token larger than any
// token of an acceptable list: the uncompressed list base64-encoded, plus
// room for headers and a certificate chain.
func (v *Verifier) check(size int) error {
	if (v.Key == nil) == (v.Roots == nil) {
		return fmt.Errorf("%w: set exactly one of Key and Roots", ErrConfig)
	}
	if v.MaxEntries < 0 {
		return fmt.Errorf("%w: negative MaxEntries", ErrConfig)
	}
	if limit := byteLen(8, v.maxEntries())*4/3 + 1<<16; size > limit {
		return fmt.Errorf("%w: token of %d bytes exceeds %d", ErrTooLarge, size, limit)
	}
	return nil
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// key returns the key to verify with: Key, or the leaf of the chain x5c
// (DER certificates, leaf first) once the chain is verified to Roots.
func (v *Verifier) key(x5c [][]byte) (*ecdsa.PublicKey, []*x509.Certificate, error) {
	if v.Key != nil {
		pub, ok := v.Key.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			return nil, nil, fmt.Errorf("%w: verifier key is not P-256", ErrConfig)
		}
		return pub, nil, nil
	}
	if len(x5c) == 0 {
		return nil, nil, fmt.Errorf("%w: no certificate chain in the token", ErrChain)
	}
	certs := make([]*x509.Certificate, len(x5c))
	for i, der := range x5c {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: certificate %d: %w", ErrChain, i, err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         v.Roots,
		Intermediates: inter,
		CurrentTime:   v.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrChain, err)
	}
	pub, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, nil, fmt.Errorf("%w: leaf key is not P-256", ErrAlg)
	}
	return pub, chains[0], nil
}

// finish checks the claims of a token whose signature verified.
func (v *Verifier) finish(t *Token, uri string, chain []*x509.Certificate, kid string) (*Verified, error) {
	if uri == "" || t.Subject != uri {
		return nil, fmt.Errorf("%w: sub %q, uri %q", ErrSubject, t.Subject, uri)
	}
	now := v.now()
	if t.IssuedAt.After(now.Add(v.Leeway)) {
		return nil, fmt.Errorf("%w: iat %v", ErrNotYetValid, t.IssuedAt)
	}
	if !t.Expiry.IsZero() && !now.Before(t.Expiry.Add(v.Leeway)) {
		return nil, fmt.Errorf("%w: exp %v", ErrExpired, t.Expiry)
	}
	list, err := Decode(t.Bits, t.Lst, v.maxEntries())
	if err != nil {
		return nil, err
	}
	return &Verified{Token: *t, List: list, Chain: chain, KeyID: kid}, nil
}

// secondsDuration converts a checked ttl claim.
func secondsDuration(s int64) time.Duration {
	if s > int64(1<<62/time.Second) {
		return 1 << 62
	}
	return time.Duration(s) * time.Second
}
