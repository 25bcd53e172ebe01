// Package hostile builds the unauthenticated R2PS request bodies of issue 6
// (defect 5): bodies of at most 1 MiB that are cheap to send and were
// expensive to refuse. The r2ps caps tests and benchmarks and the wscad
// memory test share them.
package hostile

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/r2ps"
)

// Body is one hostile request body.
type Body struct {
	Name string
	Body []byte
}

// Limit is the size every body stays within: the /r2ps body cap.
const Limit = r2ps.MaxMessageSize

// Members returns a JSON object of about size bytes with distinct members
// "m0":0, "m1":0, …, after the given leading members (a JSON fragment
// without braces, may be empty): the shape that makes a strict decoder
// remember every name.
func Members(lead string, size int) []byte {
	var b bytes.Buffer
	b.Grow(size + 16)
	b.WriteByte('{')
	b.WriteString(lead)
	for i := 0; b.Len() < size-16; i++ {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteString(`"m`)
		b.WriteString(strconv.Itoa(i))
		b.WriteString(`":0`)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// Nested returns size bytes of JSON arrays nested size/2 deep.
func Nested(size int) []byte {
	return append(bytes.Repeat([]byte{'['}, size/2), bytes.Repeat([]byte{']'}, size/2)...)
}

// b64 is base64url without padding, the encoding of compact parts.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// headerBytes is the size of JSON whose base64url, with room for the other
// parts, fills a body.
const headerBytes = (Limit - 128) / 4 * 3

// tail5 and tail3 complete a header into a JWE (empty key, 12-byte IV,
// 1-byte ciphertext, 16-byte tag) and into a JWS (empty payload, 64-byte
// signature).
var (
	tail5 = ".." + b64(make([]byte, 12)) + "." + b64([]byte{0}) + "." + b64(make([]byte, 16))
	tail3 = ".." + b64(make([]byte, 64))
)

// Structural returns the bodies that need no key: refused before any key
// operation, whatever the server holds.
func Structural() []Body {
	many := bytes.Repeat([]byte("A."), Limit/2)
	return []Body{
		{"dots", bytes.Repeat([]byte{'.'}, Limit)},
		{"many-parts", many[:Limit-1]},
		{"jwe-70k-member-header", []byte(b64(Members(`"typ":"r2ps-1fa","kid":"k"`, headerBytes)) + tail5)},
		{"jwe-70k-member-header-no-typ", []byte(b64(Members("", headerBytes)) + tail5)},
		{"jws-70k-member-header", []byte(b64(Members(`"alg":"ES256","typ":"r2ps-request+jwt"`, headerBytes)) + tail3)},
		{"jwe-nested-header", []byte(b64(Nested(headerBytes)) + tail5)},
		{"jwe-huge-kid", []byte(b64([]byte(`{"typ":"r2ps-2fa","kid":"`+string(bytes.Repeat([]byte{'k'}, headerBytes-40))+`"}`)) + tail5)},
		{"jws-huge-kid", []byte(b64([]byte(`{"alg":"ES256","typ":"r2ps-request+jwt","kid":"`+string(bytes.Repeat([]byte{'k'}, headerBytes-60))+`"}`)) + tail3)},
		{"2fa-huge-ciphertext", []byte(r2ps.ProtectedHeader2FA("no-such-session") + ".." + b64(make([]byte, 12)) + "." +
			b64(make([]byte, headerBytes-64)) + "." + b64(make([]byte, 16)))},
	}
}

// SelfSigned returns the bodies that pass the signature check with a key
// of the sender's own (a 2fa_registration may embed its key, docs/protocol.md
// §5) and so reach the payload decoder before any unit is known: a compat
// JWS, and, when serverKey is not nil, a 1FA JWE to that key, each with a
// data member of about 70k members.
func SelfSigned(serverKey *ecdh.PublicKey, serverKID string) ([]Body, error) {
	csk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	jwk := &jose.JSONWebKey{Key: &csk.PublicKey}
	kid := r2ps.Thumbprint(&csk.PublicKey)
	nonce := base64.StdEncoding.EncodeToString(make([]byte, 16))
	iat := strconv.FormatInt(time.Now().Unix(), 10)
	sign := func(payload []byte) ([]byte, error) {
		return r2ps.SignJWS(payload, r2ps.TypRequest, kid, csk, jwk)
	}
	// A JWS body holds the payload base64url-encoded: 3/4 of the limit.
	compat := Members(`"ver":"1.0","nonce":"`+nonce+`","iat":`+iat+`,"client_id":"u","context":"c","type":"2fa_registration","data":`, 0)
	compat = append(compat[:len(compat)-1], Members("", (Limit-1024)/4*3-len(compat))...)
	compat = append(compat, '}')
	jws, err := sign(compat)
	if err != nil {
		return nil, fmt.Errorf("hostile: %w", err)
	}
	out := []Body{{"compat-self-signed-70k-data", jws}}
	if serverKey == nil {
		return out, nil
	}
	// In a 1FA JWE the JWS is base64url-encoded once more: 9/16.
	msg, err := r2ps.SealRequest1FA(func(protected string) ([]byte, error) {
		hash := base64.StdEncoding.EncodeToString(r2ps.JWEHash(protected))
		p := Members(`"ver":"1.0","nonce":"`+nonce+`","iat":`+iat+`,"type":"2fa_registration","jwe_hash":"`+hash+`","data":`, 0)
		p = append(p[:len(p)-1], Members("", (Limit-4096)/16*9-len(p))...)
		return sign(append(p, '}'))
	}, serverKey, serverKID, "u", "c", nil)
	if err != nil {
		return nil, fmt.Errorf("hostile: %w", err)
	}
	return append(out, Body{"1fa-self-signed-70k-data", msg}), nil
}
