package attest

import (
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"
	"net/url"
	"time"
)

// Key attestation typ values (OpenID4VCI 1.0 Appendix D.1). The legacy
// spelling is read only when KeyAttestationOptions.AcceptLegacyTyp is set;
// it is never written.
const (
	TypKeyAttestation       = "key-attestation+jwt"
	TypKeyAttestationLegacy = "keyattestation+jwt"
)

// MinKeyStorageStatusPeriod is the least time between a key attestation's
// iat and its key_storage_status.exp (EUDI TS3 v1.5: the Wallet Provider
// keeps the status current for at least 31 days).
const MinKeyStorageStatusPeriod = 31 * 24 * time.Hour

// KeyAttestationClaims is the claims set of a key attestation.
type KeyAttestationClaims struct {
	IssuedAt           NumericDate  `json:"iat"`
	Expiry             NumericDate  `json:"exp"`
	AttestedKeys       []JWK        `json:"attested_keys"`
	KeyStorage         []string     `json:"key_storage,omitempty"`
	UserAuthentication []string     `json:"user_authentication,omitempty"`
	Certification      string       `json:"certification,omitempty"`
	Nonce              string       `json:"nonce,omitempty"`
	CNonce             string       `json:"c_nonce,omitempty"`
	KeyStorageStatus   *statusClaim `json:"key_storage_status,omitempty"`
}

// KeyAttestationInput is what a key attestation states.
type KeyAttestationInput struct {
	// Keys are the attested keys, P-256, distinct; the first is the one a
	// wallet signs an OpenID4VCI jwt proof with (TS3 v1.5).
	Keys []*ecdsa.PublicKey
	// Assurance is the configured assurance; key_storage and
	// user_authentication follow from it (KeyAssurance.claims).
	Assurance KeyAssurance
	// Certification is an optional URL describing the certification.
	Certification string
	// Nonce, when set, is emitted as nonce and as c_nonce (issuers still
	// reading c_nonce exist).
	Nonce string
	// Status is the unit's Token Status List entry (key_storage_status).
	Status StatusRef
	// StatusExpiry is key_storage_status.exp: at least
	// MinKeyStorageStatusPeriod after iat, not before exp. Zero means iat +
	// MinKeyStorageStatusPeriod.
	StatusExpiry time.Time
	// Lifetime is exp - iat; positive.
	Lifetime time.Duration
}

// KeyAttestation builds and signs a key attestation.
func (i *Issuer) KeyAttestation(in KeyAttestationInput) (string, error) {
	keys, err := attestedKeys(in.Keys, 1)
	if err != nil {
		return "", err
	}
	keyStorage, userAuth, err := in.Assurance.claims()
	if err != nil {
		return "", err
	}
	if in.Certification != "" {
		if u, err := url.Parse(in.Certification); err != nil || !u.IsAbs() {
			return "", fmt.Errorf("%w: certification is not an absolute URL", ErrInput)
		}
	}
	if in.Lifetime <= 0 {
		return "", fmt.Errorf("%w: lifetime not positive", ErrLifetime)
	}
	now := i.now().Truncate(time.Second)
	exp := now.Add(in.Lifetime)
	statusExp := in.StatusExpiry
	if statusExp.IsZero() {
		statusExp = now.Add(MinKeyStorageStatusPeriod)
	}
	if statusExp.Sub(now) < MinKeyStorageStatusPeriod {
		return "", fmt.Errorf("%w: key_storage_status.exp less than 31 days after iat", ErrLifetime)
	}
	if statusExp.Before(exp) {
		return "", fmt.Errorf("%w: key_storage_status.exp before exp", ErrLifetime)
	}
	status, err := newStatus(in.Status, statusExp)
	if err != nil {
		return "", err
	}
	claims := KeyAttestationClaims{
		IssuedAt:           NumericDate(now.Unix()),
		Expiry:             NumericDate(exp.Unix()),
		AttestedKeys:       keys,
		KeyStorage:         keyStorage,
		UserAuthentication: userAuth,
		Certification:      in.Certification,
		Nonce:              in.Nonce,
		CNonce:             in.Nonce,
		KeyStorageStatus:   status,
	}
	return i.sign(TypKeyAttestation, claims)
}

// KeyAttestationOptions tunes VerifyKeyAttestation.
type KeyAttestationOptions struct {
	// Nonce is the c_nonce the verifier issued; when set, nonce must equal
	// it (and c_nonce too, when present). When empty, any nonce passes.
	Nonce string
	// AcceptLegacyTyp accepts typ "keyattestation+jwt" (input only).
	AcceptLegacyTyp bool
	// StatusOptional accepts a key attestation without key_storage_status
	// (pre-TS3 v1.5 providers); when present it is checked all the same.
	StatusOptional bool
}

// KeyAttestation is a verified key attestation.
type KeyAttestation struct {
	Claims    KeyAttestationClaims
	Keys      []AttestedKey // attested_keys, in order
	Status    *StatusRef    // nil only under StatusOptional
	StatusExp time.Time
	Chain     []*x509.Certificate
	Legacy    bool // typ was keyattestation+jwt
}

// VerifyKeyAttestation verifies a key attestation: verifySigned's header
// and signature checks, iat and exp present and current, a nonce matching
// opts.Nonce (and nonce = c_nonce whenever both are present), attested
// keys that are public P-256 keys without repeats, key_storage_status with
// a status_list reference and an exp at least 31 days after iat.
func (v *Verifier) VerifyKeyAttestation(token string, opts KeyAttestationOptions) (*KeyAttestation, error) {
	typs := []string{TypKeyAttestation}
	if opts.AcceptLegacyTyp {
		typs = append(typs, TypKeyAttestationLegacy)
	}
	now := v.now()
	s, err := v.verifySigned(token, now, typs...)
	if err != nil {
		return nil, err
	}
	var c KeyAttestationClaims
	if err := s.claims(&c); err != nil {
		return nil, err
	}
	if err := v.checkTimes(now, c.IssuedAt, c.Expiry, 0); err != nil {
		return nil, err
	}
	if c.Nonce != "" && c.CNonce != "" && c.Nonce != c.CNonce {
		return nil, fmt.Errorf("%w: nonce and c_nonce differ", ErrNonce)
	}
	if opts.Nonce != "" && c.Nonce != opts.Nonce {
		return nil, ErrNonce
	}
	keys, err := readKeys(c.AttestedKeys, 1)
	if err != nil {
		return nil, err
	}
	ka := &KeyAttestation{Claims: c, Keys: keys, Chain: s.chain, Legacy: s.header.Typ == TypKeyAttestationLegacy}
	if c.KeyStorageStatus == nil && opts.StatusOptional {
		return ka, nil
	}
	ref, exp, err := c.KeyStorageStatus.check()
	if err != nil {
		return nil, err
	}
	if int64(exp.Unix())-int64(c.IssuedAt) < int64(MinKeyStorageStatusPeriod/time.Second) {
		return nil, fmt.Errorf("%w: key_storage_status.exp less than 31 days after iat", ErrLifetime)
	}
	ka.Status, ka.StatusExp = &ref, exp
	return ka, nil
}
