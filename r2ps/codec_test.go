package r2ps

import (
	"bytes"
	"crypto/ecdh"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"filippo.io/nistec"
	"github.com/go-jose/go-jose/v4"
)

// validRequest returns the members of a valid request payload; tests edit it.
func validRequest() map[string]any {
	return map[string]any{
		"ver":      "1.0",
		"nonce":    base64.StdEncoding.EncodeToString([]byte("0123456789abcdef")),
		"iat":      1750000000,
		"type":     TypeListKeys,
		"jwe_hash": base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"data":     map[string]any{},
	}
}

func TestRequestRoundTrip(t *testing.T) {
	req := Request{Nonce: []byte("0123456789abcdef"), IssuedAt: time.Unix(1750000000, 0).UTC(), Type: TypeSignECDSA,
		JWEHash: JWEHash("eyJ9"), Data: json.RawMessage(`{ "kid": "k" }`)}
	b, err := EncodeRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ver":"1.0","nonce":"MDEyMzQ1Njc4OWFiY2RlZg==","iat":1750000000,"type":"sign_ecdsa","jwe_hash":"` +
		base64.StdEncoding.EncodeToString(JWEHash("eyJ9")) + `","data":{"kid":"k"}}`
	if string(b) != want {
		t.Fatalf("encoded\n%s\nwant\n%s", b, want)
	}
	got, err := DecodeRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Nonce, req.Nonce) || !got.IssuedAt.Equal(req.IssuedAt) || got.Type != req.Type ||
		!bytes.Equal(got.JWEHash, req.JWEHash) || string(got.Data) != `{"kid":"k"}` || got.Version != Version {
		t.Fatalf("round trip %+v", got)
	}
	if err := CheckJWEHash(got, "eyJ9"); err != nil {
		t.Fatal(err)
	}
	if err := CheckJWEHash(got, "eyJ8"); !errors.Is(err, ErrJWEHash) {
		t.Fatal(err)
	}
	for name, r := range map[string]Request{
		"no iat":      {Nonce: req.Nonce, Type: req.Type, JWEHash: req.JWEHash, Data: req.Data},
		"short nonce": {Nonce: req.Nonce[:15], IssuedAt: req.IssuedAt, Type: req.Type, JWEHash: req.JWEHash, Data: req.Data},
		"no data":     {Nonce: req.Nonce, IssuedAt: req.IssuedAt, Type: req.Type, JWEHash: req.JWEHash},
		"array data":  {Nonce: req.Nonce, IssuedAt: req.IssuedAt, Type: req.Type, JWEHash: req.JWEHash, Data: []byte(`[]`)},
		"alias type":  {Nonce: req.Nonce, IssuedAt: req.IssuedAt, Type: AliasHSMECDSA, JWEHash: req.JWEHash, Data: req.Data},
		"version 2":   {Version: "2.0", Nonce: req.Nonce, IssuedAt: req.IssuedAt, Type: req.Type, JWEHash: req.JWEHash, Data: req.Data},
		"no jwe_hash": {Nonce: req.Nonce, IssuedAt: req.IssuedAt, Type: req.Type, Data: req.Data},
	} {
		if _, err := EncodeRequest(r); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

func TestResponseRoundTrip(t *testing.T) {
	r := Response{Nonce: []byte("0123456789abcdef"), IssuedAt: time.Unix(1750000001, 0), Data: mustJSON(t, Failure{Error: CodeAccessDenied})}
	b, err := EncodeResponse(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"ver":"1.0","nonce":"MDEyMzQ1Njc4OWFiY2RlZg==","iat":1750000001,"data":{"success":false,"error":"ACCESS_DENIED"}}`; string(b) != want {
		t.Fatalf("encoded %s", b)
	}
	got, err := DecodeResponse(b)
	if err != nil || !bytes.Equal(got.Nonce, r.Nonce) || got.IssuedAt.Unix() != 1750000001 {
		t.Fatal(err, got)
	}
	var fl Failure
	if err := DecodeData(got.Data, &fl); err != nil || fl.Error != CodeAccessDenied {
		t.Fatal(err, fl)
	}
	// A request is no response: type and jwe_hash are unknown members there.
	req, _ := json.Marshal(validRequest())
	if _, err := DecodeResponse(req); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
}

func TestDecodeRequestRejects(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	cases := []struct {
		name string
		edit func(m map[string]any)
		want *Error
	}{
		{"ver 1.1", func(m map[string]any) { m["ver"] = "1.1" }, ErrMalformed},
		{"ver number", func(m map[string]any) { m["ver"] = 1.0 }, ErrMalformed},
		{"nonce 15 bytes", func(m map[string]any) { m["nonce"] = b64(make([]byte, 15)) }, ErrMalformed},
		{"nonce unpadded", func(m map[string]any) { m["nonce"] = strings.TrimRight(b64(make([]byte, 17)), "=") }, ErrMalformed},
		{"nonce base64url", func(m map[string]any) { m["nonce"] = base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 18)) }, ErrMalformed},
		{"nonce line break", func(m map[string]any) { s := b64(make([]byte, 18)); m["nonce"] = s[:8] + "\n" + s[8:] }, ErrMalformed},
		{"nonce trailing bits", func(m map[string]any) { m["nonce"] = "AAAAAAAAAAAAAAAAAAAAAB==" }, ErrMalformed},
		{"nonce number", func(m map[string]any) { m["nonce"] = 12 }, ErrMalformed},
		{"nonce null", func(m map[string]any) { m["nonce"] = nil }, ErrMalformed},
		{"iat string", func(m map[string]any) { m["iat"] = "1750000000" }, ErrMalformed},
		{"iat float", func(m map[string]any) { m["iat"] = 1.5 }, ErrMalformed},
		{"iat negative", func(m map[string]any) { m["iat"] = -1 }, ErrMalformed},
		{"iat null", func(m map[string]any) { m["iat"] = nil }, ErrMalformed},
		{"jwe_hash 31 bytes", func(m map[string]any) { m["jwe_hash"] = b64(make([]byte, 31)) }, ErrMalformed},
		{"data string", func(m map[string]any) { m["data"] = "{}" }, ErrMalformed},
		{"data array", func(m map[string]any) { m["data"] = []any{} }, ErrMalformed},
		{"data null", func(m map[string]any) { m["data"] = nil }, ErrMalformed},
		{"type empty", func(m map[string]any) { m["type"] = "" }, ErrMalformed},
		{"type unknown", func(m map[string]any) { m["type"] = "hsm_export_key" }, ErrUnsupportedType},
		{"type alias", func(m map[string]any) { m["type"] = Alias2FAAuthenticate }, ErrUnsupportedType},
		{"client_id member", func(m map[string]any) { m["client_id"] = "c" }, ErrMalformed},
		{"2fa_session_id member", func(m map[string]any) { m["2fa_session_id"] = "s" }, ErrMalformed},
		{"case-folded Nonce", func(m map[string]any) { m["Nonce"] = m["nonce"]; delete(m, "nonce") }, ErrMalformed},
	}
	for _, member := range []string{"ver", "nonce", "iat", "type", "jwe_hash", "data"} {
		cases = append(cases, struct {
			name string
			edit func(m map[string]any)
			want *Error
		}{"missing " + member, func(m map[string]any) { delete(m, member) }, ErrMalformed})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := validRequest()
			c.edit(m)
			_, err := DecodeRequest(mustJSON(t, m))
			wantSentinel(t, err, c.want)
		})
	}
	good := mustJSON(t, validRequest())
	if _, err := DecodeRequest(good); err != nil {
		t.Fatal(err)
	}
	raw := map[string]string{
		"duplicate member":      `{"ver":"1.0","ver":"1.0",` + string(good[1:]),
		"duplicate in data":     strings.Replace(string(good), `"data":{}`, `"data":{"a":1,"a":2}`, 1),
		"escaped duplicate":     strings.Replace(string(good), `"ver":"1.0"`, `"ver":"1.0","v\u0065r":"1.0"`, 1),
		"trailing object":       string(good) + "{}",
		"trailing garbage":      string(good) + " x",
		"invalid UTF-8":         strings.Replace(string(good), `"data":{}`, "\"data\":{\"a\":\"\xff\"}", 1),
		"deep data":             strings.Replace(string(good), `"data":{}`, `"data":{"a":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+`}`, 1),
		"top-level array":       `[` + string(good) + `]`,
		"empty":                 ``,
		"whitespace only":       ` `,
		"single quotes":         strings.ReplaceAll(string(good), `"`, `'`),
		"nonce in data dup key": strings.Replace(string(good), `"data":{}`, `"data":{"x":{"y":1,"y":1}}`, 1),
	}
	for name, p := range raw {
		if _, err := DecodeRequest([]byte(p)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Whitespace around the value is JSON, not trailing data.
	if _, err := DecodeRequest(append(append([]byte(" \n"), good...), '\n')); err != nil {
		t.Fatal(err)
	}
}

func TestBytesJSON(t *testing.T) {
	b, _ := json.Marshal(struct {
		A Bytes `json:"a"`
		B Bytes `json:"b"`
		C Bytes `json:"c,omitempty"`
	}{A: []byte{0xfb, 0xff}, B: nil})
	if string(b) != `{"a":"+/8=","b":null}` {
		t.Fatalf("marshal: %s", b)
	}
	for in, ok := range map[string]bool{
		`"+/8="`: true, `null`: true, `""`: true, `"+/8"`: false, `"-_8="`: false, `"+/8=\n"`: false,
		`"+/9="`: false, `7`: false, `["+/8="]`: false, `"+/\u0038="`: true, `"+/8=="`: false,
	} {
		var v Bytes
		if err := json.Unmarshal([]byte(in), &v); (err == nil) != ok {
			t.Errorf("%s: %v", in, err)
		}
	}
}

func TestDecodeData(t *testing.T) {
	jwk := func() *jose.JSONWebKey { return &jose.JSONWebKey{Key: &newECDSA(t).PublicKey} }
	good := []struct {
		v    validator
		into any
	}{
		{TFARequest{Protocol: ProtocolOPAQUE, State: StateFinalize, PData: []byte{1}, Authorization: []byte("code"), AuthorizationType: AuthorizationTypeOTP, CAK: jwk()}, new(TFARequest)},
		{TFAResponse{Success: true, SessionID: "s", SessionExpirationTime: 1}, new(TFAResponse)},
		{TFAResponse{Error: CodeUnauthorized}, new(TFAResponse)},
		{Failure{Error: CodeTryLater}, new(Failure)},
		{GenerateRequest{Curve: CurveP256}, new(GenerateRequest)},
		{GenerateResponse{Success: true, KID: "0123456789abcdef0123456789abcdef", PublicKey: jwk()}, new(GenerateResponse)},
		{SignRequest{KID: "k", TBSHash: make([]byte, 32)}, new(SignRequest)},
		{ECDHRequest{KID: "k", PublicKey: newECDH(t).PublicKey().Bytes()}, new(ECDHRequest)},
		{ECDHResponse{Success: true, SharedSecret: make([]byte, 32)}, new(ECDHResponse)},
		{ListKeysRequest{Curve: []string{CurveP256}}, new(ListKeysRequest)},
		{ListKeysResponse{Success: true, KeyInfo: []KeyInfo{{KID: "k", CurveName: CurveP256, PublicKey: jwk()}}}, new(ListKeysResponse)},
		{DeleteKeyRequest{KID: "k"}, new(DeleteKeyRequest)},
		{DeleteKeyResponse{Success: true}, new(DeleteKeyResponse)},
	}
	for _, c := range good {
		raw, err := EncodeData(c.v)
		if err != nil {
			t.Fatalf("%T: %v", c.v, err)
		}
		if err := DecodeData(raw, c.into); err != nil {
			t.Fatalf("%T %s: %v", c.v, raw, err)
		}
	}
	bad := []struct {
		data string
		into any
	}{
		{`{"protocol":"opaque","state":"evaluate"}`, new(TFARequest)},
		{`{"protocol":"opaque","state":"evaluate","p_data":null}`, new(TFARequest)},
		{`{"protocol":"opaque","state":"evaluate","p_data":{"challenge":"x"}}`, new(TFARequest)},
		{`{"protocol":"opaque","state":"evaluate","p_data":"AQ==","session_duration":-1}`, new(TFARequest)},
		{`{"protocol":"opaque","state":"evaluate","p_data":"AQ==","authorization_type":"otp"}`, new(TFARequest)},
		{`{"protocol":"opaque","state":"evaluate","p_data":"AQ==","request":"AQ=="}`, new(TFARequest)},
		{`{"protocol":"opaque","state":"finalize","p_data":"AQ==","cak":{"kty":"oct","k":"AAAA"}}`, new(TFARequest)},
		{`{"success":false,"error":"NOPE"}`, new(TFAResponse)},
		{`{"success":false,"error":"UNAUTHORIZED","session_id":"s"}`, new(TFAResponse)},
		{`{"p_data":null}`, new(TFAResponse)},
		{`{"success":"true"}`, new(DeleteKeyResponse)},
		{`{}`, new(DeleteKeyResponse)},
		{`{"success":false}`, new(DeleteKeyResponse)},
		{`{"curve":"P-384"}`, new(GenerateRequest)},
		{`{"kid":"k","tbs_hash":"AAAA"}`, new(SignRequest)},
		{`{"kid":"k/../x","tbs_hash":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"}`, new(SignRequest)},
		{`{"kid":"k","public_key":"BAAA"}`, new(ECDHRequest)},
		{`{"success":true,"shared_secret":"AAAA"}`, new(ECDHResponse)},
		{`{"curve":[""]}`, new(ListKeysRequest)},
		{`{"kid":""}`, new(DeleteKeyRequest)},
		{`{"kid":"k","KID":"k"}`, new(DeleteKeyRequest)},
	}
	for _, c := range bad {
		err := DecodeData(json.RawMessage(c.data), c.into)
		wantSentinel(t, err, ErrMalformed)
	}
	if err := DecodeData([]byte(`{}`), TFARequest{}); err == nil || Code(err) != CodeServerError {
		t.Fatalf("non-pointer: %v", err)
	}
}

func TestEncodeDataShapes(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{TFAResponse{Error: CodeUnauthorized}, `{"success":false,"error":"UNAUTHORIZED"}`},
		{TFAResponse{Success: true, SessionID: "s", Task: Task2FAUpdate, SessionExpirationTime: 1750000000},
			`{"success":true,"p_data":null,"session_id":"s","task":"2fa_update","session_expiration_time":1750000000}`},
		{TFAResponse{Success: true, SessionID: "s", PData: []byte("KE2")}, `{"success":true,"p_data":"S0Uy","session_id":"s"}`},
		{ListKeysResponse{Success: true}, `{"success":true,"key_info":[]}`},
		{Failure{Error: CodeIllegalState}, `{"success":false,"error":"ILLEGAL_STATE"}`},
		{json.RawMessage(`{"wka":"x"}`), `{"wka":"x"}`},
	} {
		b, err := EncodeData(c.v)
		if err != nil || string(b) != c.want {
			t.Errorf("%T: %s %v, want %s", c.v, b, err, c.want)
		}
	}
	for _, v := range []any{TFAResponse{Success: true, Error: CodeUnauthorized}, Failure{Error: "oops"}, SignResponse{Success: true},
		GenerateResponse{KID: "k"}, json.RawMessage(`[]`), json.RawMessage(`{"a":1,"a":2}`), 7} {
		if b, err := EncodeData(v); err == nil {
			t.Errorf("%T encoded: %s", v, b)
		}
	}
}

func TestECDHRequestPoint(t *testing.T) {
	k := newECDH(t).PublicKey()
	compressed := compress(t, k)
	for name, c := range map[string]struct {
		b  []byte
		ok bool
	}{
		"uncompressed": {k.Bytes(), true},
		"compressed":   {compressed, true},
		"hybrid tag":   {append([]byte{6}, k.Bytes()[1:]...), false},
		"off curve":    {append(append([]byte{4}, k.Bytes()[1:64]...), k.Bytes()[64]^1), false},
		"infinity":     {[]byte{0}, false},
		"x only":       {k.Bytes()[:33], false},
	} {
		p, err := ECDHRequest{KID: "k", PublicKey: c.b}.Point()
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", name, err)
		}
		if err == nil && !p.Equal(k) {
			t.Errorf("%s: wrong point", name)
		}
	}
}

func compress(t testing.TB, k *ecdh.PublicKey) []byte {
	t.Helper()
	p, err := nistec.NewP256Point().SetBytes(k.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return p.BytesCompressed()
}

func TestCodes(t *testing.T) {
	for code, status := range map[string]int{
		CodeIllegalRequestData: 400, CodeUnauthorized: 401, CodeAccessDenied: 403, CodeIllegalState: 409,
		CodeUnsupportedRequestType: 415, CodeServerError: 500, CodeTryLater: 503, "NOPE": 0,
	} {
		if HTTPStatus(code) != status || IsCode(code) != (status != 0) {
			t.Errorf("%s: %d", code, HTTPStatus(code))
		}
	}
	if Code(nil) != "" || Code(errors.New("x")) != CodeServerError || Code(ErrUnknownSession) != CodeUnauthorized {
		t.Fatal("Code")
	}
	wrapped := &Error{Code: CodeAccessDenied, Msg: "unit locked", Err: ErrUnknownSession}
	if Code(wrapped) != CodeAccessDenied || !errors.Is(wrapped, ErrUnknownSession) {
		t.Fatal("outermost code wins, cause stays reachable")
	}
	if got := errorf(ErrMalformed, "nonce is %d bytes", 9).Error(); got != "r2ps: malformed message: nonce is 9 bytes" {
		t.Fatal(got)
	}
	for _, e := range []*Error{ErrMalformed, ErrTooLarge, ErrHeader, ErrDecrypt, ErrSignature, ErrJWEHash, ErrUnknownKey, ErrUnknownSession, ErrUnsupportedType} {
		if !IsCode(e.Code) || !strings.HasPrefix(e.Error(), "r2ps: ") {
			t.Errorf("sentinel %q", e)
		}
	}
}

func TestRequiredMode(t *testing.T) {
	for typ, m := range map[string]Mode{
		TypeCreateSession: Mode1FA, Type2FARegistration: Mode1FA, Type2FAUpdate: Mode2FA, TypeP256Generate: Mode2FA,
		TypeSignECDSA: Mode2FA, TypeAgreeECDH: Mode2FA, TypeListKeys: Mode2FA, TypeDeleteKey: Mode2FA,
		TypeWKA: Mode1FA, TypeWIA: Mode1FA, Alias2FAAuthenticate: ModeNone, AliasHSMECDSA: ModeNone, "": ModeNone,
	} {
		if got := RequiredMode(typ); got != m {
			t.Errorf("%q: %v, want %v", typ, got, m)
		}
	}
	if Mode1FA.String() != "1FA" || Mode2FA.String() != "2FA" || ModeNone.String() != "none" {
		t.Fatal("Mode.String")
	}
}
