package attest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"time"
)

// Wallet instance attestation typ values
// (draft-ietf-oauth-attestation-based-client-auth-11 §5).
const (
	TypClientAttestation    = "oauth-client-attestation+jwt"
	TypClientAttestationPoP = "oauth-client-attestation-pop+jwt"
)

// MaxWalletAttestationLifetime bounds exp - iat of a wallet instance
// attestation (EUDI TS3 v1.5 §2.2.1).
const MaxWalletAttestationLifetime = 24 * time.Hour

// WalletAttestationClaims is the claims set of a wallet instance
// attestation.
type WalletAttestationClaims struct {
	Issuer                                 string          `json:"iss,omitempty"`
	Subject                                string          `json:"sub"`
	IssuedAt                               NumericDate     `json:"iat"`
	Expiry                                 NumericDate     `json:"exp"`
	NotBefore                              NumericDate     `json:"nbf,omitempty"`
	Confirmation                           *confirmation   `json:"cnf"`
	WalletName                             string          `json:"wallet_name,omitempty"`
	WalletLink                             string          `json:"wallet_link,omitempty"`
	WalletVersion                          string          `json:"wallet_version,omitempty"`
	WalletSolutionCertificationInformation json.RawMessage `json:"wallet_solution_certification_information,omitempty"`
	ClientStatus                           *statusClaim    `json:"client_status,omitempty"`
}

// confirmation is cnf (RFC 7800) with a jwk.
type confirmation struct {
	JWK *JWK `json:"jwk"`
}

type confirmationMembers confirmation

// UnmarshalJSON implements json.Unmarshaler under decodeObject's rules.
func (c *confirmation) UnmarshalJSON(b []byte) error {
	return decodeObject(b, (*confirmationMembers)(c))
}

// WalletAttestationInput is what a wallet instance attestation states.
type WalletAttestationInput struct {
	// Subject is sub: the wallet solution's client_id, shared by all its
	// instances (OpenID4VCI §"Wallet Attestation Subject"). Required.
	Subject string
	// Issuer is iss. TS3 v1.5 and ABCA -08+ drop it; @openid4vc/oauth2
	// 0.4.6 and the OIDF suite still require it. Empty: no iss.
	Issuer string
	// Key is the wallet instance key, sent as cnf.jwk. Required.
	Key *ecdsa.PublicKey
	// WalletName, WalletLink (URL) and WalletVersion are required by TS3.
	WalletName, WalletLink, WalletVersion string
	// CertificationInformation is the optional
	// wallet_solution_certification_information: a JSON value (TS3 leaves
	// its content open: object or string).
	CertificationInformation json.RawMessage
	// Status is the unit's Token Status List entry (client_status).
	Status StatusRef
	// StatusExpiry is client_status.exp, not before exp: revocation of
	// this attestation keeps working until then. Zero means exp.
	StatusExpiry time.Time
	// Lifetime is exp - iat: positive, at most 24 h.
	Lifetime time.Duration
}

// WalletAttestation builds and signs a wallet instance attestation.
func (i *Issuer) WalletAttestation(in WalletAttestationInput) (string, error) {
	if in.Subject == "" {
		return "", fmt.Errorf("%w: no sub", ErrInput)
	}
	if in.WalletName == "" || in.WalletVersion == "" {
		return "", fmt.Errorf("%w: wallet_name and wallet_version are required", ErrInput)
	}
	if u, err := url.Parse(in.WalletLink); err != nil || !u.IsAbs() {
		return "", fmt.Errorf("%w: wallet_link is not an absolute URL", ErrInput)
	}
	if in.CertificationInformation != nil && !json.Valid(in.CertificationInformation) {
		return "", fmt.Errorf("%w: wallet_solution_certification_information is not JSON", ErrInput)
	}
	jwk, err := NewJWK(in.Key)
	if err != nil {
		return "", err
	}
	if in.Lifetime <= 0 || in.Lifetime > MaxWalletAttestationLifetime {
		return "", fmt.Errorf("%w: lifetime %v not in (0, 24h]", ErrLifetime, in.Lifetime)
	}
	now := i.now().Truncate(time.Second)
	exp := now.Add(in.Lifetime)
	statusExp := in.StatusExpiry
	if statusExp.IsZero() {
		statusExp = exp
	}
	if statusExp.Before(exp) {
		return "", fmt.Errorf("%w: client_status.exp before exp", ErrLifetime)
	}
	status, err := newStatus(in.Status, statusExp)
	if err != nil {
		return "", err
	}
	claims := WalletAttestationClaims{
		Issuer:                                 in.Issuer,
		Subject:                                in.Subject,
		IssuedAt:                               NumericDate(now.Unix()),
		Expiry:                                 NumericDate(exp.Unix()),
		Confirmation:                           &confirmation{JWK: &jwk},
		WalletName:                             in.WalletName,
		WalletLink:                             in.WalletLink,
		WalletVersion:                          in.WalletVersion,
		WalletSolutionCertificationInformation: in.CertificationInformation,
		ClientStatus:                           status,
	}
	return i.sign(TypClientAttestation, claims)
}

// WalletAttestationOptions tunes VerifyWalletAttestation.
type WalletAttestationOptions struct {
	// Subject, when set, is the expected sub (the client_id).
	Subject string
	// Issuer, when set, makes iss required and equal to it (the OIDF
	// suite's ValidateClientAttestationIssuer). When empty, iss is not
	// required and not checked.
	Issuer string
	// StatusOptional accepts an attestation without client_status.
	StatusOptional bool
}

// WalletAttestation is a verified wallet instance attestation.
type WalletAttestation struct {
	Claims    WalletAttestationClaims
	Key       AttestedKey // cnf.jwk
	Status    *StatusRef  // nil only under StatusOptional
	StatusExp time.Time
	Chain     []*x509.Certificate
}

// VerifyWalletAttestation verifies a wallet instance attestation:
// verifySigned's checks with typ oauth-client-attestation+jwt, iat and
// exp present and current with exp - iat at most 24 h, nbf (if any) not in
// the future, sub present (and expected), iss as opts require, cnf.jwk a
// public P-256 key, client_status well formed with exp not before exp.
func (v *Verifier) VerifyWalletAttestation(token string, opts WalletAttestationOptions) (*WalletAttestation, error) {
	now := v.now()
	s, err := v.verifySigned(token, now, TypClientAttestation)
	if err != nil {
		return nil, err
	}
	var c WalletAttestationClaims
	if err := s.claims(&c); err != nil {
		return nil, err
	}
	if err := v.checkTimes(now, c.IssuedAt, c.Expiry, c.NotBefore); err != nil {
		return nil, err
	}
	if int64(c.Expiry)-int64(c.IssuedAt) > int64(MaxWalletAttestationLifetime/time.Second) {
		return nil, fmt.Errorf("%w: exp - iat over 24 h", ErrLifetime)
	}
	if c.Subject == "" || opts.Subject != "" && c.Subject != opts.Subject {
		return nil, ErrSubject
	}
	if opts.Issuer != "" && c.Issuer != opts.Issuer {
		return nil, ErrIssuer
	}
	if c.Confirmation == nil || c.Confirmation.JWK == nil {
		return nil, fmt.Errorf("%w: no cnf.jwk", ErrKey)
	}
	keys, err := readKeys([]JWK{*c.Confirmation.JWK}, 1)
	if err != nil {
		return nil, err
	}
	wa := &WalletAttestation{Claims: c, Key: keys[0], Chain: s.chain}
	if c.ClientStatus == nil && opts.StatusOptional {
		return wa, nil
	}
	ref, exp, err := c.ClientStatus.check()
	if err != nil {
		return nil, err
	}
	if exp.Unix() < int64(c.Expiry) {
		return nil, fmt.Errorf("%w: client_status.exp before exp", ErrLifetime)
	}
	wa.Status, wa.StatusExp = &ref, exp
	return wa, nil
}

// PoPClaims is the claims set of a client attestation PoP.
type PoPClaims struct {
	Issuer    string      `json:"iss,omitempty"`
	Audience  audience    `json:"aud"`
	JWTID     string      `json:"jti"`
	IssuedAt  NumericDate `json:"iat"`
	Expiry    NumericDate `json:"exp,omitempty"`
	Challenge string      `json:"challenge,omitempty"`
	Nonce     string      `json:"nonce,omitempty"`
}

// audience is aud: one string (emitted so) or an array of strings.
type audience []string

// MarshalJSON implements json.Marshaler: one audience as a string.
func (a audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON implements json.Unmarshaler.
func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = audience{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("aud is neither a string nor strings")
	}
	*a = list
	return nil
}

// PoPInput is what a client attestation PoP states.
type PoPInput struct {
	// Audience is aud: the authorization server's issuer identifier.
	Audience string
	// Challenge is the optional server-provided challenge.
	Challenge string
	// ClientID, when set, is sent as iss: ABCA -11 has no iss in the PoP,
	// @openid4vc/oauth2 0.4.6 requires it equal to the attestation's sub.
	ClientID string
	// Lifetime, when positive, adds exp = iat + Lifetime (0.4.6 requires
	// exp; ABCA -11 does not define it).
	Lifetime time.Duration
	// Now is the clock (time.Now when nil); Rand the source of jti
	// (crypto/rand when nil).
	Now  func() time.Time
	Rand io.Reader
}

// jtiSize is the random bytes in a PoP jti.
const jtiSize = 16

// NewClientAttestationPoP builds a client attestation PoP signed by key,
// the private key of the attestation's cnf.jwk (a WSCD key through a
// crypto.Signer on the wallet side).
func NewClientAttestationPoP(key crypto.Signer, in PoPInput) (string, error) {
	if key == nil {
		return "", fmt.Errorf("%w: no key", ErrInput)
	}
	if in.Audience == "" {
		return "", fmt.Errorf("%w: no aud", ErrInput)
	}
	if in.Lifetime < 0 {
		return "", fmt.Errorf("%w: negative lifetime", ErrLifetime)
	}
	now, rnd := in.Now, in.Rand
	if now == nil {
		now = time.Now
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	jti := make([]byte, jtiSize)
	if _, err := io.ReadFull(rnd, jti); err != nil {
		return "", fmt.Errorf("attest: jti: %w", err)
	}
	t := now().Truncate(time.Second)
	claims := PoPClaims{
		Issuer:    in.ClientID,
		Audience:  audience{in.Audience},
		JWTID:     b64.EncodeToString(jti),
		IssuedAt:  NumericDate(t.Unix()),
		Challenge: in.Challenge,
	}
	if in.Lifetime > 0 {
		claims.Expiry = NumericDate(t.Add(in.Lifetime).Unix())
	}
	return signCompact(key, TypClientAttestationPoP, nil, claims)
}

// SeenSet records PoP jti values for replay detection; the verifier's
// store implements it (atomically, shared by all instances).
type SeenSet interface {
	// Add records id until the time given and reports whether it was new:
	// false when id is already recorded (a replay).
	Add(ctx context.Context, id string, until time.Time) (bool, error)
}

// DefaultPoPMaxAge is how old a PoP's iat may be.
const DefaultPoPMaxAge = 5 * time.Minute

// PoPOptions tunes VerifyClientAttestationPoP.
type PoPOptions struct {
	// Audience is the verifier's issuer identifier; aud must contain it.
	// Required.
	Audience string
	// Challenge, when set, must equal challenge (or nonce, its pre-ABCA-10
	// name).
	Challenge string
	// MaxAge bounds now - iat (DefaultPoPMaxAge when 0).
	MaxAge time.Duration
	// Seen detects jti reuse. Required.
	Seen SeenSet
}

// PoP is a verified client attestation PoP.
type PoP struct {
	Claims PoPClaims
}

// VerifyClientAttestationPoP verifies a PoP against the verified wallet
// attestation wa: typ oauth-client-attestation-pop+jwt, alg ES256,
// signature by wa's cnf.jwk, iss (when present) equal to wa's sub, aud
// containing opts.Audience, iat present and within MaxAge (and skew), exp
// (when present) not past, challenge as expected, and a jti not seen
// before (recorded until iat + MaxAge, beyond which iat refuses it).
func (v *Verifier) VerifyClientAttestationPoP(ctx context.Context, token string, wa *WalletAttestation, opts PoPOptions) (*PoP, error) {
	if wa == nil || opts.Seen == nil || opts.Audience == "" {
		return nil, fmt.Errorf("%w: PoP verification needs an attestation, an audience and a seen set", ErrInput)
	}
	maxAge := opts.MaxAge
	if maxAge <= 0 {
		maxAge = DefaultPoPMaxAge
	}
	c, err := parseCompact(token)
	if err != nil {
		return nil, err
	}
	if c.header.Typ != TypClientAttestationPoP {
		return nil, fmt.Errorf("%w: %q", ErrTyp, c.header.Typ)
	}
	if c.header.Alg != algES256 {
		return nil, fmt.Errorf("%w: %q", ErrAlg, c.header.Alg)
	}
	if err := c.verifyES256(wa.Key.Public); err != nil {
		return nil, err
	}
	var p PoPClaims
	if err := c.claims(&p); err != nil {
		return nil, err
	}
	if p.Issuer != "" && p.Issuer != wa.Claims.Subject {
		return nil, fmt.Errorf("%w: PoP iss is not the attestation's sub", ErrSubject)
	}
	if !slices.Contains(p.Audience, opts.Audience) {
		return nil, ErrAudience
	}
	now := v.now()
	skew := int64(v.skew / time.Second)
	n := now.Unix()
	switch {
	case p.IssuedAt == 0:
		return nil, fmt.Errorf("%w: no iat", ErrTime)
	case int64(p.IssuedAt) > n+skew:
		return nil, fmt.Errorf("%w: iat in the future", ErrTime)
	case int64(p.IssuedAt) < n-int64(maxAge/time.Second)-skew:
		return nil, fmt.Errorf("%w: iat too old", ErrTime)
	case p.Expiry != 0 && int64(p.Expiry) < n-skew:
		return nil, fmt.Errorf("%w: expired", ErrTime)
	}
	if opts.Challenge != "" && p.Challenge != opts.Challenge && p.Nonce != opts.Challenge {
		return nil, ErrNonce
	}
	if p.JWTID == "" {
		return nil, fmt.Errorf("%w: no jti", ErrReplay)
	}
	until := time.Unix(int64(p.IssuedAt), 0).Add(maxAge + v.skew)
	fresh, err := opts.Seen.Add(ctx, p.JWTID, until)
	if err != nil {
		return nil, fmt.Errorf("attest: jti store: %w", err)
	}
	if !fresh {
		return nil, ErrReplay
	}
	return &PoP{Claims: p}, nil
}
