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
			parsed, err := jose.ParseSignedCompact(got, []jose.SignatureAlgorithm{jose.ES256})
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

// The hand-written readers of the request path must accept only what the
// strict decoder accepts, with the same values; anything else they leave
// to it.

// sameRequestWire compares two decoded payloads.
func sameRequestWire(a, b requestWire) bool {
	return a.Ver == b.Ver && bytes.Equal(a.Nonce, b.Nonce) && (a.IAT == nil) == (b.IAT == nil) &&
		(a.IAT == nil || *a.IAT == *b.IAT) && a.Type == b.Type && bytes.Equal(a.JWEHash, b.JWEHash) &&
		bytes.Equal(a.Data, b.Data)
}

// checkRequestFast fails when readCanonical accepts a payload that the
// strict decoder refuses or reads differently.
func checkRequestFast(t *testing.T, p []byte) (fast bool) {
	t.Helper()
	var slow requestWire
	slowErr := decodeStrict(p, &slow, ErrMalformed)
	var w requestWire
	if checkJSON(p, requestWireType) != nil || !w.readCanonical(p) {
		return false
	}
	if slowErr != nil {
		t.Fatalf("%q: read by hand, refused by the strict decoder: %v", p, slowErr)
	}
	if !sameRequestWire(w, slow) {
		t.Fatalf("%q: by hand %+v, strict decoder %+v", p, w, slow)
	}
	return true
}

func canonicalRequest(t testing.TB) []byte {
	p, err := EncodeRequest(Request{Nonce: bytes.Repeat([]byte{0xfb}, 16), IssuedAt: time.Unix(1767225600, 0),
		Type: TypeSignECDSA, JWEHash: make([]byte, JWEHashSize), Data: json.RawMessage(`{"kid":"k","tbs":"AA=="}`)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadCanonicalRequest(t *testing.T) {
	good := string(canonicalRequest(t))
	if !checkRequestFast(t, []byte(good)) {
		t.Fatalf("our own payload is not read by hand: %s", good)
	}
	r, err := DecodeRequest([]byte(good))
	if err != nil || r.Type != TypeSignECDSA || string(r.Data) != `{"kid":"k","tbs":"AA=="}` || r.IssuedAt.Unix() != 1767225600 {
		t.Fatal(r, err)
	}
	// Each of these is left to the strict decoder, which reads it the same
	// or refuses it.
	for name, p := range map[string]string{
		"white space":       strings.Replace(good, `"ver":`, `"ver": `, 1),
		"other order":       strings.Replace(strings.Replace(good, `{"ver":"1.0",`, `{`, 1), `,"data":`, `,"ver":"1.0","data":`, 1),
		"escaped ver":       strings.Replace(good, `"1.0"`, `"1\u002e0"`, 1),
		"iat with fraction": strings.Replace(good, `1767225600`, `1767225600.0`, 1),
		"iat exponent":      strings.Replace(good, `1767225600`, `17672256e2`, 1),
		"iat negative":      strings.Replace(good, `1767225600`, `-1`, 1),
		"iat leading zero":  strings.Replace(good, `1767225600`, `01767225600`, 1),
		"iat too long":      strings.Replace(good, `1767225600`, `12345678901234567890`, 1),
		"nonce URL base64":  strings.Replace(good, `"+/v7`, `"-_v7`, 1),
		"nonce null":        strings.Replace(good, `"+/v7+/v7+/v7+/v7+/v7+w=="`, `null`, 1),
		"data not object":   strings.Replace(good, `{"kid":"k","tbs":"AA=="}`, `[1]`, 1),
		"data spaced":       strings.Replace(good, `{"kid":"k","tbs":"AA=="}`, `{"kid":"k"} `, 1),
		"duplicate in data": strings.Replace(good, `"tbs":"AA=="`, `"kid":"x"`, 1),
		"trailing member":   strings.TrimSuffix(good, "}") + `,"x":1}`,
		"trailing space":    good + " ",
	} {
		t.Run(name, func(t *testing.T) {
			if checkRequestFast(t, []byte(p)) {
				t.Fatalf("read by hand: %s", p)
			}
		})
	}
}

func FuzzDecodeRequestFast(f *testing.F) {
	good := canonicalRequest(f)
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(`"tbs":"AA=="`), []byte(`"kid":"x"`), 1))
	f.Add(bytes.Replace(good, []byte(`1767225600`), []byte(`0`), 1))
	f.Fuzz(func(t *testing.T, p []byte) {
		checkRequestFast(t, p)
	})
}

// checkHeadersFlat fails when a flat reader accepts a header that the
// strict decoder refuses or reads differently.
func checkHeadersFlat(t *testing.T, raw []byte) {
	t.Helper()
	var js, jsSlow jwsHeader
	slowErr := decodeStrict(raw, &jsSlow, ErrHeader)
	if js.readFlat(raw) {
		if slowErr != nil {
			t.Fatalf("%q: JWS header read flat, refused by the strict decoder: %v", raw, slowErr)
		}
		if js.Alg != jsSlow.Alg || js.KID != jsSlow.KID || js.Typ != jsSlow.Typ || jsSlow.JWK != nil {
			t.Fatalf("%q: flat %+v, strict %+v", raw, js, jsSlow)
		}
	}
	var je, jeSlow jweHeader
	slowErr = decodeStrict(raw, &jeSlow, ErrHeader)
	if je.readFlat(raw) {
		if slowErr != nil {
			t.Fatalf("%q: JWE header read flat, refused by the strict decoder: %v", raw, slowErr)
		}
		if je.Alg != jeSlow.Alg || je.Enc != jeSlow.Enc || je.Typ != jeSlow.Typ || je.Cty != jeSlow.Cty || je.KID != jeSlow.KID ||
			!bytes.Equal(je.APU, jeSlow.APU) || !bytes.Equal(je.APV, jeSlow.APV) || jeSlow.EPK != nil {
			t.Fatalf("%q: flat %+v, strict %+v", raw, je, jeSlow)
		}
	}
}

func TestFlatHeaders(t *testing.T) {
	jws := `{"alg":"ES256","kid":"k1","typ":"r2ps-request+jwt"}`
	jwe, _ := decodeB64URL([]byte(ProtectedHeader2FA("sid")))
	for _, tc := range []struct {
		name, raw string
		jwsFlat   bool
		jweFlat   bool
	}{
		{"our JWS header", jws, true, true},
		{"our 2FA header", string(jwe), false, true},
		{"other order", `{"typ":"r2ps-request+jwt","alg":"ES256","kid":"k1"}`, true, true},
		{"1FA without epk", `{"alg":"ECDH-ES","enc":"A256GCM","typ":"r2ps-1fa","cty":"JWT","kid":"k","apu":"dQ","apv":"aHNt"}`, false, true},
		{"empty", `{}`, true, true},
		{"duplicate kid", `{"alg":"ES256","kid":"a","kid":"b","typ":"r2ps-request+jwt"}`, false, false},
		{"duplicate typ", `{"alg":"dir","typ":"r2ps-2fa","typ":"x"}`, false, false},
		{"duplicate apu", `{"apu":"dQ","apu":"dg"}`, false, false},
		{"unknown member", `{"alg":"ES256","kid":"k","typ":"t","crit":"x"}`, false, false},
		{"case-folded member", `{"ALG":"ES256"}`, false, false},
		{"escaped value", `{"alg":"ES\u0032\u00356"}`, false, false},
		{"non-ASCII value", `{"kid":"é"}`, false, false},
		{"space", `{"alg": "ES256"}`, false, false},
		{"number value", `{"alg":1}`, false, false},
		{"object value", `{"jwk":{}}`, false, false},
		{"trailing", jws + `{}`, false, false},
		{"unterminated", `{"alg":"ES256"`, false, false},
		{"too many members", `{"alg":"a","enc":"b","typ":"c","cty":"d","kid":"e","apu":"f","apv":"g","x":"h"}`, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var js jwsHeader
			var je jweHeader
			if got := js.readFlat([]byte(tc.raw)); got != tc.jwsFlat {
				t.Errorf("JWS header read flat: %v, want %v", got, tc.jwsFlat)
			}
			if got := je.readFlat([]byte(tc.raw)); got != tc.jweFlat {
				t.Errorf("JWE header read flat: %v, want %v", got, tc.jweFlat)
			}
			checkHeadersFlat(t, []byte(tc.raw))
		})
	}
}

func FuzzFlatHeaders(f *testing.F) {
	jwe, _ := decodeB64URL([]byte(ProtectedHeader2FA("sid")))
	for _, s := range []string{`{"alg":"ES256","kid":"k1","typ":"r2ps-request+jwt"}`, string(jwe), `{}`, `{"apu":"dQ","apu":"dg"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkHeadersFlat(t, raw)
	})
}

// checkSignDataFlat fails when SignRequest.readFlat accepts data that the
// strict decoder refuses or reads differently.
func checkSignDataFlat(t *testing.T, data []byte) bool {
	t.Helper()
	var slow SignRequest
	slowErr := decodeStrict(data, &slow, ErrMalformed)
	var r SignRequest
	if !r.readFlat(data) {
		return false
	}
	if slowErr != nil {
		t.Fatalf("%q: read flat, refused by the strict decoder: %v", data, slowErr)
	}
	if r.KID != slow.KID || !bytes.Equal(r.TBSHash, slow.TBSHash) {
		t.Fatalf("%q: flat %+v, strict %+v", data, r, slow)
	}
	return true
}

func TestSignDataFlat(t *testing.T) {
	good := `{"kid":"0123456789abcdef0123456789abcdef","tbs_hash":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}`
	for _, tc := range []struct {
		name, data string
		flat       bool
	}{
		{"ours", good, true},
		{"other order", `{"tbs_hash":"AA==","kid":"k"}`, true},
		{"duplicate kid", `{"kid":"a","kid":"b"}`, false},
		{"duplicate tbs_hash", `{"tbs_hash":"AA==","tbs_hash":"AQ=="}`, false},
		{"unknown member", `{"kid":"k","x":"y"}`, false},
		{"URL base64", `{"tbs_hash":"-_8="}`, false},
		{"unpadded", `{"tbs_hash":"AA"}`, false},
		{"escaped kid", `{"kid":"\u0030"}`, false},
		{"null", `{"kid":null}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkSignDataFlat(t, []byte(tc.data)); got != tc.flat {
				t.Fatalf("read flat: %v, want %v", got, tc.flat)
			}
		})
	}
	var r SignRequest
	if err := DecodeData(json.RawMessage(good), &r); err != nil || r.KID != "0123456789abcdef0123456789abcdef" || len(r.TBSHash) != 32 {
		t.Fatal(r, err)
	}
	if err := DecodeData(json.RawMessage(`{"kid":"k","tbs_hash":"AA=="}`), &r); !errors.Is(err, ErrMalformed) {
		t.Fatalf("invalid data read flat is still validated: %v", err)
	}
}

func FuzzSignDataFlat(f *testing.F) {
	f.Add([]byte(`{"kid":"k","tbs_hash":"AA=="}`))
	f.Add([]byte(`{"kid":"a","kid":"b"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSignDataFlat(t, data)
	})
}
