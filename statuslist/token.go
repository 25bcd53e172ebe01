package statuslist

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"time"
)

// Media types and the JWT typ of status list tokens (draft §5, §8).
const (
	MediaTypeJWT = "application/statuslist+jwt"
	MediaTypeCWT = "application/statuslist+cwt"
	// TypJWT is the JWT header typ, exactly.
	TypJWT = "statuslist+jwt"
	// TypCWT is the COSE protected header type (label 16), exactly.
	TypCWT = MediaTypeCWT
)

// cwtStatusClaim is the CWT claim key of status in a referenced token
// (draft §6.3; requested assignment). The status list token's claims are
// keyed in the struct tags of cwt.go.
const cwtStatusClaim = 65535

// Errors of issuing and verifying tokens. Callers test them with errors.Is.
var (
	// ErrMalformed means a token that does not parse as a JWS compact
	// serialization or a COSE_Sign1_Tagged message.
	ErrMalformed = errors.New("statuslist: malformed token")
	// ErrType means a typ other than statuslist+jwt or
	// application/statuslist+cwt.
	ErrType = errors.New("statuslist: wrong token type")
	// ErrAlg means an algorithm other than ES256, or a key that is not P-256.
	ErrAlg = errors.New("statuslist: algorithm not ES256")
	// ErrSignature means a signature that does not verify.
	ErrSignature = errors.New("statuslist: bad signature")
	// ErrChain means a missing or untrusted x5c / x5chain.
	ErrChain = errors.New("statuslist: certificate chain not trusted")
	// ErrClaims means a required claim is missing or malformed.
	ErrClaims = errors.New("statuslist: bad claims")
	// ErrExpired means exp is in the past.
	ErrExpired = errors.New("statuslist: token expired")
	// ErrNotYetValid means iat is in the future.
	ErrNotYetValid = errors.New("statuslist: token issued in the future")
	// ErrSubject means sub differs from the URI the referenced token gave.
	ErrSubject = errors.New("statuslist: subject does not match the status list uri")
	// ErrConfig means a signer or verifier set up wrongly.
	ErrConfig = errors.New("statuslist: bad configuration")
)

// Token is the content of a status list token.
type Token struct {
	// Subject is the URI of the list, equal to the uri referenced tokens
	// carry (draft §5.1).
	Subject string
	// IssuedAt is required; Expiry and TTL are optional (zero: absent).
	// Times have a resolution of one second.
	IssuedAt, Expiry time.Time
	TTL              time.Duration
	// Bits is the number of bits per entry; Lst is the compressed list
	// ([List.Encode]).
	Bits int
	Lst  []byte
}

func (t *Token) check() error {
	switch {
	case t.Subject == "":
		return fmt.Errorf("%w: empty subject", ErrClaims)
	case t.IssuedAt.Unix() <= 0:
		return fmt.Errorf("%w: issued at %v", ErrClaims, t.IssuedAt)
	case !t.Expiry.IsZero() && !t.Expiry.After(t.IssuedAt):
		return fmt.Errorf("%w: expiry not after issuance", ErrClaims)
	case t.TTL < 0 || (t.TTL > 0 && t.TTL < time.Second):
		return fmt.Errorf("%w: ttl %v", ErrClaims, t.TTL)
	case !validBits(t.Bits):
		return fmt.Errorf("%w: %d", ErrBits, t.Bits)
	case len(t.Lst) == 0:
		return fmt.Errorf("%w: empty lst", ErrClaims)
	}
	return nil
}

// SignOptions says how a token names its key. Give Chain (x5c / x5chain,
// leaf first, without the trust anchor), KeyID, or both.
type SignOptions struct {
	Chain []*x509.Certificate
	KeyID string
}

// Check reports whether key and o can sign tokens: key is a P-256 signer,
// o names it by a chain whose leaf certifies it, by a key id, or both.
func (o *SignOptions) Check(key crypto.Signer) error {
	if key == nil {
		return fmt.Errorf("%w: no signer", ErrConfig)
	}
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return fmt.Errorf("%w: signer is not a P-256 key", ErrAlg)
	}
	if len(o.Chain) == 0 && o.KeyID == "" {
		return fmt.Errorf("%w: neither a certificate chain nor a key id", ErrConfig)
	}
	if len(o.Chain) > 0 {
		leaf, ok := o.Chain[0].PublicKey.(*ecdsa.PublicKey)
		if !ok || !leaf.Equal(pub) {
			return fmt.Errorf("%w: the chain's leaf does not certify the signer", ErrConfig)
		}
	}
	return nil
}

// ttlSeconds returns the ttl claim, 0 when absent.
func (t *Token) ttlSeconds() int64 { return int64(t.TTL / time.Second) }

// fromUnix converts a NumericDate in whole seconds.
func fromUnix(s int64) time.Time { return time.Unix(s, 0).UTC() }

// checkSeconds refuses NumericDates beyond what time.Time and JSON
// integers represent exactly.
func checkSeconds(what string, v int64) error {
	if v <= 0 || v > 1<<53 || v == math.MaxInt64 {
		return fmt.Errorf("%w: %s %d out of range", ErrClaims, what, v)
	}
	return nil
}
