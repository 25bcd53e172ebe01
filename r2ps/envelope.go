package r2ps

import (
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"
)

// Envelope1FA is an opened 1FA JWE (§4.1.1).
type Envelope1FA struct {
	KID      string // kid: the recipient's static key-agreement key
	ClientID string // apu of a request, apv of a response (decoded)
	Context  string // apv of a request, apu of a response (decoded)
	// JWS is the plaintext, the compact JWS of §4.2.
	JWS []byte
	// ProtectedHeader is the encoded protected header as received; the
	// request's jwe_hash must equal its [JWEHash] (§4.2.1).
	ProtectedHeader string
}

// Envelope2FA is an opened 2FA JWE (§4.1.2).
type Envelope2FA struct {
	SessionID       string // kid: the 2FA session
	JWS             []byte // the plaintext, the compact JWS of §4.2
	ProtectedHeader string // as in Envelope1FA
}

// SealRequest1FA encrypts a request in 1FA mode (§4.1.1): ECDH-ES from a
// fresh ephemeral P-256 key to the server's agreement key, with apu =
// client_id and apv = securityContext, and A256GCM. The JWS payload's jwe_hash
// covers the JWE header, which holds the ephemeral key, so the JWS cannot
// exist first (§4.2.1: header, hash, sign, encrypt): sign receives the
// encoded protected header and returns the compact JWS to encrypt. random
// supplies the IV (nil means crypto/rand); since Go 1.26 crypto/ecdh draws
// the ephemeral key from the system source regardless. The ephemeral private
// key, Z and the CEK do not outlive the call (Z and the CEK are zeroed).
func SealRequest1FA(sign func(protectedHeader string) ([]byte, error), serverKey *ecdh.PublicKey, serverKID, clientID, securityContext string, random io.Reader) ([]byte, error) {
	return seal1FA(sign, serverKey, serverKID, clientID, securityContext, random)
}

// SealResponse1FA encrypts a response in 1FA mode to the client agreement
// key (CAK) of the unit, with the party info swapped as §4.1.1 requires:
// apu = securityContext, apv = clientID.
func SealResponse1FA(jws []byte, clientCAK *ecdh.PublicKey, cakKID, clientID, securityContext string, random io.Reader) ([]byte, error) {
	sign := func(string) ([]byte, error) { return jws, nil }
	return seal1FA(sign, clientCAK, cakKID, securityContext, clientID, random)
}

// Open1FA opens a 1FA request on the server. The header is checked in full
// before agree is called (typ, alg, enc, cty, kid, apu, apv, and the epk
// validated with crypto/ecdh), so agree, which computes Z with the server's
// HSM-held agreement key, only ever sees a valid P-256 point. Open1FA zeroes
// the Z that agree returns. An error from agree is wrapped as it is, so its
// code (see [Code]) is the caller's choice; a Z that is not 32 bytes is a
// SERVER_ERROR.
func Open1FA(compact []byte, agree func(epk *ecdh.PublicKey) ([]byte, error)) (Envelope1FA, error) {
	j, err := ParseJWE(compact)
	if err != nil {
		return Envelope1FA{}, err
	}
	return j.open1FA(agree, false)
}

// Open1FA is [Open1FA] on a parsed JWE.
func (j *JWE) Open1FA(agree func(epk *ecdh.PublicKey) ([]byte, error)) (Envelope1FA, error) {
	return j.open1FA(agree, false)
}

// OpenResponse1FA opens a 1FA response on the client with the private CAK.
func OpenResponse1FA(compact []byte, cakPriv *ecdh.PrivateKey) (Envelope1FA, error) {
	if cakPriv == nil || cakPriv.Curve() != ecdh.P256() {
		return Envelope1FA{}, errNoKey
	}
	j, err := ParseJWE(compact)
	if err != nil {
		return Envelope1FA{}, err
	}
	return j.open1FA(cakPriv.ECDH, true)
}

func seal1FA(sign func(string) ([]byte, error), recipient *ecdh.PublicKey, kid, partyU, partyV string, random io.Reader) ([]byte, error) {
	if recipient == nil || recipient.Curve() != ecdh.P256() {
		return nil, errNoKey
	}
	for _, n := range [...][2]string{{"kid", kid}, {"apu", partyU}, {"apv", partyV}} {
		if err := checkName(ErrMalformed, n[0], n[1]); err != nil {
			return nil, err
		}
	}
	eph, err := ecdh.P256().GenerateKey(random)
	if err != nil {
		return nil, fmt.Errorf("r2ps: ephemeral key: %w", err)
	}
	z, err := eph.ECDH(recipient)
	if err != nil {
		return nil, fmt.Errorf("r2ps: ECDH: %w", err)
	}
	cek := concatKDF(z, EncA256GCM, []byte(partyU), []byte(partyV))
	clear(z)
	defer clear(cek)
	epk, err := json.Marshal(newECJWK(eph.PublicKey()))
	if err != nil {
		return nil, fmt.Errorf("r2ps: internal error: %w", err)
	}
	hdr, err := json.Marshal(header1FA{
		Alg: AlgECDHES, Enc: EncA256GCM, Typ: TypJWE1FA, Cty: CtyJWT, KID: kid,
		EPK: epk, APU: b64url([]byte(partyU)), APV: b64url([]byte(partyV)),
	})
	if err != nil {
		return nil, fmt.Errorf("r2ps: internal error: %w", err)
	}
	protected := b64url(hdr)
	jws, err := sign(protected)
	if err != nil {
		return nil, err
	}
	return sealCompact(protected, cek, jws, random)
}

func (j *JWE) open1FA(agree func(*ecdh.PublicKey) ([]byte, error), response bool) (Envelope1FA, error) {
	var env Envelope1FA
	c, h := &j.c, &j.h
	if j.mode != Mode1FA || h.Alg != AlgECDHES || h.Enc != EncA256GCM || h.Cty != CtyJWT {
		return env, errorf(ErrHeader, "typ %q alg %q enc %q cty %q, want %s %s %s %s",
			h.Typ, h.Alg, h.Enc, h.Cty, TypJWE1FA, AlgECDHES, EncA256GCM, CtyJWT)
	}
	if h.EPK == nil {
		return env, errorf(ErrHeader, "epk missing")
	}
	epk, err := parseECJWK(h.EPK)
	if err != nil {
		return env, err
	}
	apu, err := partyInfo("apu", h.APU)
	if err != nil {
		return env, err
	}
	apv, err := partyInfo("apv", h.APV)
	if err != nil {
		return env, err
	}
	z, err := agree(epk)
	if err != nil {
		return env, fmt.Errorf("r2ps: key agreement: %w", err)
	}
	if len(z) != 32 {
		return env, fmt.Errorf("r2ps: key agreement returned %d bytes, want 32", len(z))
	}
	cek := concatKDF(z, EncA256GCM, apu, apv)
	clear(z)
	defer clear(cek)
	if env.JWS, err = c.open(cek); err != nil {
		return env, err
	}
	env.KID, env.ProtectedHeader = h.KID, c.protected
	env.ClientID, env.Context = string(apu), string(apv)
	if response {
		env.ClientID, env.Context = string(apv), string(apu)
	}
	return env, nil
}

// partyInfo decodes apu or apv: a JSON string holding base64url of the
// UTF-8 client_id or context (docs/protocol.md §2).
func partyInfo(what string, raw json.RawMessage) ([]byte, error) {
	var s string
	if raw == nil || json.Unmarshal(raw, &s) != nil {
		return nil, errorf(ErrHeader, "%s: missing or not a string", what)
	}
	b, err := decodeB64URL([]byte(s))
	if err != nil || !utf8.Valid(b) {
		return nil, errorf(ErrHeader, "%s: not base64url of UTF-8", what)
	}
	if err := checkName(ErrHeader, what, string(b)); err != nil {
		return nil, err
	}
	return b, nil
}

// ProtectedHeader2FA returns the encoded protected header [Seal2FA] uses for
// sessionID. It has no random part, so a client can compute the request's
// jwe_hash before it signs (§4.2.1).
func ProtectedHeader2FA(sessionID string) string {
	if plainName(sessionID) {
		// What json.Marshal gives for a name with nothing to escape.
		return b64url([]byte(`{"alg":"` + AlgDir + `","enc":"` + EncA256GCM + `","typ":"` + TypJWE2FA +
			`","cty":"` + CtyJWT + `","kid":"` + sessionID + `"}`))
	}
	hdr, err := json.Marshal(header2FA{Alg: AlgDir, Enc: EncA256GCM, Typ: TypJWE2FA, Cty: CtyJWT, KID: sessionID})
	if err != nil {
		panic("r2ps: internal error: " + err.Error())
	}
	return b64url(hdr)
}

// Seal2FA encrypts a request or response in 2FA mode (§4.1.2): alg dir, the
// 32-byte session key as the A256GCM CEK, kid = the session id, and a fresh
// random 96-bit IV per message from random (nil means crypto/rand).
func Seal2FA(jws, sessionKey []byte, sessionID string, random io.Reader) ([]byte, error) {
	if err := checkName(ErrMalformed, "session id", sessionID); err != nil {
		return nil, err
	}
	return sealCompact(ProtectedHeader2FA(sessionID), sessionKey, jws, random)
}

// Open2FA opens a 2FA message. The header is checked in full before lookup
// is called with the session id; lookup returns the session key, or an
// error: [ErrUnknownSession] (UNAUTHORIZED) when there is no live session,
// or any error whose code the caller chooses. A key that is not 32 bytes is
// a SERVER_ERROR. Open2FA never modifies the key.
func Open2FA(compact []byte, lookup func(sessionID string) ([]byte, error)) (Envelope2FA, error) {
	j, err := ParseJWE(compact)
	if err != nil {
		return Envelope2FA{}, err
	}
	return j.Open2FA(lookup)
}

// Open2FA is [Open2FA] on a parsed JWE.
func (j *JWE) Open2FA(lookup func(sessionID string) ([]byte, error)) (Envelope2FA, error) {
	var env Envelope2FA
	c, h := &j.c, &j.h
	if j.mode != Mode2FA || h.Alg != AlgDir || h.Enc != EncA256GCM || h.Cty != CtyJWT {
		return env, errorf(ErrHeader, "typ %q alg %q enc %q cty %q, want %s %s %s %s",
			h.Typ, h.Alg, h.Enc, h.Cty, TypJWE2FA, AlgDir, EncA256GCM, CtyJWT)
	}
	if h.EPK != nil || h.APU != nil || h.APV != nil {
		return env, errorf(ErrHeader, "epk, apu and apv belong to 1FA")
	}
	key, err := lookup(h.KID)
	if err != nil {
		return env, fmt.Errorf("r2ps: session lookup: %w", err)
	}
	if env.JWS, err = c.open(key); err != nil {
		return env, err
	}
	env.SessionID, env.ProtectedHeader = h.KID, c.protected
	return env, nil
}

// JWEHash is the jwe_hash of §4.2.1: SHA-256 over the ASCII of the encoded
// protected header exactly as transmitted (the bytes before the first '.').
func JWEHash(protectedHeaderB64 string) []byte {
	sum := sha256.Sum256([]byte(protectedHeaderB64))
	return sum[:]
}

// plainName reports whether s is printable ASCII that encoding/json writes
// as it is inside a string: no quote, backslash, control character or
// HTML-sensitive <, >, &.
func plainName(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
