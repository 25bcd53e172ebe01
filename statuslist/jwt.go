package statuslist

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
)

// anyAlgorithm lists every JWS algorithm go-jose parses.
var anyAlgorithm = []jose.SignatureAlgorithm{
	jose.EdDSA, jose.HS256, jose.HS384, jose.HS512, jose.RS256, jose.RS384, jose.RS512,
	jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.PS384, jose.PS512,
}

// jwtClaims is the claims set of a statuslist+jwt, in the order it is
// written.
type jwtClaims struct {
	Sub        string        `json:"sub"`
	Iat        int64         `json:"iat"`
	Exp        int64         `json:"exp,omitempty"`
	TTL        int64         `json:"ttl,omitempty"`
	StatusList jwtStatusList `json:"status_list"`
}

type jwtStatusList struct {
	Bits int    `json:"bits"`
	Lst  string `json:"lst"`
}

// SignJWT returns the statuslist+jwt of t in compact serialization, signed
// ES256 by key (any crypto.Signer, such as a PKCS#11 key) with typ
// statuslist+jwt and the x5c and kid headers of opts.
func SignJWT(t *Token, key crypto.Signer, opts SignOptions) ([]byte, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	if err := opts.Check(key); err != nil {
		return nil, err
	}
	c := jwtClaims{
		Sub:        t.Subject,
		Iat:        t.IssuedAt.Unix(),
		TTL:        t.ttlSeconds(),
		StatusList: jwtStatusList{Bits: t.Bits, Lst: base64.RawURLEncoding.EncodeToString(t.Lst)},
	}
	if !t.Expiry.IsZero() {
		c.Exp = t.Expiry.Unix()
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("statuslist: jwt claims: %w", err)
	}
	so := (&jose.SignerOptions{}).WithType(TypJWT)
	if len(opts.Chain) > 0 {
		x5c := make([]string, len(opts.Chain))
		for i, c := range opts.Chain {
			x5c[i] = base64.StdEncoding.EncodeToString(c.Raw)
		}
		so = so.WithHeader("x5c", x5c)
	}
	if opts.KeyID != "" {
		so = so.WithHeader("kid", opts.KeyID)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: cryptosigner.Opaque(key)}, so)
	if err != nil {
		return nil, fmt.Errorf("statuslist: jwt signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("statuslist: sign jwt: %w", err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("statuslist: sign jwt: %w", err)
	}
	return []byte(s), nil
}

// VerifyJWT verifies a statuslist+jwt (see [Verifier]) and returns its
// content and list. uri is the status list uri of the referenced token;
// sub must equal it.
func (v *Verifier) VerifyJWT(token []byte, uri string) (*Verified, error) {
	if err := v.check(len(token)); err != nil {
		return nil, err
	}
	// Every algorithm parses, so that a token in another one is refused
	// below as ErrAlg rather than as malformed.
	jws, err := jose.ParseSignedCompact(string(token), anyAlgorithm)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: %d signatures", ErrMalformed, len(jws.Signatures))
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != TypJWT {
		return nil, fmt.Errorf("%w: typ %q", ErrType, typ)
	}
	if h.Algorithm != string(jose.ES256) {
		return nil, fmt.Errorf("%w: %q", ErrAlg, h.Algorithm)
	}
	// go-jose keeps x5c to itself; the protected header is read again
	// for it (it parsed, so it is valid base64url JSON).
	x5c, err := jwtX5C(token)
	if err != nil {
		return nil, err
	}
	key, chain, err := v.key(x5c)
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	t, err := parseJWTClaims(payload)
	if err != nil {
		return nil, err
	}
	return v.finish(t, uri, chain, h.KeyID)
}

// jwtX5C returns the DER certificates of the x5c header of a compact JWS.
func jwtX5C(token []byte) ([][]byte, error) {
	seg, _, _ := bytes.Cut(token, []byte("."))
	js, err := base64.RawURLEncoding.DecodeString(string(seg))
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	var h struct {
		X5C []string `json:"x5c"`
	}
	if err := json.Unmarshal(js, &h); err != nil {
		return nil, fmt.Errorf("%w: x5c: %w", ErrMalformed, err)
	}
	x5c := make([][]byte, len(h.X5C))
	for i, s := range h.X5C {
		if x5c[i], err = base64.StdEncoding.Strict().DecodeString(s); err != nil {
			return nil, fmt.Errorf("%w: x5c: %w", ErrMalformed, err)
		}
	}
	return x5c, nil
}

// parseJWTClaims reads the claims a statuslist+jwt must have; others are
// ignored.
func parseJWTClaims(payload []byte) (*Token, error) {
	var c struct {
		Sub        *string      `json:"sub"`
		Iat        *json.Number `json:"iat"`
		Exp        *json.Number `json:"exp"`
		TTL        *json.Number `json:"ttl"`
		StatusList *struct {
			Bits *int    `json:"bits"`
			Lst  *string `json:"lst"`
		} `json:"status_list"`
	}
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	if err := d.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrClaims, err)
	}
	if d.More() {
		return nil, fmt.Errorf("%w: data after the claims", ErrClaims)
	}
	if c.Sub == nil || c.Iat == nil || c.StatusList == nil || c.StatusList.Bits == nil || c.StatusList.Lst == nil {
		return nil, fmt.Errorf("%w: sub, iat and status_list{bits,lst} are required", ErrClaims)
	}
	t := &Token{Subject: *c.Sub, Bits: *c.StatusList.Bits}
	iat, err := seconds("iat", c.Iat)
	if err != nil {
		return nil, err
	}
	t.IssuedAt = fromUnix(iat)
	if c.Exp != nil {
		exp, err := seconds("exp", c.Exp)
		if err != nil {
			return nil, err
		}
		t.Expiry = fromUnix(exp)
	}
	if c.TTL != nil {
		ttl, err := seconds("ttl", c.TTL)
		if err != nil {
			return nil, err
		}
		t.TTL = secondsDuration(ttl)
	}
	if t.Lst, err = base64.RawURLEncoding.Strict().DecodeString(*c.StatusList.Lst); err != nil {
		return nil, fmt.Errorf("%w: lst: %w", ErrClaims, err)
	}
	return t, nil
}

// seconds reads a positive integer claim.
func seconds(what string, n *json.Number) (int64, error) {
	v, err := n.Int64()
	if err != nil {
		return 0, fmt.Errorf("%w: %s is not an integer", ErrClaims, what)
	}
	return v, checkSeconds(what, v)
}
