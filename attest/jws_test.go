package attest

import (
	"errors"
	"strings"
	"testing"
)

// TestParseCompactRefuses: each rule of the compact parser, one row.
func TestParseCompactRefuses(t *testing.T) {
	f := newFixture(t)
	good, err := f.issuer.KeyAttestation(f.kaInput())
	if err != nil {
		t.Fatal(err)
	}
	p := strings.Split(good, ".")
	for _, tc := range []struct {
		name, token string
	}{
		{"too long", good + strings.Repeat("A", MaxTokenSize)},
		{"two parts", p[0] + "." + p[1]},
		{"four parts", good + ".AA"},
		{"padded header", p[0] + "=." + p[1] + "." + p[2]},
		{"header not base64url", "*." + p[1] + "." + p[2]},
		{"header not JSON", b64.EncodeToString([]byte("alg")) + "." + p[1] + "." + p[2]},
		{"header null", b64.EncodeToString([]byte("null")) + "." + p[1] + "." + p[2]},
		{"header array", b64.EncodeToString([]byte("[]")) + "." + p[1] + "." + p[2]},
		{"payload not base64url", p[0] + ".*." + p[2]},
		{"signature not base64url", p[0] + "." + p[1] + ".*"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseCompact(tc.token); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
	// Claims that are not an object, and a signature of the wrong size.
	h, _ := decodeToken(t, good)
	hb := mustJSON(t, h)
	for name, claims := range map[string]string{"null": "null", "array": "[1]", "iat negative": `{"iat":-1}`, "iat huge": `{"iat":1e300}`} {
		if _, err := f.ver.VerifyKeyAttestation(rawToken(t, f.key, hb, []byte(claims)), KeyAttestationOptions{}); !errors.Is(err, ErrMalformed) {
			t.Errorf("claims %s: err = %v, want ErrMalformed", name, err)
		}
	}
	for name, sig := range map[string]string{"65 bytes": p[2] + "AA", "1 byte": "AA", "empty": ""} {
		tok := p[0] + "." + p[1] + "." + sig
		if _, err := f.ver.VerifyKeyAttestation(tok, KeyAttestationOptions{}); !errors.Is(err, ErrSignature) {
			t.Errorf("signature %s: err = %v, want ErrSignature", name, err)
		}
	}
}
