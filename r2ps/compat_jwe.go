package r2ps

import (
	"bytes"
	"crypto/aes"
	"crypto/hkdf"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"

	josecipher "github.com/go-jose/go-jose/v4/cipher"
)

// The 2FA JWE of go-r2ps-service (its docs/specs/r2ps.md §3.2 and
// internal/crypto/jwe.go; docs/protocol.md §8): a compact JWE with
// alg A256KW, enc A256GCM, typ r2ps-2fa, cty JWT and kid = the session id,
// whose fresh random CEK is wrapped (RFC 3394) under a key-encryption key
// derived from the OPAQUE session key, one per direction. It differs from
// the I-D's 2FA JWE (alg dir, the session key as the CEK: [Seal2FA]) only
// in alg and in the encrypted key, so the two share typ and are told apart
// by alg.

// Direction selects the key-encryption key of a compat 2FA JWE.
type Direction string

// The two directions, the dir input of [CompatKEK].
const (
	ClientToServer Direction = "c2s" // requests
	ServerToClient Direction = "s2c" // responses
)

const (
	// AlgA256KW is the alg of go-r2ps-service's 2FA JWE (RFC 7518 §4.4).
	AlgA256KW = "A256KW"
	// compatKEKLabel is the domain separation tag of the KEK derivation.
	compatKEKLabel = "R2PS-2FA-KEK-1.0"
	// wrappedKeySize is the A256KW encrypted key of a 32-byte CEK: the CEK
	// plus the 8-byte integrity block (RFC 3394 §2.2.1).
	wrappedKeySize = SessionKeySize + 8
	// maxCompatHeader bounds the encoded protected header before it is
	// decoded: five members, a kid of at most maxName bytes, each byte
	// escaped at worst as \u00XX, in base64url.
	maxCompatHeader = (128 + 6*maxName) * 4 / 3
)

// CompatKEK derives the key-encryption key of go-r2ps-service's 2FA JWE:
// HKDF-SHA256 (RFC 5869) with ikm = sessionKey, an empty salt, L = 32 and
// info = len32("R2PS-2FA-KEK-1.0") || len32(dir) || len32(sessionID), where
// len32(x) is the length of x as a 4-byte big-endian integer followed by x.
// The caller zeroes the result after use.
func CompatKEK(sessionKey []byte, dir Direction, sessionID string) ([]byte, error) {
	if dir != ClientToServer && dir != ServerToClient {
		return nil, fmt.Errorf("r2ps: KEK direction %q, want %s or %s", dir, ClientToServer, ServerToClient)
	}
	if len(sessionKey) != SessionKeySize {
		return nil, fmt.Errorf("r2ps: session key is %d bytes, want %d", len(sessionKey), SessionKeySize)
	}
	info := make([]byte, 0, 12+len(compatKEKLabel)+len(dir)+len(sessionID))
	for _, field := range []string{compatKEKLabel, string(dir), sessionID} {
		info = binary.BigEndian.AppendUint32(info, uint32(len(field)))
		info = append(info, field...)
	}
	kek, err := hkdf.Key(sha256.New, sessionKey, nil, string(info), SessionKeySize)
	if err != nil {
		return nil, fmt.Errorf("r2ps: HKDF: %w", err)
	}
	return kek, nil
}

// compatHeader is the protected header of the compat 2FA JWE. Every member
// is required with its one value, and decodeStrict refuses any other (zip,
// crit, epk, jku, …).
type compatHeader struct {
	Alg string `json:"alg"`
	Cty string `json:"cty"`
	Enc string `json:"enc"`
	KID string `json:"kid"`
	Typ string `json:"typ"`
}

// compatJWE is a parsed compat 2FA JWE.
type compatJWE struct {
	compactJWE
	wrappedKey []byte
	kid        string
}

// parseCompat2FA checks everything that can be checked without a key: size,
// five parts of strict base64url, a 40-byte encrypted key, a 96-bit IV, a
// 128-bit tag, and the protected header in full.
func parseCompat2FA(compact []byte) (compatJWE, error) {
	var c compatJWE
	var parts [5][]byte
	if err := splitCompact(compact, parts[:], "JWE"); err != nil {
		return c, err
	}
	if len(parts[0]) > maxCompatHeader {
		return c, errorf(ErrHeader, "protected header of %d bytes", len(parts[0]))
	}
	var err error
	if c.header, err = decodeB64URL(parts[0]); err != nil || len(c.header) == 0 {
		return c, errorf(ErrMalformed, "JWE protected header: not base64url")
	}
	if c.wrappedKey, err = decodeB64URL(parts[1]); err != nil || len(c.wrappedKey) != wrappedKeySize {
		return c, errorf(ErrMalformed, "JWE encrypted key: want %d bytes of base64url", wrappedKeySize)
	}
	if c.iv, err = decodeB64URL(parts[2]); err != nil || len(c.iv) != ivSize {
		return c, errorf(ErrMalformed, "JWE IV: want %d bytes of base64url", ivSize)
	}
	if base64.RawURLEncoding.DecodedLen(len(parts[4])) != tagSize {
		return c, errorf(ErrMalformed, "JWE tag: want %d bytes of base64url", tagSize)
	}
	c.sealed = make([]byte, base64.RawURLEncoding.DecodedLen(len(parts[3]))+tagSize)
	n, err := decodeB64URLInto(c.sealed, parts[3])
	if err != nil {
		return c, errorf(ErrMalformed, "JWE ciphertext: not base64url")
	}
	if m, err := decodeB64URLInto(c.sealed[n:], parts[4]); err != nil || m != tagSize {
		return c, errorf(ErrMalformed, "JWE tag: want %d bytes of base64url", tagSize)
	}
	c.sealed = c.sealed[:n+tagSize]
	var h compatHeader
	if err := decodeStrict(c.header, &h, ErrHeader); err != nil {
		return c, err
	}
	if h.Alg != AlgA256KW || h.Enc != EncA256GCM {
		return c, errorf(ErrHeader, "alg %q enc %q, want %s %s", h.Alg, h.Enc, AlgA256KW, EncA256GCM)
	}
	if h.Typ != TypJWE2FA || h.Cty != CtyJWT {
		return c, errorf(ErrHeader, "typ %q cty %q, want %s %s", h.Typ, h.Cty, TypJWE2FA, CtyJWT)
	}
	if err := checkName(ErrHeader, "kid", h.KID); err != nil {
		return c, err
	}
	c.protected, c.kid = string(parts[0]), h.KID
	return c, nil
}

// PeekCompat2FA reports the session id (kid) of a compat 2FA JWE without
// decrypting it, after checking its structure and whole protected header as
// [OpenCompat2FA] does, so that a server can tell it from the I-D's 2FA JWE
// (alg dir, see [EnvelopeMode]) and refuse an unknown session before any
// key is derived. Errors wrap [ErrMalformed], [ErrHeader] or [ErrTooLarge].
func PeekCompat2FA(compact []byte) (string, error) {
	c, err := parseCompat2FA(compact)
	if err != nil {
		return "", err
	}
	return c.kid, nil
}

// OpenCompat2FA opens a compat 2FA JWE sent in direction dir: requests are
// opened with ClientToServer, responses with ServerToClient. The structure
// and the protected header are checked in full before lookup is called with
// the session id (kid); lookup returns the 32-byte session key, or an error
// that OpenCompat2FA wraps as it is ([ErrUnknownSession] for UNAUTHORIZED).
// A wrong key, direction or session, and any change to the message, fail
// with [ErrDecrypt]. A key that is not 32 bytes, or an invalid dir, is a
// SERVER_ERROR. OpenCompat2FA never modifies the session key; it zeroes the
// KEK and the CEK. The result's ProtectedHeader is the encoded header as
// received.
func OpenCompat2FA(compact []byte, dir Direction, lookup func(sessionID string) ([]byte, error)) (Envelope2FA, error) {
	var env Envelope2FA
	if dir != ClientToServer && dir != ServerToClient {
		return env, fmt.Errorf("r2ps: KEK direction %q, want %s or %s", dir, ClientToServer, ServerToClient)
	}
	c, err := parseCompat2FA(compact)
	if err != nil {
		return env, err
	}
	sessionKey, err := lookup(c.kid)
	if err != nil {
		return env, fmt.Errorf("r2ps: session lookup: %w", err)
	}
	kek, err := CompatKEK(sessionKey, dir, c.kid)
	if err != nil {
		return env, err
	}
	defer clear(kek)
	block, err := aes.NewCipher(kek)
	if err != nil {
		return env, fmt.Errorf("r2ps: %w", err)
	}
	cek, err := josecipher.KeyUnwrap(block, c.wrappedKey)
	if err != nil {
		return env, ErrDecrypt
	}
	defer clear(cek)
	if env.JWS, err = c.open(cek); err != nil {
		return env, err
	}
	env.SessionID, env.ProtectedHeader = c.kid, c.protected
	return env, nil
}

// ProtectedHeaderCompat2FA returns the encoded protected header
// [SealCompat2FA] uses for sessionID: the members in the order go-jose
// writes them, as go-r2ps-service's EncryptJWE2FA does.
func ProtectedHeaderCompat2FA(sessionID string) string {
	hdr, err := json.Marshal(compatHeader{Alg: AlgA256KW, Cty: CtyJWT, Enc: EncA256GCM, KID: sessionID, Typ: TypJWE2FA})
	if err != nil {
		panic("r2ps: internal error: " + err.Error())
	}
	return b64url(hdr)
}

// SealCompat2FA encrypts plaintext (the compact JWS of a request or
// response) as a compat 2FA JWE in direction dir: a fresh 32-byte CEK and
// 96-bit IV from random (nil means crypto/rand), the CEK wrapped with
// A256KW under [CompatKEK], and A256GCM with the ASCII of the encoded
// header as AAD. It never modifies the session key; it zeroes the KEK and
// the CEK.
func SealCompat2FA(plaintext, sessionKey []byte, sessionID string, dir Direction, random io.Reader) ([]byte, error) {
	if err := checkName(ErrMalformed, "session id", sessionID); err != nil {
		return nil, err
	}
	return sealCompatHeader(ProtectedHeaderCompat2FA(sessionID), plaintext, sessionKey, sessionID, dir, random)
}

// sealCompatHeader is SealCompat2FA with the encoded protected header given,
// so that tests can seal headers SealCompat2FA never writes.
func sealCompatHeader(protected string, plaintext, sessionKey []byte, sessionID string, dir Direction, random io.Reader) ([]byte, error) {
	if len(plaintext) > MaxMessageSize {
		return nil, errorf(ErrTooLarge, "JWS of %d bytes", len(plaintext))
	}
	kek, err := CompatKEK(sessionKey, dir, sessionID)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	if random == nil {
		random = cryptorand.Reader
	}
	cek := make([]byte, SessionKeySize)
	defer clear(cek)
	iv := make([]byte, ivSize)
	if _, err := io.ReadFull(random, cek); err != nil {
		return nil, fmt.Errorf("r2ps: CEK: %w", err)
	}
	if _, err := io.ReadFull(random, iv); err != nil {
		return nil, fmt.Errorf("r2ps: IV: %w", err)
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("r2ps: %w", err)
	}
	wrapped, err := josecipher.KeyWrap(block, cek)
	if err != nil {
		return nil, fmt.Errorf("r2ps: key wrap: %w", err)
	}
	aead, err := newGCM(cek)
	if err != nil {
		return nil, err
	}
	sealed := aead.Seal(nil, iv, plaintext, []byte(protected))
	ct, tag := sealed[:len(sealed)-tagSize], sealed[len(sealed)-tagSize:]
	var b bytes.Buffer
	b.Grow(len(protected) + 4 + (len(wrapped)+ivSize+len(sealed))*4/3 + 8)
	for i, part := range []string{protected, b64url(wrapped), b64url(iv), b64url(ct), b64url(tag)} {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(part)
	}
	return b.Bytes(), nil
}
