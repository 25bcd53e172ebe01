package r2ps

import (
	"crypto/x509"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TestVectorCompatResponses compares EncodeCompatResponse with the response
// shapes: exactly for the Go generator, as a superset for the Rust one
// (which omits the I-D names the Go server adds).
func TestVectorCompatResponses(t *testing.T) {
	for _, name := range vectorFiles() {
		t.Run(name, func(t *testing.T) {
			v := loadVectors(t, name)
			exact := v.Generator == "go-r2ps-service"
			cases := []struct {
				entry string
				data  any
			}{
				{"tfa_response", TFAResponse{Success: true, PData: []byte("opaque-response")}},
				{"tfa_reg_evaluate_resp", TFAResponse{Success: true, PData: []byte("registration-response")}},
				{"tfa_reg_finalize_resp", TFAResponse{Success: true}},
				{"tfa_auth_evaluate_resp", TFAResponse{Success: true, SessionID: "auth-session-001", PData: []byte("KE2-bytes")}},
				{"tfa_auth_finalize_resp", TFAResponse{Success: true, SessionID: "auth-session-001", SessionExpirationTime: 1716403600}},
			}
			for _, c := range cases {
				got := compatDataOf(t, c.data)
				checkShape(t, c.entry, got, v.str(t, c.entry), exact)
			}
			// hsm_service_types: keygen gains kid and public_key; list_keys is exact.
			der, err := decodeStd(listKeySPKI(t, v))
			if err != nil {
				t.Fatal(err)
			}
			k, err := x509.ParsePKIXPublicKey(der)
			if err != nil {
				t.Fatal(err)
			}
			jwk := &jose.JSONWebKey{Key: k}
			checkShape(t, "ec_keygen_response", compatDataOf(t, GenerateResponse{Success: true, KID: "k", PublicKey: jwk}), v.HSM["ec_keygen_response"], false)
			lk := ListKeysResponse{Success: true, KeyInfo: []KeyInfo{{
				KID: "03fbe636059033a07ee3099caf84a87474d94afa2c7d431f3391ebd8cf21a24216", CurveName: CurveP256, CreationTime: 1750751069, PublicKey: jwk}}}
			checkShape(t, "list_keys_response", compatDataOf(t, lk), v.HSM["list_keys_response"], true)
			// Signatures and secrets are JSON strings of padded base64url.
			sig := unhex(t, v.HSM["ecdsa_response_hex"])
			if got := string(compatDataOf(t, SignResponse{Success: true, Signature: sig})); got != `"`+encodeCompat(sig)+`"` {
				t.Fatalf("signature data %s", got)
			}
			secret := unhex(t, v.HSM["ecdh_response_hex"])
			if got := string(compatDataOf(t, ECDHResponse{Success: true, SharedSecret: secret})); got != `"`+encodeCompat(secret)+`"` {
				t.Fatalf("secret data %s", got)
			}
			for _, e := range []string{"wka_response", "wia_response"} {
				if got := compatDataOf(t, json.RawMessage(v.EUDIW[e])); string(got) != v.EUDIW[e] {
					t.Fatalf("%s: %s", e, got)
				}
			}
			// Errors, byte for byte.
			if got := string(CompatError(CodeUnauthorized, "invalid credentials")); got != v.str(t, "error_response") {
				t.Fatalf("error_response %s", got)
			}
			for _, e := range v.Protocol["all_error_responses"].([]any) {
				m := e.(map[string]any)
				var want struct {
					Code string `json:"error_code"`
					Msg  string `json:"error_message"`
				}
				_ = json.Unmarshal([]byte(m["json"].(string)), &want)
				if got := string(CompatError(want.Code, want.Msg)); got != m["json"] || want.Code != m["name"] || !IsCode(want.Code) {
					t.Fatalf("%s: %s", m["name"], got)
				}
			}
		})
	}
}

func compatDataOf(t testing.TB, data any) json.RawMessage {
	t.Helper()
	b, err := EncodeCompatResponse(CompatMeta{Nonce: "Y29uZm9ybWFuY2Vub25jZQ"}, time.Unix(1716400001, 0), data)
	if err != nil {
		t.Fatalf("%T: %v", data, err)
	}
	var r struct {
		Data    json.RawMessage `json:"data"`
		Success bool            `json:"success"`
		Nonce   string          `json:"nonce"`
	}
	if err := json.Unmarshal(b, &r); err != nil || !r.Success || r.Nonce != "Y29uZm9ybWFuY2Vub25jZQ" {
		t.Fatalf("%T: %s", data, b)
	}
	return r.Data
}

// checkShape compares two JSON objects: equal when exact, otherwise every
// member of want must be in got with the same value.
func checkShape(t testing.TB, entry string, got json.RawMessage, want string, exact bool) {
	t.Helper()
	if exact {
		if string(got) != want {
			t.Fatalf("%s:\n got %s\nwant %s", entry, got, want)
		}
		return
	}
	var g, w map[string]any
	if json.Unmarshal(got, &g) != nil || json.Unmarshal([]byte(want), &w) != nil {
		t.Fatalf("%s: not objects: %s / %s", entry, got, want)
	}
	for k, wv := range w {
		if gv, ok := g[k]; !ok || string(mustJSON(t, gv)) != string(mustJSON(t, wv)) {
			t.Fatalf("%s: member %s = %v, want %v", entry, k, g[k], wv)
		}
	}
}

func listKeySPKI(t testing.TB, v vectors) string {
	t.Helper()
	var r struct {
		KeyInfo []struct {
			PublicKey string `json:"public_key"`
		} `json:"key_info"`
	}
	if err := json.Unmarshal([]byte(v.HSM["list_keys_response"]), &r); err != nil || len(r.KeyInfo) != 1 {
		t.Fatal(err)
	}
	return r.KeyInfo[0].PublicKey
}
