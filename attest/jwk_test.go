package attest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestParseJWKRefuses: what ParseJWK refuses, with and without a kid.
func TestParseJWKRefuses(t *testing.T) {
	f := newFixture(t)
	good, err := NewJWK(&f.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(j *JWK){
		"off curve, no kid":  func(j *JWK) { j.Y, j.Kid = j.X, "" },
		"off curve":          func(j *JWK) { j.Y = j.X },
		"short x, no kid":    func(j *JWK) { j.X, j.Kid = j.X[:42], "" },
		"long y, no kid":     func(j *JWK) { j.Y, j.Kid = j.Y+"AAAA", "" },
		"private, no kid":    func(j *JWK) { j.D, j.Kid = "AAAA", "" },
		"OKP":                func(j *JWK) { j.Kty = "OKP" },
		"kid of another key": func(j *JWK) { j.Kid = "00000000000000000000000000000000" },
	} {
		j := good
		edit(&j)
		b, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		if _, pub, err := ParseJWK(b); !errors.Is(err, ErrKey) || pub != nil {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// Coordinates that are not base64url are named as such.
	bad := good
	bad.X = "x!" + bad.X[2:]
	if _, err := bad.PublicKey(); err == nil || !strings.Contains(err.Error(), "bad coordinates") {
		t.Errorf("x not base64url: err = %v", err)
	}
	b, _ := json.Marshal(good)
	if _, pub, err := ParseJWK(b); err != nil || !pub.Equal(&f.key.PublicKey) {
		t.Fatalf("good JWK: %v", err)
	}
	if _, err := NewJWK(nil); !errors.Is(err, ErrKey) {
		t.Fatalf("NewJWK(nil): %v", err)
	}
}
