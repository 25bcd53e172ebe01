package attest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
)

// MaxTokenSize bounds the compact serialisation a verifier reads.
const MaxTokenSize = 64 << 10

// algES256 is the only signature algorithm produced and accepted.
const algES256 = "ES256"

// b64 is the one base64url flavour of JWS: unpadded, strict.
var b64 = base64.RawURLEncoding.Strict()

// header is the JOSE header members the verifiers read.
type header struct {
	Alg  string          `json:"alg"`
	Typ  string          `json:"typ"`
	Kid  string          `json:"kid"`
	X5C  []string        `json:"x5c"`
	Crit json.RawMessage `json:"crit"`
}

// compact is a parsed, not yet verified, compact JWS.
type compact struct {
	header  header
	payload []byte // decoded claims, strict JSON checked
	signed  string // the signing input: header "." payload, as received
	sig     []byte
}

// parseCompact splits and decodes a compact JWS (RFC 7515 §7.1): three
// unpadded base64url parts, a header and a payload that are strict JSON
// objects, no crit (this profile defines no extension). It verifies
// nothing.
func parseCompact(token string) (*compact, error) {
	if len(token) > MaxTokenSize {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenSize)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: not three parts", ErrMalformed)
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	var c compact
	if err := decodeObject(hb, &c.header); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if c.header.Crit != nil {
		return nil, fmt.Errorf("%w: crit header not supported", ErrMalformed)
	}
	if c.payload, err = b64.DecodeString(parts[1]); err != nil {
		return nil, fmt.Errorf("%w: payload is not base64url", ErrMalformed)
	}
	if c.sig, err = b64.DecodeString(parts[2]); err != nil {
		return nil, fmt.Errorf("%w: signature is not base64url", ErrMalformed)
	}
	c.signed = token[:len(parts[0])+1+len(parts[1])]
	return &c, nil
}

// claims decodes the payload into v under decodeObject's rules.
func (c *compact) claims(v any) error {
	if err := decodeObject(c.payload, v); err != nil {
		return fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	return nil
}

// verifyES256 checks an ES256 signature (RFC 7518 §3.4: r || s, 32 bytes
// each) over the signing input.
func (c *compact) verifyES256(pub *ecdsa.PublicKey) error {
	if len(c.sig) != 64 {
		return fmt.Errorf("%w: not 64 bytes", ErrSignature)
	}
	h := sha256.Sum256([]byte(c.signed))
	r := new(big.Int).SetBytes(c.sig[:32])
	s := new(big.Int).SetBytes(c.sig[32:])
	if !ecdsa.Verify(pub, h[:], r, s) {
		return ErrSignature
	}
	return nil
}

// signCompact signs claims as a compact ES256 JWS with typ and the extra
// header members (x5c), through go-jose and key (any crypto.Signer holding
// a P-256 key: software or PKCS#11).
func signCompact(key crypto.Signer, typ string, extra map[string]any, claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("attest: encode claims: %w", err)
	}
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	for k, v := range extra {
		opts = opts.WithHeader(jose.HeaderKey(k), v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: cryptosigner.Opaque(key)}, opts)
	if err != nil {
		return "", fmt.Errorf("attest: signer: %w", err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("attest: sign: %w", err)
	}
	return obj.CompactSerialize()
}

// stdB64 is the base64 of x5c: standard alphabet, padded, strict.
var stdB64 = base64.StdEncoding.Strict()
