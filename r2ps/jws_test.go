package r2ps

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// signRaw signs payload under an arbitrary protected header with ES256, as a
// correct signer would, so that only the header rules can refuse it.
func signRaw(t testing.TB, header string, payload []byte, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	return []byte(signInput(t, b64url([]byte(header))+"."+b64url(payload), k))
}

// signInput signs a signing input as it is and appends the signature.
func signInput(t testing.TB, input string, k *ecdsa.PrivateKey) string {
	t.Helper()
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64url(sig)
}

func TestJWSRoundTrip(t *testing.T) {
	f := newFixture(t)
	jws, err := SignJWS([]byte(`{"a":1}`), TypRequest, f.cskKID, hsmSigner{f.csk}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hdr, _ := decodeB64URL([]byte(strings.Split(string(jws), ".")[0]))
	if want := `{"alg":"ES256","kid":"` + f.cskKID + `","typ":"r2ps-request+jwt"}`; string(hdr) != want {
		t.Fatalf("header %s", hdr)
	}
	payload, h, err := VerifyJWS(jws, TypRequest, f.cskKey)
	if err != nil || string(payload) != `{"a":1}` || h.Alg != AlgES256 || h.KID != f.cskKID || h.Typ != TypRequest || h.JWK != nil {
		t.Fatal(err, h)
	}

	// Registration: the CSK travels in the jwk header and verifies itself.
	jws, err = SignJWS([]byte(`{}`), TypRequest, f.cskKID, hsmSigner{f.csk}, &jose.JSONWebKey{Key: &f.csk.PublicKey, KeyID: "ignored", Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	var embedded *jose.JSONWebKey
	_, h, err = VerifyJWS(jws, TypRequest, func(kid string, k *jose.JSONWebKey) (*ecdsa.PublicKey, error) {
		embedded = k
		if k == nil || Thumbprint(k.Key.(*ecdsa.PublicKey)) != kid {
			return nil, ErrUnknownKey
		}
		return k.Key.(*ecdsa.PublicKey), nil
	})
	if err != nil || embedded == nil || h.JWK == nil || !h.JWK.Key.(*ecdsa.PublicKey).Equal(&f.csk.PublicKey) {
		t.Fatal(err, h)
	}

	for name, err := range map[string]error{
		"P-384 signer": func() error {
			k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			_, err := SignJWS(nil, TypRequest, "k", k, nil)
			return err
		}(),
		"no kid":      func() error { _, err := SignJWS(nil, TypRequest, "", f.csk, nil); return err }(),
		"no typ":      func() error { _, err := SignJWS(nil, "", "k", f.csk, nil); return err }(),
		"nil signer":  func() error { _, err := SignJWS(nil, TypRequest, "k", nil, nil); return err }(),
		"private jwk": func() error { _, err := SignJWS(nil, TypRequest, "k", f.csk, &jose.JSONWebKey{Key: f.csk}); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: signed", name)
		}
	}
}

func TestVerifyJWSRejects(t *testing.T) {
	f := newFixture(t)
	good := `{"alg":"ES256","kid":"` + f.cskKID + `","typ":"r2ps-request+jwt"}`
	if _, _, err := VerifyJWS(signRaw(t, good, []byte("p"), f.csk), TypRequest, f.cskKey); err != nil {
		t.Fatal(err)
	}
	jwk := string(mustJSON(t, newECJWK(ecdhPub(t, f.csk))))
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384jwk := string(mustJSON(t, &jose.JSONWebKey{Key: &p384.PublicKey}))
	withKID := func(extra string) string {
		return `{"alg":"ES256","kid":"` + f.cskKID + `","typ":"r2ps-request+jwt",` + extra + `}`
	}
	for name, header := range map[string]string{
		"alg none":        `{"alg":"none","kid":"k","typ":"r2ps-request+jwt"}`,
		"alg HS256":       `{"alg":"HS256","kid":"k","typ":"r2ps-request+jwt"}`,
		"alg ES384":       `{"alg":"ES384","kid":"k","typ":"r2ps-request+jwt"}`,
		"alg RS256":       `{"alg":"RS256","kid":"k","typ":"r2ps-request+jwt"}`,
		"alg es256":       `{"alg":"es256","kid":"k","typ":"r2ps-request+jwt"}`,
		"alg missing":     `{"kid":"k","typ":"r2ps-request+jwt"}`,
		"typ response":    `{"alg":"ES256","kid":"k","typ":"r2ps-response+jwt"}`,
		"typ JWT":         `{"alg":"ES256","kid":"k","typ":"JWT"}`,
		"typ missing":     `{"alg":"ES256","kid":"k"}`,
		"kid missing":     `{"alg":"ES256","typ":"r2ps-request+jwt"}`,
		"kid empty":       `{"alg":"ES256","kid":"","typ":"r2ps-request+jwt"}`,
		"crit":            withKID(`"crit":["exp"],"exp":1`),
		"b64 false":       withKID(`"b64":false`),
		"x5c":             withKID(`"x5c":["MIIB"]`),
		"jku":             withKID(`"jku":"https://attacker.example"`),
		"cty":             withKID(`"cty":"JWT"`),
		"duplicate alg":   `{"alg":"ES256","alg":"none","kid":"k","typ":"r2ps-request+jwt"}`,
		"case-folded KID": `{"alg":"ES256","KID":"k","typ":"r2ps-request+jwt"}`,
		"jwk with d":      withKID(`"jwk":` + strings.TrimSuffix(jwk, "}") + `,"d":"` + b64url(mustBytes(t, f.csk)) + `"}`),
		"jwk P-384":       withKID(`"jwk":` + p384jwk),
		"jwk for enc":     withKID(`"jwk":` + strings.TrimSuffix(jwk, "}") + `,"use":"enc"}`),
		"jwk for ES384":   withKID(`"jwk":` + strings.TrimSuffix(jwk, "}") + `,"alg":"ES384"}`),
		"jwk with x5u":    withKID(`"jwk":` + strings.TrimSuffix(jwk, "}") + `,"x5u":"https://x"}`),
		"jwk string":      withKID(`"jwk":"key"`),
		"header array":    `[]`,
		"trailing":        good + `{}`,
	} {
		t.Run(name, func(t *testing.T) {
			called := false
			key := func(kid string, k *jose.JSONWebKey) (*ecdsa.PublicKey, error) { called = true; return f.cskKey(kid, k) }
			_, _, err := VerifyJWS(signRaw(t, header, []byte("p"), f.csk), TypRequest, key)
			wantSentinel(t, err, ErrHeader)
			if called {
				t.Fatal("key function called for a refused header")
			}
		})
	}
	// alg none and HMAC-with-the-public-key, the classic confusions.
	none := b64url([]byte(`{"alg":"none","kid":"k","typ":"r2ps-request+jwt"}`)) + "." + b64url([]byte("p")) + "."
	if _, _, err := VerifyJWS([]byte(none), TypRequest, f.cskKey); !errors.Is(err, ErrHeader) {
		t.Fatal(err)
	}
	pub, _ := f.csk.PublicKey.Bytes()
	input := b64url([]byte(`{"alg":"HS256","kid":"`+f.cskKID+`","typ":"r2ps-request+jwt"}`)) + "." + b64url([]byte("p"))
	mac := hmac.New(sha256.New, pub)
	mac.Write([]byte(input))
	if _, _, err := VerifyJWS([]byte(input+"."+b64url(mac.Sum(nil))), TypRequest, f.cskKey); !errors.Is(err, ErrHeader) {
		t.Fatal(err)
	}

	msg := string(signRaw(t, good, []byte("p"), f.csk))
	parts := strings.Split(msg, ".")
	sig, _ := decodeB64URL([]byte(parts[2]))
	derSig, _ := f.csk.Sign(rand.Reader, make([]byte, 32), crypto.SHA256)
	for name, c := range map[string]struct {
		m    string
		want *Error
	}{
		"sig 63 bytes":   {parts[0] + "." + parts[1] + "." + b64url(sig[:63]), ErrSignature},
		"sig 65 bytes":   {parts[0] + "." + parts[1] + "." + b64url(append(sig, 0)), ErrSignature},
		"DER signature":  {parts[0] + "." + parts[1] + "." + b64url(derSig), ErrSignature},
		"sig padded":     {msg + "=", ErrSignature},
		"zero sig":       {parts[0] + "." + parts[1] + "." + b64url(make([]byte, 64)), ErrSignature},
		"other payload":  {parts[0] + "." + b64url([]byte("q")) + "." + parts[2], ErrSignature},
		"payload padded": {parts[0] + "." + base64.URLEncoding.EncodeToString([]byte("p")) + "." + parts[2], ErrSignature},
		// Signed as it is, the padded payload passes the signature and is
		// refused by the decoder, which runs after it.
		"payload padded, signed": {signInput(t, parts[0]+"."+base64.URLEncoding.EncodeToString([]byte("p")), f.csk), ErrMalformed},
		"2 parts":                {parts[0] + "." + parts[1], ErrMalformed},
		"4 parts":                {msg + ".", ErrMalformed},
		"header not b64":         {"!" + msg, ErrMalformed},
		"JWE":                    {parts[0] + ".." + parts[1] + "." + parts[2] + ".AAAA", ErrMalformed},
	} {
		_, _, err := VerifyJWS([]byte(c.m), TypRequest, f.cskKey)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A key function that hands back a non-P-256 key is a server fault.
	_, _, err := VerifyJWS([]byte(msg), TypRequest, func(string, *jose.JSONWebKey) (*ecdsa.PublicKey, error) { return &p384.PublicKey, nil })
	if err == nil || Code(err) != CodeServerError {
		t.Fatal(err)
	}
}

func mustBytes(t testing.TB, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	b, err := k.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ecdhPub(t testing.TB, k *ecdsa.PrivateKey) *ecdh.PublicKey {
	t.Helper()
	p, err := k.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestJWSGoJoseInterop(t *testing.T) {
	f := newFixture(t)
	ours, err := SignJWS([]byte("payload"), TypRequest, f.cskKID, hsmSigner{f.csk}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := jose.ParseSignedCompact(string(ours), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := obj.Verify(&f.csk.PublicKey); err != nil || string(out) != "payload" {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: f.csk},
		(&jose.SignerOptions{}).WithType(TypRequest).WithHeader("kid", f.cskKID))
	if err != nil {
		t.Fatal(err)
	}
	theirs, _ := s.Sign([]byte("payload"))
	compact, _ := theirs.CompactSerialize()
	if out, _, err := VerifyJWS([]byte(compact), TypRequest, f.cskKey); err != nil || string(out) != "payload" {
		t.Fatal(err)
	}
}

func TestThumbprint(t *testing.T) {
	// The go-r2ps-service vector key; value computed independently (I-D notes §3).
	k := vectorKey(t, loadVectors(t, "go-r2ps-service-vectors_go.json"))
	if got := Thumbprint(&k.PublicKey); got != "_konBEGxw0EObTcPZL5zC22gf0J55TyDYib3E7z0_oo" {
		t.Fatalf("thumbprint %s", got)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if Thumbprint(nil) != "" || Thumbprint(&p384.PublicKey) != "" {
		t.Fatal("thumbprint of a non-P-256 key")
	}
	//lint:ignore SA1019 a point off the curve can only be made through the raw coordinates
	off := &ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(1), Y: big.NewInt(1)}
	if Thumbprint(off) != "" {
		t.Fatal("thumbprint of a point off the curve")
	}
	// go-jose's, for keys with and without leading zero bytes in x or y.
	var short int
	for i := 0; i < 4000 && (i < 50 || short < 2); i++ {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pt, _ := k.PublicKey.Bytes()
		if pt[1] == 0 || pt[33] == 0 {
			short++
		} else if i >= 50 {
			continue
		}
		tp, err := (&jose.JSONWebKey{Key: &k.PublicKey}).Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := Thumbprint(&k.PublicKey), b64url(tp); got != want {
			t.Fatalf("%x: %s, go-jose %s", pt, got, want)
		}
	}
	if short < 2 {
		t.Fatal("no key with a short coordinate in 4000")
	}
}

// TestEmbeddedJWKRegisteredMembers: RFC 7517 §4 members a client library
// may add to the jwk header (kid, alg, use) are accepted when they fit an
// ES256 signing key.
func TestEmbeddedJWKRegisteredMembers(t *testing.T) {
	for _, extra := range []string{`,"kid":"x"`, `,"alg":"ES256","use":"sig"`, `,"key_ops":["verify"]`} {
		k, _ := ecdh.P256().GenerateKey(rand.Reader)
		b := k.PublicKey().Bytes()
		raw := `{"kty":"EC","crv":"P-256","x":"` + b64url(b[1:33]) + `","y":"` + b64url(b[33:]) + `"` + extra + `}`
		if _, err := parseSigningJWK([]byte(raw)); err != nil {
			t.Errorf("%s: %v", extra, err)
		}
		if _, err := parseECJWK([]byte(raw)); err == nil {
			t.Errorf("%s accepted in an epk", extra)
		}
	}
}
