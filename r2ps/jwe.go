package r2ps

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	cryptorand "crypto/rand"
	"encoding/base64"
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
	protected string // BASE64URL(UTF8(header)) as received: the AAD (RFC 7516 §5.1 step 14)
	header    []byte // the decoded header JSON
	iv        []byte
	// sealed is the ciphertext followed by the tag, decoded into one
	// buffer: the input of cipher.AEAD.Open, which opens it in place.
	sealed []byte
}

// parseCompactJWE checks the structure of a compact JWE: size, five parts
// (counted before splitting), an empty encrypted key, a protected header of
// at most MaxHeaderSize, strict base64url, a 96-bit IV and a 128-bit tag.
func parseCompactJWE(compact []byte) (compactJWE, error) {
	var c compactJWE
	var parts [5][]byte
	if err := splitCompact(compact, parts[:], "JWE"); err != nil {
		return c, err
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
	if base64.RawURLEncoding.DecodedLen(len(parts[4])) != tagSize {
		return c, errorf(ErrMalformed, "JWE tag: want %d bytes of base64url", tagSize)
	}
	ct := parts[3]
	c.sealed = make([]byte, base64.RawURLEncoding.DecodedLen(len(ct))+tagSize)
	n, err := decodeB64URLInto(c.sealed, ct)
	if err != nil {
		return c, errorf(ErrMalformed, "JWE ciphertext: not base64url")
	}
	if m, err := decodeB64URLInto(c.sealed[n:], parts[4]); err != nil || m != tagSize {
		return c, errorf(ErrMalformed, "JWE tag: want %d bytes of base64url", tagSize)
	}
	c.sealed = c.sealed[:n+tagSize]
	c.protected = string(parts[0])
	return c, nil
}

// open decrypts with A256GCM (RFC 7518 §5.3, RFC 7516 §5.2 steps 14–16).
func (c *compactJWE) open(cek []byte) ([]byte, error) {
	aead, err := newGCM(cek)
	if err != nil {
		return nil, err
	}
	// Not in place: Open clears its output on failure, and a parsed JWE may
	// be tried with more than one key.
	plaintext, err := aead.Open(nil, c.iv, c.sealed, []byte(c.protected))
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

// jweHeader is the protected header of either mode, decoded once by
// ParseJWE: it has every member either mode names, so decodeStrict still
// refuses any other (crit, zip, jku, …), and each Open refuses the members
// of the other mode. epk, apu and apv stay raw so that presence, even as
// null, is seen.
type jweHeader struct {
	Alg string          `json:"alg"`
	Enc string          `json:"enc"`
	Typ string          `json:"typ"`
	Cty string          `json:"cty"`
	KID string          `json:"kid"`
	EPK json.RawMessage `json:"epk"`
	APU json.RawMessage `json:"apu"`
	APV json.RawMessage `json:"apv"`
}

// readFlat reads a header of plain string members (flatObject), each at
// most once and each one jweHeader names, without encoding/json: a 2FA
// header, or a 1FA one without its epk object (which decodeStrict reads).
// apu and apv keep their quotes, as encoding/json keeps a RawMessage. It
// reports false for any other header, which decodeStrict then reads.
func (h *jweHeader) readFlat(raw []byte) bool {
	var m [7]flatMember
	n, ok := flatObject(raw, m[:])
	if !ok {
		return false
	}
	var seen [7]bool
	for _, f := range m[:n] {
		var i int
		switch string(f.name) {
		case "alg":
			i, h.Alg = 0, string(f.value)
		case "enc":
			i, h.Enc = 1, string(f.value)
		case "typ":
			i, h.Typ = 2, string(f.value)
		case "cty":
			i, h.Cty = 3, string(f.value)
		case "kid":
			i, h.KID = 4, string(f.value)
		case "apu":
			i, h.APU = 5, json.RawMessage(raw[f.start-1:f.end+1])
		case "apv":
			i, h.APV = 6, json.RawMessage(raw[f.start-1:f.end+1])
		default:
			return false
		}
		if seen[i] {
			return false
		}
		seen[i] = true
	}
	return true
}

// JWE is a compact JWE of either mode whose structure and protected header
// have been parsed, once: [JWE.Mode] and [JWE.KID] route it, and
// [JWE.Open1FA] or [JWE.Open2FA] open it without parsing it again.
type JWE struct {
	c    compactJWE
	h    jweHeader
	mode Mode
}

// ParseJWE parses a compact JWE: the structure (see [Classify]: at most
// [MaxMessageSize], five parts, a protected header of at most
// [MaxHeaderSize]), then the header under the strict JSON rules, whose typ
// gives the mode (§4.1: "The recipient determines the mode from the typ")
// and whose kid must be a valid name. The other members are checked by the
// Open methods, before any key is used. Errors wrap [ErrTooLarge],
// [ErrMalformed] or [ErrHeader].
func ParseJWE(compact []byte) (*JWE, error) {
	c, err := parseCompactJWE(compact)
	if err != nil {
		return nil, err
	}
	j := &JWE{c: c}
	if !j.h.readFlat(c.header) {
		j.h = jweHeader{}
		if err := decodeStrict(c.header, &j.h, ErrHeader); err != nil {
			return nil, err
		}
	}
	switch j.h.Typ {
	case TypJWE1FA:
		j.mode = Mode1FA
	case TypJWE2FA:
		j.mode = Mode2FA
	default:
		return nil, errorf(ErrHeader, "typ %q is no R2PS mode", j.h.Typ)
	}
	if err := checkName(ErrHeader, "kid", j.h.KID); err != nil {
		return nil, err
	}
	return j, nil
}

// Mode is the protection mode the header's typ names.
func (j *JWE) Mode() Mode { return j.mode }

// KID is the header's kid: the recipient's key in 1FA, the session in 2FA.
func (j *JWE) KID() string { return j.h.KID }

// ProtectedHeader is the encoded protected header as received, whose
// [JWEHash] the request's jwe_hash must equal (§4.2.1).
func (j *JWE) ProtectedHeader() string { return j.c.protected }

// EnvelopeMode reads the typ and kid of a compact JWE's protected header
// without decrypting, so that the server can choose [Open1FA] or [Open2FA]
// and refuse an unknown kid before any key operation. It is [ParseJWE]
// without the result: a server that keeps the *JWE and calls its Open
// method parses the message once instead of twice.
func EnvelopeMode(compact []byte) (Mode, string, error) {
	j, err := ParseJWE(compact)
	if err != nil {
		return ModeNone, "", err
	}
	return j.mode, j.h.KID, nil
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
