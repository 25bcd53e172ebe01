package r2ps

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func compatPayload(t testing.TB, edit func(m map[string]any)) []byte {
	t.Helper()
	m := map[string]any{"ver": "1.0", "nonce": "Y29uZm9ybWFuY2Vub25jZQ", "iat": 1716400000, "client_id": "unit-1",
		"context": "hsm", "type": TypeCreateSession, "2fa_session_id": "sess-1",
		"data": map[string]any{"protocol": "opaque", "state": "finalize", "p_data": "S0UzLWJ5dGVz"}}
	if edit != nil {
		edit(m)
	}
	return mustJSON(t, m)
}

func TestDecodeCompatFlavours(t *testing.T) {
	raw := []byte{0xfb, 0xef, 0xff, 0x00, 0x10, 0x83, 0xfb, 0xef, 0xff, 0x00, 0x10, 0x83, 0xfb, 0xef, 0xff, 0x01, 0x02}
	flavours := map[string]string{
		"std padded": base64.StdEncoding.EncodeToString(raw),
		"std raw":    base64.RawStdEncoding.EncodeToString(raw),
		"url padded": base64.URLEncoding.EncodeToString(raw),
		"url raw":    base64.RawURLEncoding.EncodeToString(raw),
	}
	for name, enc := range flavours {
		t.Run(name, func(t *testing.T) {
			for _, pdataName := range []string{"p_data", "request"} {
				for _, protoName := range []string{"protocol", "2fa_mode"} {
					p := compatPayload(t, func(m map[string]any) {
						m["nonce"] = enc
						m["data"] = map[string]any{protoName: "opaque", "state": "finalize", pdataName: enc, "authorization": enc}
					})
					req, meta, err := DecodeCompat(p)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(req.Nonce, raw) || meta.Nonce != enc || meta.ClientID != "unit-1" || meta.Context != "hsm" || meta.SessionID != "sess-1" {
						t.Fatalf("%+v %+v", req, meta)
					}
					want := `{"protocol":"opaque","state":"finalize","p_data":"` + base64.StdEncoding.EncodeToString(raw) +
						`","authorization":"` + base64.StdEncoding.EncodeToString(raw) + `","session_id":"sess-1"}`
					if string(req.Data) != want {
						t.Fatalf("normalised data %s", req.Data)
					}
					var tr TFARequest
					if err := DecodeData(req.Data, &tr); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

func TestDecodeCompatAliases(t *testing.T) {
	for alias, canonical := range map[string]string{
		Alias2FAAuthenticate: TypeCreateSession, Alias2FAChange: Type2FAUpdate, AliasHSMECDSA: TypeSignECDSA,
		AliasHSMECDH: TypeAgreeECDH, AliasListKeys: TypeListKeys, TypeP256Generate: TypeP256Generate, TypeWKA: TypeWKA,
	} {
		data := map[string]any{
			TypeCreateSession: map[string]any{"protocol": "opaque", "state": "evaluate", "p_data": "AQ"},
			Type2FAUpdate:     map[string]any{"protocol": "opaque", "state": "evaluate", "p_data": "AQ"},
			TypeSignECDSA:     map[string]any{"kid": "k", "tbs_hash": base64.RawURLEncoding.EncodeToString(make([]byte, 32))},
			TypeAgreeECDH:     map[string]any{"kid": "k", "public_key": base64.RawURLEncoding.EncodeToString(newECDH(t).PublicKey().Bytes())},
			TypeListKeys:      map[string]any{},
			TypeP256Generate:  map[string]any{"curve": "P-256"},
			TypeWKA:           map[string]any{"keys_to_attest": []string{"k"}, "ver": "draft-008"},
		}[canonical]
		req, _, err := DecodeCompat(compatPayload(t, func(m map[string]any) { m["type"] = alias; m["data"] = data }))
		if err != nil || req.Type != canonical {
			t.Fatalf("%s: %v %q", alias, err, req.Type)
		}
		// What comes out is a strict request: it survives DecodeRequest.
		req.JWEHash = make([]byte, 32)
		enc, err := EncodeRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeRequest(enc); err != nil {
			t.Fatalf("%s: %v", alias, err)
		}
	}
	// 2fa_session_id goes into the data only for a create_session finalize.
	req, meta, _ := DecodeCompat(compatPayload(t, func(m map[string]any) {
		m["data"] = map[string]any{"protocol": "opaque", "state": "evaluate", "p_data": "AQ"}
	}))
	if strings.Contains(string(req.Data), "session_id") || meta.SessionID != "sess-1" {
		t.Fatalf("evaluate: %s", req.Data)
	}
	// A compressed peer key stays compressed; DecodeData validates it.
	comp := compress(t, newECDH(t).PublicKey())
	req, _, err := DecodeCompat(compatPayload(t, func(m map[string]any) {
		m["type"] = TypeAgreeECDH
		m["data"] = map[string]any{"kid": "k", "public_key": base64.URLEncoding.EncodeToString(comp)}
	}))
	var er ECDHRequest
	if err != nil || DecodeData(req.Data, &er) != nil || !bytes.Equal(er.PublicKey, comp) {
		t.Fatal(err, er)
	}
}

func TestDecodeCompatRejects(t *testing.T) {
	cases := map[string]struct {
		edit func(m map[string]any)
		want *Error
	}{
		"short nonce":                          {func(m map[string]any) { m["nonce"] = "dGVzdG5vbmNl" }, ErrMalformed},
		"mixed alphabets":                      {func(m map[string]any) { m["nonce"] = "+-" + strings.Repeat("A", 22) }, ErrMalformed},
		"nonce bad padding":                    {func(m map[string]any) { m["nonce"] = "Y29uZm9ybWFuY2Vub25jZQ=" }, ErrMalformed},
		"nonce line break":                     {func(m map[string]any) { m["nonce"] = "Y29uZm9ybWFu\nY2Vub25jZQ" }, ErrMalformed},
		"nonce missing":                        {func(m map[string]any) { delete(m, "nonce") }, ErrMalformed},
		"ver 2":                                {func(m map[string]any) { m["ver"] = "2.0" }, ErrMalformed},
		"iat missing":                          {func(m map[string]any) { delete(m, "iat") }, ErrMalformed},
		"client_id missing":                    {func(m map[string]any) { delete(m, "client_id") }, ErrMalformed},
		"context empty":                        {func(m map[string]any) { m["context"] = "" }, ErrMalformed},
		"session id control":                   {func(m map[string]any) { m["2fa_session_id"] = "a\tb" }, ErrMalformed},
		"type missing":                         {func(m map[string]any) { delete(m, "type") }, ErrMalformed},
		"type unknown":                         {func(m map[string]any) { m["type"] = "hsm_ecdh_unwrap" }, ErrUnsupportedType},
		"type strict only: pseudonym_put":      {func(m map[string]any) { m["type"] = TypePseudonymPut }, ErrUnsupportedType},
		"type strict only: wallet_unit_revoke": {func(m map[string]any) { m["type"] = TypeUnitRevoke }, ErrUnsupportedType},
		"type strict only: key_attestation":    {func(m map[string]any) { m["type"] = TypeKeyAttestation }, ErrUnsupportedType},
		"type strict only: secdsa_instruction": {func(m map[string]any) { m["type"] = TypeSECDSAInstruction }, ErrUnsupportedType},
		"unknown member":                       {func(m map[string]any) { m["enc"] = "user" }, ErrMalformed},
		"data not object":                      {func(m map[string]any) { m["data"] = "e30" }, ErrMalformed},
		"protocol conflict":                    {func(m map[string]any) { m["data"].(map[string]any)["2fa_mode"] = "fido2" }, ErrMalformed},
		"p_data conflict":                      {func(m map[string]any) { m["data"].(map[string]any)["request"] = "AQ" }, ErrMalformed},
		"p_data object":                        {func(m map[string]any) { m["data"].(map[string]any)["p_data"] = map[string]any{} }, ErrMalformed},
		"p_data not b64":                       {func(m map[string]any) { m["data"].(map[string]any)["p_data"] = "S0Uz!" }, ErrMalformed},
		"unknown data member":                  {func(m map[string]any) { m["data"].(map[string]any)["cak"] = "x" }, ErrMalformed},
		"ecdh SPKI of P-384": {func(m map[string]any) {
			m["type"] = TypeAgreeECDH
			m["data"] = map[string]any{"kid": "k", "public_key": "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE"}
		}, ErrMalformed},
		"sign unknown member": {func(m map[string]any) {
			m["type"] = TypeSignECDSA
			m["data"] = map[string]any{"kid": "k", "hash": "AA"}
		}, ErrMalformed},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := DecodeCompat(compatPayload(t, c.edit))
			wantSentinel(t, err, c.want)
		})
	}
	dup := strings.Replace(string(compatPayload(t, nil)), `"ver":"1.0"`, `"ver":"1.0","ver":"1.0"`, 1)
	if _, _, err := DecodeCompat([]byte(dup)); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	// The same p_data under both names, in two flavours, is no conflict.
	_, _, err := DecodeCompat(compatPayload(t, func(m map[string]any) { m["data"].(map[string]any)["request"] = "S0UzLWJ5dGVz" }))
	if err != nil {
		t.Fatal(err)
	}
}

func TestDecodeLenient(t *testing.T) {
	for in, want := range map[string]string{
		"":         "",
		"+/8=":     "\xfb\xff",
		"+/8":      "\xfb\xff",
		"-_8=":     "\xfb\xff",
		"-_8":      "\xfb\xff",
		"YWJj":     "abc",
		"YWJjZA==": "abcd",
		"YWJjZA":   "abcd",
	} {
		got, err := decodeLenient(in)
		if err != nil || string(got) != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	for _, in := range []string{"+_8=", "-/8", "YWJjZA=", "YWJjZA===", "YW Jj", "YWJj\n", "YWJjZB==", "YWJjZB", "Y", "YW=j", "*"} {
		if got, err := decodeLenient(in); err == nil {
			t.Errorf("%q decoded to %q", in, got)
		}
	}
}

func TestEncodeCompatResponse(t *testing.T) {
	meta := CompatMeta{Nonce: "dW5wYWRkZWQtbm9uY2UxMg"}
	b, err := EncodeCompatResponse(meta, time.Unix(1716400001, 0), TFAResponse{Success: true, SessionID: "s", PData: []byte{0xfb, 0xff}})
	want := `{"ver":"1.0","nonce":"dW5wYWRkZWQtbm9uY2UxMg","iat":1716400001,"data":{"session_id":"s","2fa_session_id":"s","p_data":"-_8=","response":"-_8="},"success":true}`
	if err != nil || string(b) != want {
		t.Fatalf("%s %v", b, err)
	}
	k := &jose.JSONWebKey{Key: &newECDSA(t).PublicKey}
	for name, c := range map[string]struct {
		data any
		want string
	}{
		"finalize with task": {TFAResponse{Success: true, SessionID: "s", Task: "sign:ab", SessionExpirationTime: 9},
			`{"session_id":"s","2fa_session_id":"s","message":"authenticated","session_expiration_time":9,"task":"sign:ab"}`},
		"registration finalize": {TFAResponse{Success: true}, `{"message":"success"}`},
		"delete":                {DeleteKeyResponse{Success: true}, `{"success":true}`},
		"empty list":            {ListKeysResponse{Success: true}, `{"key_info":[]}`},
	} {
		if got := compatDataOf(t, c.data); string(got) != c.want {
			t.Errorf("%s: %s", name, got)
		}
	}
	g := compatDataOf(t, GenerateResponse{Success: true, KID: "0123456789abcdef0123456789abcdef", PublicKey: k})
	var gen struct {
		CreatedKey string `json:"created_key"`
		PublicKey  string `json:"public_key"`
	}
	if json.Unmarshal(g, &gen) != nil || gen.CreatedKey != CurveP256 || gen.PublicKey == "" {
		t.Fatalf("generate: %s", g)
	}
	for name, data := range map[string]any{
		"failure":      Failure{Error: CodeUnauthorized},
		"failed TFA":   TFAResponse{Error: CodeUnauthorized},
		"invalid sign": SignResponse{Success: true},
		"unknown type": struct{}{},
		"raw array":    json.RawMessage(`[1]`),
		"private jwk":  GenerateResponse{Success: true, KID: "k", PublicKey: &jose.JSONWebKey{Key: newECDSA(t)}},
	} {
		if b, err := EncodeCompatResponse(meta, time.Now(), data); err == nil {
			t.Errorf("%s: %s", name, b)
		}
	}
	if _, err := EncodeCompatResponse(CompatMeta{}, time.Now(), DeleteKeyResponse{Success: true}); err == nil {
		t.Fatal("no nonce")
	}
	if got := string(CompatError("bogus", "x")); got != `{"error_code":"SERVER_ERROR","error_message":"x"}` {
		t.Fatal(got)
	}
}
