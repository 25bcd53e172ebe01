package r2ps

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
)

func TestRoundTrip1FA(t *testing.T) {
	f := newFixture(t)
	data := TFARequest{Protocol: ProtocolOPAQUE, State: StateEvaluate, PData: []byte("KE1"), Task: Task2FAUpdate, SessionDuration: 300}
	req := f.request(t, TypeCreateSession, data)
	msg := f.seal1FA(t, req)

	mode, kid, err := EnvelopeMode(msg)
	if err != nil || mode != Mode1FA || kid != f.serverKID {
		t.Fatalf("EnvelopeMode = %v %q %v, want 1FA %q", mode, kid, err, f.serverKID)
	}
	env, err := Open1FA(msg, f.agree)
	if err != nil {
		t.Fatal(err)
	}
	if env.KID != f.serverKID || env.ClientID != f.clientID || env.Context != f.context {
		t.Fatalf("envelope %q %q %q", env.KID, env.ClientID, env.Context)
	}
	if !strings.HasPrefix(string(msg), env.ProtectedHeader+"..") {
		t.Fatal("ProtectedHeader is not the first part as received")
	}
	got, _, err := f.serverOpen(t, msg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Nonce, req.Nonce) || got.Type != req.Type || !got.IssuedAt.Equal(req.IssuedAt) || got.Version != Version {
		t.Fatalf("request %+v, sent %+v", got, req)
	}
	var back TFARequest
	if err := DecodeData(got.Data, &back); err != nil {
		t.Fatal(err)
	}
	if back.State != StateEvaluate || string(back.PData) != "KE1" || back.SessionDuration != 300 || back.Task != Task2FAUpdate {
		t.Fatalf("data %+v", back)
	}

	// The answer travels back under the CAK, apu/apv swapped (§4.1.1).
	resp := f.sealResponse(t, Mode1FA, got.Nonce, TFAResponse{Success: true, SessionID: "s1", PData: []byte("KE2")})
	renv, err := OpenResponse1FA(resp, f.cak)
	if err != nil {
		t.Fatal(err)
	}
	if renv.KID != f.cakKID || renv.ClientID != f.clientID || renv.Context != f.context {
		t.Fatalf("response envelope %q %q %q", renv.KID, renv.ClientID, renv.Context)
	}
	payload, hdr, err := VerifyJWS(renv.JWS, TypResponse, f.sskKey)
	if err != nil || hdr.KID != f.sskKID {
		t.Fatal(err, hdr.KID)
	}
	r, err := DecodeResponse(payload)
	if err != nil || !bytes.Equal(r.Nonce, req.Nonce) {
		t.Fatal(err, r.Nonce)
	}
	var tr TFAResponse
	if err := DecodeData(r.Data, &tr); err != nil || tr.SessionID != "s1" || string(tr.PData) != "KE2" {
		t.Fatal(err, tr)
	}
	// The server cannot open its own response, nor the client a request.
	if _, err := Open1FA(resp, f.agree); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("server opened a response: %v", err)
	}
	if _, err := OpenResponse1FA(msg, f.cak); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("client opened a request: %v", err)
	}
}

func TestRoundTrip2FA(t *testing.T) {
	f := newFixture(t)
	req := f.request(t, TypeSignECDSA, SignRequest{KID: "0123456789abcdef0123456789abcdef", TBSHash: randBytes(t, 32)})
	msg := f.seal2FA(t, req)
	mode, kid, err := EnvelopeMode(msg)
	if err != nil || mode != Mode2FA || kid != f.sessionID {
		t.Fatalf("EnvelopeMode = %v %q %v", mode, kid, err)
	}
	got, protected, err := f.serverOpen(t, msg)
	if err != nil {
		t.Fatal(err)
	}
	if protected != ProtectedHeader2FA(f.sessionID) || !bytes.Equal(got.Nonce, req.Nonce) {
		t.Fatal("header or nonce changed")
	}
	var sr SignRequest
	if err := DecodeData(got.Data, &sr); err != nil {
		t.Fatal(err)
	}
	resp := f.sealResponse(t, Mode2FA, got.Nonce, SignResponse{Success: true, Signature: []byte{0x30, 6, 2, 1, 1, 2, 1, 1}})
	env, err := Open2FA(resp, f.lookup)
	if err != nil || env.SessionID != f.sessionID {
		t.Fatal(err)
	}
	if _, _, err := VerifyJWS(env.JWS, TypResponse, f.sskKey); err != nil {
		t.Fatal(err)
	}
	// A request JWS is no response, and the other way round.
	if _, _, err := VerifyJWS(env.JWS, TypRequest, f.sskKey); !errors.Is(err, ErrHeader) {
		t.Fatalf("typ not enforced: %v", err)
	}
}

func TestTamperEveryByte(t *testing.T) {
	f := newFixture(t)
	req := f.request(t, TypeCreateSession, TFARequest{Protocol: ProtocolOPAQUE, State: StateEvaluate, PData: []byte("x")})
	cases := []struct {
		name string
		msg  []byte
		open func([]byte) error
	}{
		{"1FA request", f.seal1FA(t, req), func(m []byte) error { _, err := Open1FA(m, f.agree); return err }},
		{"1FA response", f.sealResponse(t, Mode1FA, req.Nonce, DeleteKeyResponse{Success: true}), func(m []byte) error { _, err := OpenResponse1FA(m, f.cak); return err }},
		{"2FA", f.seal2FA(t, req), func(m []byte) error { _, err := Open2FA(m, f.lookup); return err }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.open(c.msg); err != nil {
				t.Fatal(err)
			}
			for i := range c.msg {
				err := c.open(flip(c.msg, i))
				wantSentinel(t, err, ErrMalformed, ErrHeader, ErrDecrypt, ErrUnknownSession)
				if code := Code(err); code != CodeIllegalRequestData && code != CodeUnauthorized {
					t.Fatalf("byte %d: code %s", i, code)
				}
			}
		})
	}
	t.Run("inner JWS", func(t *testing.T) {
		jws := f.signRequest(t, req, "aGVhZGVy")
		for i := range jws {
			_, _, err := VerifyJWS(flip(jws, i), TypRequest, f.cskKey)
			wantSentinel(t, err, ErrMalformed, ErrHeader, ErrSignature, ErrUnknownKey)
		}
	})
}

func TestWrongKeys(t *testing.T) {
	f, other := newFixture(t), newFixture(t)
	other.sessionID = f.sessionID
	req := f.request(t, TypeCreateSession, TFARequest{Protocol: ProtocolOPAQUE, State: StateEvaluate, PData: []byte("x")})
	msg1 := f.seal1FA(t, req)
	if _, err := Open1FA(msg1, other.agree); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("other server key: %v", err)
	}
	resp := f.sealResponse(t, Mode1FA, req.Nonce, DeleteKeyResponse{Success: true})
	if _, err := OpenResponse1FA(resp, other.cak); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("other CAK: %v", err)
	}
	msg2 := f.seal2FA(t, req)
	if _, err := Open2FA(msg2, other.lookup); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("other session key: %v", err)
	}
	other.sessionID = "another-session"
	_, err := Open2FA(msg2, other.lookup)
	if !errors.Is(err, ErrUnknownSession) || Code(err) != CodeUnauthorized {
		t.Fatalf("unknown session: %v (%s)", err, Code(err))
	}
	jws := f.signRequest(t, req, "aGVhZGVy")
	if _, _, err := VerifyJWS(jws, TypRequest, other.cskKey); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown kid: %v", err)
	}
	other.cskKID = f.cskKID
	if _, _, err := VerifyJWS(jws, TypRequest, other.cskKey); !errors.Is(err, ErrSignature) {
		t.Fatalf("other CSK: %v", err)
	}
	// A failing or broken agree function never yields plaintext.
	boom := errors.New("hsm down")
	if _, err := Open1FA(msg1, func(*ecdh.PublicKey) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) || Code(err) != CodeServerError {
		t.Fatalf("agree error: %v", err)
	}
	if _, err := Open1FA(msg1, func(*ecdh.PublicKey) ([]byte, error) { return make([]byte, 31), nil }); err == nil || Code(err) != CodeServerError {
		t.Fatalf("short Z: %v", err)
	}
	if _, err := Open2FA(msg2, func(string) ([]byte, error) { return make([]byte, 16), nil }); err == nil || Code(err) != CodeServerError {
		t.Fatalf("short session key: %v", err)
	}
	// A stale jwe_hash (the JWS signed for another header) is refused.
	jwsOther := f.signRequest(t, req, ProtectedHeader2FA("other"))
	msg, err := Seal2FA(jwsOther, f.sessionKey, f.sessionID, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.serverOpen(t, msg); !errors.Is(err, ErrJWEHash) {
		t.Fatalf("jwe_hash: %v", err)
	}
}

func TestSwappedPartyInfo(t *testing.T) {
	f := newFixture(t)
	req := f.request(t, TypeCreateSession, TFARequest{Protocol: ProtocolOPAQUE, State: StateEvaluate, PData: []byte("x")})
	msg := f.seal1FA(t, req)
	// Swap apu and apv in the header: the AAD and the KDF input change.
	h := decodeHeader(t, msg)
	h["apu"], h["apv"] = h["apv"], h["apu"]
	if _, err := Open1FA(withHeader(t, msg, h), f.agree); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("swapped apu/apv: %v", err)
	}
	// A sender that swaps them in the KDF but not in the header fails too.
	eph := newECDH(t)
	z, _ := eph.ECDH(f.serverAgree.PublicKey())
	cek := concatKDF(z, EncA256GCM, []byte(f.context), []byte(f.clientID))
	m := craft1FA(t, eph, f.serverKID, f.clientID, f.context, nil, cek)
	if _, err := Open1FA(m, f.agree); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("KDF with swapped party info: %v", err)
	}
	// And the same message with matching KDF input opens: craft1FA is sound.
	cek = concatKDF(z, EncA256GCM, []byte(f.clientID), []byte(f.context))
	if _, err := Open1FA(craft1FA(t, eph, f.serverKID, f.clientID, f.context, nil, cek), f.agree); err != nil {
		t.Fatal(err)
	}
}

func TestNoPrefixDecodes(t *testing.T) {
	f := newFixture(t)
	req := f.request(t, TypeCreateSession, TFARequest{Protocol: ProtocolOPAQUE, State: StateEvaluate, PData: []byte("x")})
	jws := f.signRequest(t, req, "aGVhZGVy")
	payload, _, err := VerifyJWS(jws, TypRequest, f.cskKey)
	if err != nil {
		t.Fatal(err)
	}
	respPayload, _ := EncodeResponse(Response{Nonce: req.Nonce, IssuedAt: req.IssuedAt, Data: []byte(`{"success":true}`)})
	compat := []byte(`{"ver":"1.0","nonce":"Y29uZm9ybWFuY2Vub25jZQ","iat":1716400000,"data":{"curve":"P-256"},"client_id":"c","context":"hsm","type":"p256_generate"}`)
	cases := []struct {
		name   string
		msg    []byte
		decode func([]byte) error
	}{
		{"Open1FA", f.seal1FA(t, req), func(m []byte) error { _, err := Open1FA(m, f.agree); return err }},
		{"OpenResponse1FA", f.sealResponse(t, Mode1FA, req.Nonce, DeleteKeyResponse{Success: true}), func(m []byte) error { _, err := OpenResponse1FA(m, f.cak); return err }},
		{"Open2FA", f.seal2FA(t, req), func(m []byte) error { _, err := Open2FA(m, f.lookup); return err }},
		{"EnvelopeMode", f.seal2FA(t, req), func(m []byte) error { _, _, err := EnvelopeMode(m); return err }},
		{"VerifyJWS", jws, func(m []byte) error { _, _, err := VerifyJWS(m, TypRequest, f.cskKey); return err }},
		{"DecodeRequest", payload, func(m []byte) error { _, err := DecodeRequest(m); return err }},
		{"DecodeResponse", respPayload, func(m []byte) error { _, err := DecodeResponse(m); return err }},
		{"DecodeCompat", compat, func(m []byte) error { _, _, err := DecodeCompat(m); return err }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.decode(c.msg); err != nil {
				t.Fatalf("full message: %v", err)
			}
			for i := range c.msg {
				err := c.decode(c.msg[:i])
				if err == nil {
					t.Fatalf("prefix of %d bytes decoded", i)
				}
				if Code(err) != CodeIllegalRequestData {
					t.Fatalf("prefix of %d bytes: %v (%s)", i, err, Code(err))
				}
			}
		})
	}
}

func TestOversize(t *testing.T) {
	f := newFixture(t)
	big := bytes.Repeat([]byte("A"), MaxMessageSize+1)
	if _, err := Open1FA(big, f.agree); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
	if _, err := Open2FA(big, f.lookup); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
	if _, _, err := VerifyJWS(big, TypRequest, f.cskKey); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
	if _, err := DecodeRequest(big); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
	if _, _, err := DecodeCompat(big); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
	if _, err := Seal2FA(big, f.sessionKey, f.sessionID, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
}

func TestSealArguments(t *testing.T) {
	f := newFixture(t)
	sign := func(string) ([]byte, error) { return []byte("a.b.c"), nil }
	p384, _ := ecdh.P384().GenerateKey(rand.Reader)
	for name, err := range map[string]error{
		"nil key":        func() error { _, err := SealRequest1FA(sign, nil, "k", "c", "x", nil); return err }(),
		"P-384 key":      func() error { _, err := SealRequest1FA(sign, p384.PublicKey(), "k", "c", "x", nil); return err }(),
		"empty kid":      func() error { _, err := SealRequest1FA(sign, f.serverAgree.PublicKey(), "", "c", "x", nil); return err }(),
		"empty client":   func() error { _, err := SealRequest1FA(sign, f.serverAgree.PublicKey(), "k", "", "x", nil); return err }(),
		"empty context":  func() error { _, err := SealResponse1FA(nil, f.cak.PublicKey(), "k", "c", "", nil); return err }(),
		"16-byte key":    func() error { _, err := Seal2FA([]byte("a.b.c"), make([]byte, 16), "s", nil); return err }(),
		"empty session":  func() error { _, err := Seal2FA([]byte("a.b.c"), f.sessionKey, "", nil); return err }(),
		"P-384 CAK priv": func() error { _, err := OpenResponse1FA(nil, p384); return err }(),
		"sign error": func() error {
			_, err := SealRequest1FA(func(string) ([]byte, error) { return nil, ErrUnknownKey }, f.serverAgree.PublicKey(), "k", "c", "x", nil)
			return err
		}(),
	} {
		if err == nil {
			t.Errorf("%s: sealed", name)
		}
	}
}

func TestFreshIV(t *testing.T) {
	f := newFixture(t)
	a, _ := Seal2FA([]byte("a.b.c"), f.sessionKey, f.sessionID, nil)
	b, _ := Seal2FA([]byte("a.b.c"), f.sessionKey, f.sessionID, nil)
	if bytes.Equal(a, b) {
		t.Fatal("two messages share an IV")
	}
	// With a given random source the IV, hence the message, is reproducible.
	c, _ := Seal2FA([]byte("a.b.c"), f.sessionKey, f.sessionID, bytes.NewReader(make([]byte, 12)))
	d, _ := Seal2FA([]byte("a.b.c"), f.sessionKey, f.sessionID, bytes.NewReader(make([]byte, 12)))
	if !bytes.Equal(c, d) || !bytes.Contains(c, []byte("..AAAAAAAAAAAAAAAA.")) {
		t.Fatalf("IV not taken from the random source: %s", c)
	}
	if _, err := Seal2FA([]byte("a.b.c"), f.sessionKey, f.sessionID, bytes.NewReader(make([]byte, 11))); err == nil {
		t.Fatal("short random source")
	}
}
