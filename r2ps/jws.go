package r2ps

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"

	"github.com/wsca/wsca/ecp256"
)

// es256SigSize is the size of an ES256 signature, R || S (RFC 7518 §3.4).
const es256SigSize = 64

// JWSHeader is the protected header of a verified JWS (§4.2).
type JWSHeader struct {
	Alg string // always ES256
	Typ string // r2ps-request+jwt or r2ps-response+jwt, as the caller required
	KID string // the signing key: the CSK in a request, the SSK in a response
	// JWK is the embedded public key (RFC 7515 §4.1.3), nil when absent: a
	// P-256 key with only kty, crv, x and y. Only 2fa_registration may trust
	// it (docs/protocol.md §5); every other type takes the key registered for
	// the unit.
	JWK *jose.JSONWebKey
}

// jwsHeader is the wire form: decodeStrict refuses any other member (crit,
// b64, x5c, jku, …).
type jwsHeader struct {
	Alg string          `json:"alg"`
	Typ string          `json:"typ"`
	KID string          `json:"kid"`
	JWK json.RawMessage `json:"jwk"`
}

// FixedJWSHeader signs compact ES256 JWS under one fixed protected header
// {alg: ES256, kid, typ}, encoded once: what a server signs all its
// responses with. Its output is the JWS [SignJWS] makes (the same header
// bytes, members in go-jose's order), without go-jose and its JSON
// round trips on every message.
type FixedJWSHeader struct {
	prefix string // BASE64URL(UTF8(header)) "."
}

// NewFixedJWSHeader encodes the protected header {alg: ES256, kid, typ}.
func NewFixedJWSHeader(typ, kid string) (FixedJWSHeader, error) {
	if typ == "" {
		return FixedJWSHeader{}, errors.New("r2ps: JWS typ is empty")
	}
	if err := checkName(ErrMalformed, "kid", kid); err != nil {
		return FixedJWSHeader{}, err
	}
	// Members in the order go-jose writes them (sorted), and encoding/json's
	// escaping, which is go-jose's too.
	hdr, err := json.Marshal(struct {
		Alg string `json:"alg"`
		KID string `json:"kid"`
		Typ string `json:"typ"`
	}{AlgES256, kid, typ})
	if err != nil {
		return FixedJWSHeader{}, fmt.Errorf("r2ps: internal error: %w", err)
	}
	return FixedJWSHeader{prefix: b64url(hdr) + "."}, nil
}

// Sign signs payload as a compact JWS under the header with signer, any
// crypto.Signer with a P-256 public key (an HSM-backed one included): the
// SHA-256 of the signing input is signed, and the ASN.1 signature is
// turned into R || S (RFC 7518 §3.4).
func (h FixedJWSHeader) Sign(payload []byte, signer crypto.Signer) ([]byte, error) {
	if h.prefix == "" {
		return nil, errors.New("r2ps: JWS header not set")
	}
	if signer == nil {
		return nil, errors.New("r2ps: no signer")
	}
	if pub, ok := signer.Public().(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("r2ps: signer is not a P-256 ECDSA key")
	}
	enc := base64.RawURLEncoding
	out := make([]byte, 0, len(h.prefix)+enc.EncodedLen(len(payload))+1+enc.EncodedLen(es256SigSize))
	out = append(out, h.prefix...)
	out = enc.AppendEncode(out, payload)
	digest := sha256.Sum256(out)
	der, err := signer.Sign(cryptorand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("r2ps: sign: %w", err)
	}
	sig, err := ecp256.DERToRaw(der)
	if err != nil {
		return nil, fmt.Errorf("r2ps: sign: %w", err)
	}
	out = append(out, '.')
	return enc.AppendEncode(out, sig), nil
}

// readFlat reads a header of plain string members (flatObject), each
// member at most once and each one jwsHeader names, without encoding/json;
// it reports false for any other header, which decodeStrict then reads
// (and refuses, if it breaks a rule).
func (w *jwsHeader) readFlat(raw []byte) bool {
	var m [3]flatMember
	n, ok := flatObject(raw, m[:])
	if !ok {
		return false
	}
	var seen [3]bool
	for _, f := range m[:n] {
		var i int
		var dst *string
		switch string(f.name) {
		case "alg":
			i, dst = 0, &w.Alg
		case "kid":
			i, dst = 1, &w.KID
		case "typ":
			i, dst = 2, &w.Typ
		default:
			return false
		}
		if seen[i] {
			return false
		}
		seen[i] = true
		*dst = string(f.value)
	}
	return true
}

// SignJWS signs payload as a compact ES256 JWS (§4.2) with the protected
// header {alg, jwk?, kid, typ}. signer is any crypto.Signer with a P-256
// public key, an HSM-backed one included. When extraHeaderJWK is not nil
// its public part is embedded as the jwk member (the self-signed
// registration requests of docs/protocol.md §5), through go-jose;
// otherwise it is [FixedJWSHeader.Sign].
func SignJWS(payload []byte, typ, kid string, signer crypto.Signer, extraHeaderJWK *jose.JSONWebKey) ([]byte, error) {
	if signer == nil {
		return nil, errors.New("r2ps: no signer")
	}
	if pub, ok := signer.Public().(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("r2ps: signer is not a P-256 ECDSA key")
	}
	if typ == "" {
		return nil, errors.New("r2ps: JWS typ is empty")
	}
	if err := checkName(ErrMalformed, "kid", kid); err != nil {
		return nil, err
	}
	if extraHeaderJWK == nil {
		h, err := NewFixedJWSHeader(typ, kid)
		if err != nil {
			return nil, err
		}
		return h.Sign(payload, signer)
	}
	pub, err := p256Public(extraHeaderJWK)
	if err != nil {
		return nil, fmt.Errorf("r2ps: jwk header: %w", err)
	}
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", kid).
		WithHeader("jwk", &jose.JSONWebKey{Key: pub})
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: cryptosigner.Opaque(signer)}, opts)
	if err != nil {
		return nil, fmt.Errorf("r2ps: %w", err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("r2ps: sign: %w", err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("r2ps: %w", err)
	}
	return []byte(out), nil
}

// VerifyJWS verifies a compact JWS and returns its payload. Only ES256 with
// a P-256 key is accepted: alg none, HMAC, RSA, other curves and unknown
// header members (crit, b64, …) are refused with [ErrHeader] before key is
// called. typ must equal wantTyp exactly, and kid must be present. key
// receives the kid and the embedded jwk (nil when absent) and returns the
// verification key, or an error that VerifyJWS wraps as it is
// ([ErrUnknownKey] when the kid is not registered).
func VerifyJWS(compact []byte, wantTyp string, key func(kid string, embedded *jose.JSONWebKey) (*ecdsa.PublicKey, error)) ([]byte, JWSHeader, error) {
	return verifyJWS(compact, wantTyp, false, key)
}

// VerifyJWSCompat is VerifyJWS for the compat profile, whose clients
// (go-r2ps-service pkg/client) send no kid: an absent kid reaches key as
// "". A kid that is present is still checked.
func VerifyJWSCompat(compact []byte, wantTyp string, key func(kid string, embedded *jose.JSONWebKey) (*ecdsa.PublicKey, error)) ([]byte, JWSHeader, error) {
	return verifyJWS(compact, wantTyp, true, key)
}

func verifyJWS(compact []byte, wantTyp string, kidOptional bool, key func(kid string, embedded *jose.JSONWebKey) (*ecdsa.PublicKey, error)) ([]byte, JWSHeader, error) {
	var hdr JWSHeader
	var parts [3][]byte
	if err := splitCompact(compact, parts[:], "JWS"); err != nil {
		return nil, hdr, err
	}
	raw, err := decodeB64URL(parts[0])
	if err != nil || len(raw) == 0 {
		return nil, hdr, errorf(ErrMalformed, "JWS protected header: not base64url")
	}
	var w jwsHeader
	if !w.readFlat(raw) {
		w = jwsHeader{}
		if err := decodeStrict(raw, &w, ErrHeader); err != nil {
			return nil, hdr, err
		}
	}
	if w.Alg != AlgES256 {
		return nil, hdr, errorf(ErrHeader, "alg %q, want %s", w.Alg, AlgES256)
	}
	if w.Typ != wantTyp {
		return nil, hdr, errorf(ErrHeader, "typ %q, want %q", w.Typ, wantTyp)
	}
	if !(kidOptional && w.KID == "" && w.JWK == nil) {
		if err := checkName(ErrHeader, "kid", w.KID); err != nil {
			return nil, hdr, err
		}
	}
	if w.JWK != nil {
		pub, err := parseSigningJWK(w.JWK)
		if err != nil {
			return nil, hdr, err
		}
		hdr.JWK = &jose.JSONWebKey{Key: toECDSA(pub)}
	}
	sig, err := decodeB64URL(parts[2])
	if err != nil || len(sig) != es256SigSize {
		return nil, hdr, errorf(ErrSignature, "want %d bytes of base64url R || S", es256SigSize)
	}
	pub, err := key(w.KID, hdr.JWK)
	if err != nil {
		return nil, hdr, fmt.Errorf("r2ps: signing key: %w", err)
	}
	if pub == nil || pub.Curve != elliptic.P256() {
		return nil, hdr, errors.New("r2ps: key function returned no P-256 key")
	}
	// The signing input is ASCII(header) '.' ASCII(payload) as received
	// (RFC 7515 §5.2 step 8), so the signature is checked before the
	// payload is decoded: an unsigned payload costs a hash, not a decode.
	digest := sha256.Sum256(compact[:len(parts[0])+1+len(parts[1])])
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		return nil, hdr, ErrSignature
	}
	payload, err := decodeB64URL(parts[1])
	if err != nil {
		return nil, hdr, errorf(ErrMalformed, "JWS payload: not base64url")
	}
	hdr.Alg, hdr.Typ, hdr.KID = w.Alg, w.Typ, w.KID
	return payload, hdr, nil
}

// Thumbprint returns the RFC 7638 JWK thumbprint (SHA-256, base64url) of a
// P-256 public key, the kid of every key in this profile (docs/protocol.md
// §1, §3). It returns "" for nil or any other key; no decoder accepts an
// empty kid, so "" matches nothing.
func Thumbprint(pub *ecdsa.PublicKey) string {
	if pub == nil || pub.Curve != elliptic.P256() {
		return ""
	}
	pt, err := pub.Bytes() // 0x04 ‖ X ‖ Y, 32 bytes each; an error for a point off the curve
	if err != nil || len(pt) != 65 {
		return ""
	}
	// The required members in lexicographic order, no white space
	// (RFC 7638 §3.2), the coordinates at their full length (RFC 7518
	// §6.2.1.2).
	enc := base64.RawURLEncoding
	b := make([]byte, 0, 128)
	b = append(b, `{"crv":"P-256","kty":"EC","x":"`...)
	b = enc.AppendEncode(b, pt[1:33])
	b = append(b, `","y":"`...)
	b = enc.AppendEncode(b, pt[33:])
	b = append(b, `"}`...)
	sum := sha256.Sum256(b)
	return b64url(sum[:])
}
