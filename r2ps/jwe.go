package r2ps

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	cryptorand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

const (
	ivSize  = 12 // A256GCM IV: 96 bits (RFC 7518 §5.3; §4.1.2)
	tagSize = 16 // A256GCM authentication tag: 128 bits (RFC 7518 §5.3)
	maxName = 256
)

// header1FA is the JWE protected header of 1FA mode (§4.1.1). Every member
// is required, and decodeStrict refuses any other (crit, zip, jku, …).
type header1FA struct {
	Alg string          `json:"alg"`
	Enc string          `json:"enc"`
	Typ string          `json:"typ"`
	Cty string          `json:"cty"`
	KID string          `json:"kid"`
	EPK json.RawMessage `json:"epk"`
	APU string          `json:"apu"`
	APV string          `json:"apv"`
}

// header2FA is the JWE protected header of 2FA mode (§4.1.2), with the same
// rule. parseDir lets typ, cty and kid be absent; Open2FA requires them.
type header2FA struct {
	Alg string `json:"alg"`
	Enc string `json:"enc"`
	Typ string `json:"typ"`
	Cty string `json:"cty"`
	KID string `json:"kid"`
}

// compactJWE is a compact JWE (RFC 7516 §7.1) split into its parts. The
// encrypted key is empty in both R2PS modes (§4.1.1, §4.1.2).
type compactJWE struct {
	protected  string // BASE64URL(UTF8(header)) as received: the AAD (RFC 7516 §5.1 step 14)
	header     []byte // the decoded header JSON
	iv         []byte
	ciphertext []byte
	tag        []byte
}

// parseCompactJWE checks the structure of a compact JWE: size, five parts,
// an empty encrypted key, strict base64url, a 96-bit IV and a 128-bit tag.
func parseCompactJWE(compact []byte) (compactJWE, error) {
	var c compactJWE
	if len(compact) > MaxMessageSize {
		return c, errorf(ErrTooLarge, "%d bytes", len(compact))
	}
	parts := bytes.Split(compact, []byte{'.'})
	if len(parts) != 5 {
		return c, errorf(ErrMalformed, "compact JWE has %d parts, want 5", len(parts))
	}
	if len(parts[1]) != 0 {
		return c, errorf(ErrMalformed, "JWE encrypted key is not empty")
	}
	var err error
	if c.header, err = decodeB64URL(parts[0]); err != nil || len(c.header) == 0 {
		return c, errorf(ErrMalformed, "JWE protected header: not base64url")
	}
	if c.iv, err = decodeB64URL(parts[2]); err != nil || len(c.iv) != ivSize {
		return c, errorf(ErrMalformed, "JWE IV: want %d bytes of base64url", ivSize)
	}
	if c.ciphertext, err = decodeB64URL(parts[3]); err != nil {
		return c, errorf(ErrMalformed, "JWE ciphertext: not base64url")
	}
	if c.tag, err = decodeB64URL(parts[4]); err != nil || len(c.tag) != tagSize {
		return c, errorf(ErrMalformed, "JWE tag: want %d bytes of base64url", tagSize)
	}
	c.protected = string(parts[0])
	return c, nil
}

// open decrypts with A256GCM (RFC 7518 §5.3, RFC 7516 §5.2 steps 14–16).
func (c *compactJWE) open(cek []byte) ([]byte, error) {
	aead, err := newGCM(cek)
	if err != nil {
		return nil, err
	}
	sealed := make([]byte, 0, len(c.ciphertext)+tagSize)
	sealed = append(append(sealed, c.ciphertext...), c.tag...)
	plaintext, err := aead.Open(sealed[:0], c.iv, sealed, []byte(c.protected))
	if err != nil {
		return nil, ErrDecrypt
	}
	return plaintext, nil
}

// sealCompact encrypts with A256GCM under a fresh random IV (§4.1.2) and
// the ASCII of the encoded header as AAD, and serialises (RFC 7516 §7.1).
func sealCompact(protected string, cek, plaintext []byte, random io.Reader) ([]byte, error) {
	if len(plaintext) > MaxMessageSize {
		return nil, errorf(ErrTooLarge, "JWS of %d bytes", len(plaintext))
	}
	aead, err := newGCM(cek)
	if err != nil {
		return nil, err
	}
	if random == nil {
		random = cryptorand.Reader
	}
	iv := make([]byte, ivSize)
	if _, err := io.ReadFull(random, iv); err != nil {
		return nil, fmt.Errorf("r2ps: IV: %w", err)
	}
	sealed := aead.Seal(nil, iv, plaintext, []byte(protected))
	ct, tag := sealed[:len(sealed)-tagSize], sealed[len(sealed)-tagSize:]
	var b bytes.Buffer
	b.Grow(len(protected) + 4 + (len(sealed)+ivSize)*4/3 + 8)
	b.WriteString(protected)
	b.WriteString("..")
	b.WriteString(b64url(iv))
	b.WriteByte('.')
	b.WriteString(b64url(ct))
	b.WriteByte('.')
	b.WriteString(b64url(tag))
	return b.Bytes(), nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != SessionKeySize {
		return nil, fmt.Errorf("r2ps: A256GCM key is %d bytes, want %d", len(key), SessionKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("r2ps: %w", err)
	}
	return cipher.NewGCM(block)
}

// parseDir parses a compact JWE of alg dir and enc A256GCM.
func parseDir(compact []byte) (compactJWE, header2FA, error) {
	var h header2FA
	c, err := parseCompactJWE(compact)
	if err != nil {
		return c, h, err
	}
	if err := decodeStrict(c.header, &h, ErrHeader); err != nil {
		return c, h, err
	}
	if h.Alg != AlgDir || h.Enc != EncA256GCM {
		return c, h, errorf(ErrHeader, "alg %q enc %q, want %s %s", h.Alg, h.Enc, AlgDir, EncA256GCM)
	}
	return c, h, nil
}

// EnvelopeMode reads the typ and kid of a compact JWE's protected header
// without decrypting, so that the server can choose [Open1FA] or [Open2FA]
// (§4.1: "The recipient determines the mode from the typ") and refuse an
// unknown kid before any key operation. The Open functions check the whole
// header again.
func EnvelopeMode(compact []byte) (Mode, string, error) {
	c, err := parseCompactJWE(compact)
	if err != nil {
		return ModeNone, "", err
	}
	var h map[string]json.RawMessage
	if err := decodeStrict(c.header, &h, ErrHeader); err != nil {
		return ModeNone, "", err
	}
	var typ, kid string
	if json.Unmarshal(h["typ"], &typ) != nil || json.Unmarshal(h["kid"], &kid) != nil {
		return ModeNone, "", errorf(ErrHeader, "typ or kid missing or not a string")
	}
	if err := checkName(ErrHeader, "kid", kid); err != nil {
		return ModeNone, "", err
	}
	switch typ {
	case TypJWE1FA:
		return Mode1FA, kid, nil
	case TypJWE2FA:
		return Mode2FA, kid, nil
	}
	return ModeNone, "", errorf(ErrHeader, "typ %q is no R2PS mode", typ)
}

// checkName validates an identifier from a header or payload (kid, session
// id, client_id, context): 1 to 256 bytes of UTF-8 without control
// characters, so it can be logged and used as a key as it is.
func checkName(sentinel *Error, what, s string) error {
	if s == "" || len(s) > maxName || !utf8.ValidString(s) {
		return errorf(sentinel, "%s: want 1 to %d bytes of UTF-8", what, maxName)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return errorf(sentinel, "%s: control character", what)
		}
	}
	return nil
}

// errNoKey reports a nil or non-P-256 key handed to a Seal function.
var errNoKey = errors.New("r2ps: recipient key is not a P-256 key")
