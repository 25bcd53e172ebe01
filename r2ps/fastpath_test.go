package r2ps

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The hand-written encoders of the server's hot path must give the bytes
// the generic encoders give (go-jose, encoding/json), so that no client
// sees a change on the wire.

// badSigner returns what a broken device might: out as the signature.
type badSigner struct {
	k   *ecdsa.PrivateKey
	out []byte
	err error
}

func (s badSigner) Public() crypto.PublicKey { return &s.k.PublicKey }
func (s badSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return s.out, s.err
}

func TestFixedJWSHeaderMatchesGoJose(t *testing.T) {
	f := newFixture(t)
	payload := []byte(`{"ver":"1.0","data":{}}`)
	for _, tc := range []struct {
		name, typ, kid string
		signer         crypto.Signer
	}{
		{"in memory", TypResponse, f.cskKID, f.csk},
		{"opaque (HSM)", TypResponse, f.cskKID, hsmSigner{f.csk}},
		{"request typ, escaped kid", TypRequest, `a<b>&"c`, f.csk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := NewFixedJWSHeader(tc.typ, tc.kid)
			if err != nil {
				t.Fatal(err)
			}
			jws, err := h.Sign(payload, tc.signer)
			if err != nil {
				t.Fatal(err)
			}
			js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: f.csk},
				(&jose.SignerOptions{}).WithType(jose.ContentType(tc.typ)).WithHeader("kid", tc.kid))
			if err != nil {
				t.Fatal(err)
			}
			obj, err := js.Sign(payload)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := obj.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			// Header and payload are the same bytes; only the (randomised)
			// signature differs.
			got, want := string(jws), ref
			if i := strings.LastIndexByte(got, '.'); got[:i] != want[:strings.LastIndexByte(want, '.')] {
				t.Fatalf("signing input\n got %s\nwant %s", got[:i], want)
			}
			parsed, err := jose.ParseSigned(got, []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				t.Fatal(err)
			}
			if out, err := parsed.Verify(&f.csk.PublicKey); err != nil || !bytes.Equal(out, payload) {
				t.Fatalf("go-jose does not verify it: %v", err)
			}
		})
	}
}

func TestFixedJWSHeaderRefuses(t *testing.T) {
	f := newFixture(t)
	h, err := NewFixedJWSHeader(TypResponse, f.cskKID)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 64) // r || s where DER is due
	rand.Read(raw)
	der, err := f.csk.Sign(rand.Reader, make([]byte, 32), crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for name, err := range map[string]error{
		"no typ":           func() error { _, err := NewFixedJWSHeader("", "k"); return err }(),
		"no kid":           func() error { _, err := NewFixedJWSHeader(TypResponse, ""); return err }(),
		"control in kid":   func() error { _, err := NewFixedJWSHeader(TypResponse, "a\nb"); return err }(),
		"zero header":      func() error { _, err := FixedJWSHeader{}.Sign(nil, f.csk); return err }(),
		"nil signer":       func() error { _, err := h.Sign(nil, nil); return err }(),
		"P-384 signer":     func() error { _, err := h.Sign(nil, p384); return err }(),
		"signer fails":     func() error { _, err := h.Sign(nil, badSigner{k: f.csk, err: errors.New("down")}); return err }(),
		"raw signature":    func() error { _, err := h.Sign(nil, badSigner{k: f.csk, out: raw}); return err }(),
		"DER and trailing": func() error { _, err := h.Sign(nil, badSigner{k: f.csk, out: append(der, 0)}); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: signed", name)
		}
	}
}

// marshalResponse is the generic encoding appendResponse must equal.
func marshalResponse(t testing.TB, ver string, nonce []byte, iat int64, data json.RawMessage) []byte {
	t.Helper()
	b, err := json.Marshal(responseWire{Ver: ver, Nonce: nonce, IAT: &iat, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeResponseMatchesMarshal(t *testing.T) {
	nonce := bytes.Repeat([]byte{0xfb}, 17) // + and / in standard base64, and padding
	for name, data := range map[string]string{
		"empty":               `{}`,
		"compact":             `{"success":true,"signature":"AAEC+/8="}`,
		"whitespace":          "{ \"a\" :\t[1, 2,\n3] ,\r\"b\": \"x y\" }",
		"html":                `{"a":"<script>&</script>"}`,
		"line separators":     "{\"a\":\"\u2028\u2029\"}",
		"other 0xE2 rune":     `{"a":"€"}`,
		"escapes kept":        `{"a":"\u00e9\n\"\\"}`,
		"nested":              `{"a":{"b":[{"c":null},true,false,-1.5e3]}}`,
		"html and whitespace": `{ "a" : "<" }`,
	} {
		t.Run(name, func(t *testing.T) {
			iat := time.Unix(1767225600, 0)
			got, err := EncodeResponse(Response{Nonce: nonce, IssuedAt: iat, Data: json.RawMessage(data)})
			if err != nil {
				t.Fatal(err)
			}
			if want := marshalResponse(t, Version, nonce, iat.Unix(), json.RawMessage(data)); !bytes.Equal(got, want) {
				t.Fatalf("\n got %s\nwant %s", got, want)
			}
			if _, err := DecodeResponse(got); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// FuzzEncodeResponse: for every data object, the hand-written encoding is
// json.Marshal's.
func FuzzEncodeResponse(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":"<&>"}`, "{ \"a\":\"\u2028\" }", `{"a":[1,{"b":"c d"}]}`} {
		f.Add([]byte(s), int64(0))
	}
	nonce := make([]byte, MinNonceSize)
	f.Fuzz(func(t *testing.T, data []byte, iat int64) {
		if !json.Valid(data) || !isObject(data) || iat < 0 || iat > 1<<40 {
			return
		}
		got, err := EncodeResponse(Response{Nonce: nonce, IssuedAt: time.Unix(iat, 0), Data: data})
		if err != nil {
			t.Fatal(err)
		}
		if want := marshalResponse(t, Version, nonce, iat, data); !bytes.Equal(got, want) {
			t.Fatalf("\n got %q\nwant %q", got, want)
		}
	})
}

// protectedHeader2FAMarshal is the generic encoding ProtectedHeader2FA
// must equal.
func protectedHeader2FAMarshal(t testing.TB, sessionID string) string {
	hdr, err := json.Marshal(header2FA{Alg: AlgDir, Enc: EncA256GCM, Typ: TypJWE2FA, Cty: CtyJWT, KID: sessionID})
	if err != nil {
		t.Fatal(err)
	}
	return b64url(hdr)
}

func TestProtectedHeader2FAMatchesMarshal(t *testing.T) {
	for _, id := range []string{
		"AbC-_09", strings.Repeat("x", 256), "a b", `q"uote`, `back\slash`, "<tag>&", "ctl\x01", "del\x7f", "é", "\u2028",
	} {
		if got, want := ProtectedHeader2FA(id), protectedHeader2FAMarshal(t, id); got != want {
			t.Errorf("%q: got %s, want %s", id, got, want)
		}
	}
}

func FuzzProtectedHeader2FA(f *testing.F) {
	for _, s := range []string{"s", `"`, "\\", "<", "\x00", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := ProtectedHeader2FA(id), protectedHeader2FAMarshal(t, id); got != want {
			t.Fatalf("%q: got %s, want %s", id, got, want)
		}
	})
}
