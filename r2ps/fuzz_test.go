package r2ps

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Fuzz targets for every decoder. Each checks that a failure is a typed
// error with an ILLEGAL_REQUEST_DATA-class code (never a panic, never an
// untyped error), and that whatever decodes also survives a re-encode.

// fixedFixture has keys derived from labels, so that a crashing input
// replays against the same keys in every fuzz worker.
func fixedFixture(t testing.TB) *fixture {
	t.Helper()
	scalar := func(label string) []byte { s := sha256.Sum256([]byte("r2ps fuzz " + label)); return s[:] }
	agreeKey := func(label string) *ecdh.PrivateKey {
		k, err := ecdh.P256().NewPrivateKey(scalar(label))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	signKey := func(label string) *ecdsa.PrivateKey {
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar(label))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	f := newFixture(t)
	f.serverAgree, f.ssk, f.csk, f.cak = agreeKey("server"), signKey("ssk"), signKey("csk"), agreeKey("cak")
	f.sessionKey = scalar("session")
	f.serverKID = Thumbprint(ecdhToECDSA(t, f.serverAgree.PublicKey()))
	f.sskKID, f.cskKID = Thumbprint(&f.ssk.PublicKey), Thumbprint(&f.csk.PublicKey)
	f.cakKID = Thumbprint(ecdhToECDSA(t, f.cak.PublicKey()))
	return f
}

// wantTyped fails unless err is nil or an input error of this package.
func wantTyped(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("untyped error: %v", err)
	}
	if c := Code(err); c != CodeIllegalRequestData && c != CodeUnauthorized && c != CodeUnsupportedRequestType {
		t.Fatalf("input error with code %s: %v", c, err)
	}
}

func seedRequest(t testing.TB, f *fixture) Request {
	return f.request(t, TypeCreateSession, TFARequest{Protocol: ProtocolOPAQUE, State: StateEvaluate, PData: []byte("KE1")})
}

func FuzzOpen1FA(f *testing.F) {
	fx := fixedFixture(f)
	req := seedRequest(f, fx)
	f.Add(fx.seal1FA(f, req))
	f.Add(fx.sealResponse(f, Mode1FA, req.Nonce, DeleteKeyResponse{Success: true}))
	f.Fuzz(func(t *testing.T, msg []byte) {
		env, err := Open1FA(msg, fx.agree)
		wantTyped(t, err)
		if err == nil && (env.KID == "" || env.ClientID == "" || env.Context == "" || !bytes.HasPrefix(msg, []byte(env.ProtectedHeader+"."))) {
			t.Fatalf("opened with empty members: %+v", env)
		}
		_, err = OpenResponse1FA(msg, fx.cak)
		wantTyped(t, err)
		_, _, err = EnvelopeMode(msg)
		wantTyped(t, err)
	})
}

func FuzzOpen2FA(f *testing.F) {
	fx := fixedFixture(f)
	f.Add(fx.seal2FA(f, seedRequest(f, fx)))
	f.Add([]byte(ProtectedHeader2FA(fx.sessionID) + "..AAAAAAAAAAAAAAAA..AAAAAAAAAAAAAAAAAAAAAA"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		env, err := Open2FA(msg, fx.lookup)
		wantTyped(t, err)
		if err == nil && env.SessionID != fx.sessionID {
			t.Fatalf("opened under session %q", env.SessionID)
		}
	})
}

func FuzzVerifyJWS(f *testing.F) {
	fx := fixedFixture(f)
	f.Add(fx.signRequest(f, seedRequest(f, fx), "aGVhZGVy"))
	f.Add(signRaw(f, `{"alg":"ES256","kid":"`+fx.cskKID+`","typ":"r2ps-request+jwt","jwk":`+
		string(mustJSON(f, newECJWK(ecdhPub(f, fx.csk))))+`}`, []byte("{}"), fx.csk))
	f.Fuzz(func(t *testing.T, msg []byte) {
		payload, hdr, err := VerifyJWS(msg, TypRequest, fx.cskKey)
		wantTyped(t, err)
		if err == nil && (hdr.Alg != AlgES256 || hdr.KID != fx.cskKID || hdr.Typ != TypRequest || payload == nil) {
			t.Fatalf("verified %+v", hdr)
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	fx := fixedFixture(f)
	req := seedRequest(f, fx)
	req.JWEHash = JWEHash("x")
	b, _ := EncodeRequest(req)
	f.Add(b)
	f.Add([]byte(`{"ver":"1.0","nonce":"AAAAAAAAAAAAAAAAAAAAAA==","iat":0,"type":"hsm_list_keys","jwe_hash":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","data":{}}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := DecodeRequest(payload)
		wantTyped(t, err)
		if err != nil {
			return
		}
		again, err := EncodeRequest(r)
		if err != nil {
			t.Fatalf("decoded request does not encode: %v", err)
		}
		r2, err := DecodeRequest(again)
		if err != nil || !bytes.Equal(r2.Nonce, r.Nonce) || r2.Type != r.Type || !r2.IssuedAt.Equal(r.IssuedAt) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	b, _ := EncodeResponse(Response{Nonce: make([]byte, 16), Data: []byte(`{"success":true,"key_info":[]}`)})
	f.Add(b)
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := DecodeResponse(payload)
		wantTyped(t, err)
		if err == nil {
			if _, err := EncodeResponse(r); err != nil {
				t.Fatalf("decoded response does not encode: %v", err)
			}
		}
	})
}

func FuzzDecodeCompat(f *testing.F) {
	f.Add(compatPayload(f, nil))
	for _, name := range vectorFiles() {
		v := loadVectors(f, name)
		pair := v.Protocol["request_response_pairs"].([]any)[0].(map[string]any)
		f.Add([]byte(pair["request"].(string)))
		f.Add(compatRequestFor(f, TypeAgreeECDH, v.HSM["ecdh_request"], "s"))
		f.Add(compatRequestFor(f, Alias2FAAuthenticate, v.str(f, "tfa_auth_finalize_req"), "s"))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		req, meta, err := DecodeCompat(payload)
		wantTyped(t, err)
		if err != nil {
			return
		}
		if meta.ClientID == "" || meta.Context == "" || meta.Nonce == "" || RequiredMode(req.Type) == ModeNone {
			t.Fatalf("decoded %+v %+v", req, meta)
		}
		// What DecodeCompat returns is a strict request.
		req.JWEHash = make([]byte, JWEHashSize)
		b, err := EncodeRequest(req)
		if err != nil {
			t.Fatalf("normalised request does not encode: %v", err)
		}
		if _, err := DecodeRequest(b); err != nil {
			t.Fatalf("normalised request is not strict: %v", err)
		}
		var into any
		switch req.Type {
		case TypeCreateSession, Type2FARegistration, Type2FAUpdate:
			into = new(TFARequest)
		case TypeSignECDSA:
			into = new(SignRequest)
		case TypeAgreeECDH:
			into = new(ECDHRequest)
		default:
			return
		}
		wantTyped(t, DecodeData(req.Data, into))
	})
}

func FuzzDecodeData(f *testing.F) {
	f.Add([]byte(`{"protocol":"opaque","state":"finalize","p_data":"AQ==","authorization":"AQ==","authorization_type":"otp","cak":{"kty":"EC","crv":"P-256","x":"xam5PpXA1nR9hoLOi_1oZyyZsRJSD41Ynz1JRK9WcuM","y":"eb2XkDlgPm6s5I5WUmCthEMsTUSc0Wrm3NkDU4DDv38"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r TFARequest
		err := DecodeData(data, &r)
		wantTyped(t, err)
		if err != nil {
			return
		}
		b, err := EncodeData(r)
		if err != nil {
			t.Fatalf("decoded data does not encode: %v", err)
		}
		var r2 TFARequest
		if err := DecodeData(b, &r2); err != nil || !bytes.Equal(r2.PData, r.PData) || r2.State != r.State {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeLenient(f *testing.F) {
	for _, s := range []string{"", "+/8=", "-_8", "YWJjZA==", "YWJjZA", "Y29uZm9ybWFuY2Vub25jZQ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := decodeLenient(s)
		if err != nil {
			return
		}
		// Only canonical encodings decode: s is one of the four flavours of b.
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if enc.EncodeToString(b) == s {
				return
			}
		}
		t.Fatalf("%q decoded to %x, which encodes otherwise", s, b)
	})
}

// FuzzClassify: Classify never allocates more than its error, and it agrees
// with the parsers: what it refuses they refuse, a JWS is never a JWE and
// what parses as a JWE it calls one.
func FuzzClassify(f *testing.F) {
	fx := fixedFixture(f)
	req := seedRequest(f, fx)
	f.Add(fx.seal1FA(f, req))
	f.Add(fx.seal2FA(f, req))
	f.Add(fx.signRequest(f, req, "x"))
	f.Add([]byte("...."))
	f.Add(append(bytes.Repeat([]byte{'A'}, MaxHeaderSize+1), ".."...))
	f.Fuzz(func(t *testing.T, body []byte) {
		kind, err := Classify(body)
		wantTyped(t, err)
		_, jweErr := ParseJWE(body)
		_, _, jwsErr := VerifyJWS(body, TypRequest, fx.cskKey)
		wantTyped(t, jweErr)
		switch {
		case err != nil && (kind != KindNone || jweErr == nil || jwsErr == nil):
			t.Fatalf("Classify refused (%v) what a parser took: JWE %v, JWS %v", err, jweErr, jwsErr)
		case kind == KindJWS && jweErr == nil, kind == KindJWE && jwsErr == nil:
			t.Fatalf("Classify said %v: JWE %v, JWS %v", kind, jweErr, jwsErr)
		}
	})
}

// FuzzParseJWE: one parse gives the same answers as the one-shot functions.
func FuzzParseJWE(f *testing.F) {
	fx := fixedFixture(f)
	req := seedRequest(f, fx)
	f.Add(fx.seal1FA(f, req))
	f.Add(fx.seal2FA(f, req))
	f.Add(craftRaw(f, []byte(`{"typ":"r2ps-2fa","kid":"s","epk":null}`), fx.sessionKey))
	f.Fuzz(func(t *testing.T, msg []byte) {
		j, err := ParseJWE(msg)
		wantTyped(t, err)
		mode, kid, modeErr := EnvelopeMode(msg)
		if (err == nil) != (modeErr == nil) {
			t.Fatalf("ParseJWE %v, EnvelopeMode %v", err, modeErr)
		}
		if err != nil {
			return
		}
		if j.Mode() != mode || j.KID() != kid || !bytes.HasPrefix(msg, []byte(j.ProtectedHeader()+".")) {
			t.Fatalf("ParseJWE %v %q, EnvelopeMode %v %q", j.Mode(), j.KID(), mode, kid)
		}
		_, err1 := j.Open1FA(fx.agree)
		_, want1 := Open1FA(msg, fx.agree)
		_, err2 := j.Open2FA(fx.lookup)
		_, want2 := Open2FA(msg, fx.lookup)
		wantTyped(t, err1)
		wantTyped(t, err2)
		if fmt.Sprint(err1) != fmt.Sprint(want1) || fmt.Sprint(err2) != fmt.Sprint(want2) {
			t.Fatalf("methods %v / %v, functions %v / %v", err1, err2, want1, want2)
		}
		if err1 == nil && err2 == nil {
			t.Fatal("opened in both modes")
		}
	})
}

// FuzzStrictJSON: the value limit only ever refuses more, with its own
// message, and what the unlimited checker accepts is valid JSON.
func FuzzStrictJSON(f *testing.F) {
	f.Add([]byte(`{"a":[1,2,{"b":null}],"c":"d"}`))
	f.Add([]byte(members(maxJSONValues)))
	f.Add([]byte(strings.Repeat("[", 40) + strings.Repeat("]", 40)))
	f.Fuzz(func(t *testing.T, data []byte) {
		limited := checkJSON(data, nil)
		unlimited := checkJSONN(data, nil, 0)
		switch {
		case unlimited == nil && !json.Valid(data):
			t.Fatalf("accepted invalid JSON %q", data)
		case limited == nil && unlimited != nil:
			t.Fatalf("limited accepted what unlimited refused: %v", unlimited)
		case limited != nil && unlimited == nil && !strings.Contains(limited.Error(), "JSON values"):
			t.Fatalf("limited refused with %v", limited)
		}
	})
}
