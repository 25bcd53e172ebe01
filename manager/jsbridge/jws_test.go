package jsbridge

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/ecp256"
	"github.com/wsca/wsca/manager"
)

// The compact JWS verifies with go-jose, alg is forced to ES256 and the
// caller's other header members stay.
func TestJWS(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	input, digest, err := jwsInput([]byte(`{"alg":"none","kid":"k","typ":"x+jwt"}`), []byte(`{ "a" : 1 }`))
	if err != nil {
		t.Fatal(err)
	}
	der, _ := ecdsa.SignASN1(rand.Reader, priv, digest)
	sig, _ := ecp256.DERToRaw(der)
	jws, err := jwsCompact(input, sig)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := jose.ParseSignedCompact(jws, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := obj.Verify(&priv.PublicKey)
	if err != nil || string(payload) != `{"a":1}` {
		t.Fatalf("verify: %q %v", payload, err)
	}
	h := obj.Signatures[0].Protected
	if h.Algorithm != "ES256" || h.KeyID != "k" || h.ExtraHeaders["typ"] != "x+jwt" {
		t.Fatalf("header %+v", h)
	}
	for _, bad := range [][2]string{{`[]`, `{}`}, {`null`, `{}`}, {`{}`, `"x"`}, {`{`, `{}`}, {`{}`, `null`}} {
		if _, _, err := jwsInput([]byte(bad[0]), []byte(bad[1])); !errors.Is(err, manager.ErrInvalidInput) {
			t.Errorf("jwsInput(%s, %s): %v, want ErrInvalidInput", bad[0], bad[1], err)
		}
	}
	if _, err := jwsCompact(input, sig[:63]); err == nil {
		t.Error("a 63-byte signature was accepted")
	}
}

func FuzzJWSInput(f *testing.F) {
	f.Add([]byte(`{"kid":"k"}`), []byte(`{"a":1}`))
	f.Fuzz(func(t *testing.T, h, p []byte) {
		input, digest, err := jwsInput(h, p)
		if err != nil {
			return
		}
		if len(digest) != 32 || strings.Count(input, ".") != 1 {
			t.Fatalf("input %q", input)
		}
	})
}
