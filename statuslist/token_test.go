package statuslist_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/go-jose/go-jose/v4"
	"github.com/veraison/go-cose"

	"github.com/wsca/wsca/statuslist"
	"github.com/wsca/wsca/statuslist/statuslisttest"
)

const testURI = "https://wsca.example/statuslists/abc"

var (
	testIat = time.Unix(1_800_000_000, 0).UTC()
	testNow = testIat.Add(time.Minute)
)

func testList(t *testing.T) (*statuslist.List, []byte) {
	t.Helper()
	l, err := statuslist.New(2, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range map[int]statuslist.Status{0: statuslist.Invalid, 7: statuslist.Suspended, 9999: statuslist.Invalid} {
		if err := l.Set(i, s); err != nil {
			t.Fatal(err)
		}
	}
	lst, err := l.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return l, lst
}

func testToken(t *testing.T) *statuslist.Token {
	_, lst := testList(t)
	return &statuslist.Token{
		Subject:  testURI,
		IssuedAt: testIat,
		Expiry:   testIat.Add(24 * time.Hour),
		TTL:      time.Hour,
		Bits:     2,
		Lst:      lst,
	}
}

type format struct {
	name   string
	sign   func(*statuslist.Token, crypto.Signer, statuslist.SignOptions) ([]byte, error)
	verify func(*statuslist.Verifier, []byte, string) (*statuslist.Verified, error)
}

var formats = []format{
	{"jwt", statuslist.SignJWT, (*statuslist.Verifier).VerifyJWT},
	{"cwt", statuslist.SignCWT, (*statuslist.Verifier).VerifyCWT},
}

func TestRoundTrip(t *testing.T) {
	pki := statuslisttest.NewPKI(t)
	want, _ := testList(t)
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			tok, err := f.sign(testToken(t), pki.Key, statuslist.SignOptions{Chain: pki.Chain, KeyID: "k1"})
			if err != nil {
				t.Fatal(err)
			}
			verifiers := map[string]*statuslist.Verifier{
				"roots": {Roots: pki.Roots, Now: func() time.Time { return testNow }},
				"key":   {Key: &pki.Key.PublicKey, Now: func() time.Time { return testNow }},
			}
			for name, v := range verifiers {
				got, err := f.verify(v, tok, testURI)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if got.Subject != testURI || !got.IssuedAt.Equal(testIat) || !got.Expiry.Equal(testIat.Add(24*time.Hour)) ||
					got.TTL != time.Hour || got.Bits != 2 || got.KeyID != "k1" {
					t.Fatalf("%s: token %+v", name, got.Token)
				}
				if !bytes.Equal(got.List.Bytes(), want.Bytes()) {
					t.Fatalf("%s: list differs", name)
				}
				for idx, s := range map[uint64]statuslist.Status{0: statuslist.Invalid, 1: statuslist.Valid, 7: statuslist.Suspended, 9999: statuslist.Invalid} {
					if g, err := got.Status(idx); err != nil || g != s {
						t.Fatalf("%s: Status(%d) = %v, %v; want %v", name, idx, g, err, s)
					}
				}
				if _, err := got.Status(10000); !errors.Is(err, statuslist.ErrIndex) {
					t.Fatalf("Status out of range: %v", err)
				}
				if name == "roots" && (len(got.Chain) != 3 || !got.Chain[2].Equal(pki.Root)) {
					t.Fatalf("chain of %d certificates", len(got.Chain))
				}
			}
		})
	}
}

// TestJWTHeader pins the JOSE header and claim names a statuslist+jwt has.
func TestJWTHeader(t *testing.T) {
	pki := statuslisttest.NewPKI(t)
	tok, err := statuslist.SignJWT(testToken(t), pki.Key, statuslist.SignOptions{Chain: pki.Chain, KeyID: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(tok), ".")
	var h map[string]any
	var c map[string]any
	decodeSegment(t, parts[0], &h)
	decodeSegment(t, parts[1], &c)
	if h["typ"] != "statuslist+jwt" || h["alg"] != "ES256" || h["kid"] != "k1" {
		t.Fatalf("header %v", h)
	}
	x5c, _ := h["x5c"].([]any)
	if len(x5c) != 2 || x5c[0] != base64.StdEncoding.EncodeToString(pki.Chain[0].Raw) {
		t.Fatalf("x5c %v", h["x5c"])
	}
	sl, _ := c["status_list"].(map[string]any)
	if c["sub"] != testURI || c["iat"] != float64(testIat.Unix()) || c["ttl"] != float64(3600) || c["exp"] == nil ||
		sl["bits"] != float64(2) || strings.ContainsAny(sl["lst"].(string), "=+/") {
		t.Fatalf("claims %v", c)
	}
}

func decodeSegment(t *testing.T, s string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// TestCWTStructure pins the COSE structure of a statuslist+cwt and that
// its headers and claims are deterministic CBOR.
func TestCWTStructure(t *testing.T) {
	pki := statuslisttest.NewPKI(t)
	tok, err := statuslist.SignCWT(testToken(t), pki.Key, statuslist.SignOptions{Chain: pki.Chain, KeyID: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	var tag cbor.RawTag
	if err := cbor.Unmarshal(tok, &tag); err != nil || tag.Number != 18 {
		t.Fatalf("not COSE_Sign1_Tagged: tag %d, %v", tag.Number, err)
	}
	var arr []cbor.RawMessage
	if err := cbor.Unmarshal(tag.Content, &arr); err != nil || len(arr) != 4 {
		t.Fatalf("COSE_Sign1: %v", err)
	}
	var protBytes, payload []byte
	cbor.Unmarshal(arr[0], &protBytes)
	cbor.Unmarshal(arr[2], &payload)
	var prot map[int64]any
	if err := cbor.Unmarshal(protBytes, &prot); err != nil {
		t.Fatal(err)
	}
	if prot[1] != int64(-7) || prot[16] != "application/statuslist+cwt" || !bytes.Equal(prot[4].([]byte), []byte("k1")) {
		t.Fatalf("protected header %v", prot)
	}
	if chain, _ := prot[33].([]any); len(chain) != 2 || !bytes.Equal(chain[0].([]byte), pki.Chain[0].Raw) {
		t.Fatal("x5chain is not the chain")
	}
	var claims map[int64]any
	if err := cbor.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	sl, _ := claims[65533].(map[any]any)
	if claims[2] != testURI || claims[6] != uint64(testIat.Unix()) || claims[65534] != uint64(3600) || claims[4] == nil ||
		sl["bits"] != uint64(2) {
		t.Fatalf("claims %v", claims)
	}
	if _, ok := sl["lst"].([]byte); !ok {
		t.Fatal("lst is not a byte string")
	}
	det, _ := cbor.CoreDetEncOptions().EncMode()
	for name, b := range map[string][]byte{"protected": protBytes, "claims": payload} {
		var v any
		cbor.Unmarshal(b, &v)
		again, err := det.Marshal(v)
		if err != nil || !bytes.Equal(again, b) {
			t.Errorf("%s header is not deterministic CBOR", name)
		}
	}
	// One certificate is a bare byte string (RFC 9360), and verifies.
	one, err := statuslist.SignCWT(testToken(t), pki.Key, statuslist.SignOptions{Chain: pki.Chain[:1]})
	if err != nil {
		t.Fatal(err)
	}
	v := &statuslist.Verifier{Key: &pki.Key.PublicKey, Now: func() time.Time { return testNow }}
	if _, err := v.VerifyCWT(one, testURI); err != nil {
		t.Fatal(err)
	}
}

// TestDraftJWT verifies the draft's signed example (status_list_jwt_raw)
// with the draft's example key, and finds the statuses of §4.1.
func TestDraftJWT(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "draft", "status_list_jwt_raw.md"))
	if err != nil {
		t.Fatal(err)
	}
	keyJSON, err := os.ReadFile(filepath.Join("testdata", "draft", "example-key.json"))
	if err != nil {
		t.Fatal(err)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(keyJSON); err != nil {
		t.Fatal(err)
	}
	v := &statuslist.Verifier{Key: jwk.Key, Now: func() time.Time { return time.Unix(1_700_000_000, 0) }}
	got, err := v.VerifyJWT([]byte(strings.Join(strings.Fields(string(raw)), "")), "https://example.com/statuslists/1")
	if err != nil {
		t.Fatal(err)
	}
	want := []statuslist.Status{1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1}
	for i, w := range want {
		if s, _ := got.Status(uint64(i)); s != w {
			t.Fatalf("status[%d] = %d, want %d", i, s, w)
		}
	}
	if got.TTL != 12*time.Hour || got.KeyID != "12" {
		t.Fatalf("ttl %v kid %q", got.TTL, got.KeyID)
	}
}

// claimsJSON are JWT claims; claimsCBOR the same as a CWT claims set.
func claimsJSON(lst []byte, mod func(map[string]any)) map[string]any {
	c := map[string]any{
		"sub": testURI, "iat": testIat.Unix(), "exp": testIat.Add(time.Hour).Unix(), "ttl": 60,
		"status_list": map[string]any{"bits": 2, "lst": base64.RawURLEncoding.EncodeToString(lst)},
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func claimsCBOR(lst []byte, mod func(map[any]any)) map[any]any {
	c := map[any]any{
		2: testURI, 6: testIat.Unix(), 4: testIat.Add(time.Hour).Unix(), 65534: 60,
		65533: map[string]any{"bits": 2, "lst": lst},
	}
	if mod != nil {
		mod(c)
	}
	return c
}

// rawJWT signs claims with any header, algorithm and key.
func rawJWT(t *testing.T, alg jose.SignatureAlgorithm, key any, headers map[string]any, claims any) []byte {
	t.Helper()
	so := &jose.SignerOptions{}
	for k, v := range headers {
		so = so.WithHeader(jose.HeaderKey(k), v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, so)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return []byte(out)
}

// rawCWT signs a claims set with any protected header.
func rawCWT(t *testing.T, alg cose.Algorithm, key crypto.Signer, protected map[any]any, claims any) []byte {
	t.Helper()
	msg := cose.NewSign1Message()
	for k, v := range protected {
		msg.Headers.Protected[k] = v
	}
	msg.Headers.Protected.SetAlgorithm(alg)
	payload, err := cbor.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	msg.Payload = payload
	s, err := cose.NewSigner(alg, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := msg.Sign(rand.Reader, nil, s); err != nil {
		t.Fatal(err)
	}
	out, err := msg.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestVerifyRefuses: every check of the verifier, each on a token that
// passes all the others.
func TestVerifyRefuses(t *testing.T) {
	pki := statuslisttest.NewPKI(t)
	other := statuslisttest.NewPKI(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, lst := testList(t)
	bomb := zlibOf(t, make([]byte, 8<<20), 9)
	now := func() time.Time { return testNow }
	byKey := &statuslist.Verifier{Key: &pki.Key.PublicKey, Now: now}
	byRoots := &statuslist.Verifier{Roots: pki.Roots, Now: now}
	small := &statuslist.Verifier{Key: &pki.Key.PublicKey, Now: now, MaxEntries: 1 << 20}

	jwtHdr := map[string]any{"typ": "statuslist+jwt"}
	x5c := func(p *statuslisttest.PKI) map[string]any {
		var s []string
		for _, c := range p.Chain {
			s = append(s, base64.StdEncoding.EncodeToString(c.Raw))
		}
		return map[string]any{"typ": "statuslist+jwt", "x5c": s}
	}
	cwtHdr := map[any]any{int64(16): "application/statuslist+cwt"}
	good, err := statuslist.SignJWT(testToken(t), pki.Key, statuslist.SignOptions{KeyID: "k"})
	if err != nil {
		t.Fatal(err)
	}
	// One bit of the signature flipped, still valid base64url.
	dot := bytes.LastIndexByte(good, '.')
	sig, err := base64.RawURLEncoding.DecodeString(string(good[dot+1:]))
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)/2] ^= 1
	tampered := append(bytes.Clone(good[:dot+1]), base64.RawURLEncoding.EncodeToString(sig)...)
	goodCWT, err := statuslist.SignCWT(testToken(t), pki.Key, statuslist.SignOptions{KeyID: "k"})
	if err != nil {
		t.Fatal(err)
	}
	tamperedCWT := bytes.Clone(goodCWT)
	tamperedCWT[len(tamperedCWT)-1] ^= 1

	cases := []struct {
		name string
		v    *statuslist.Verifier
		jwt  bool
		tok  []byte
		uri  string
		want error
	}{
		{"jwt ok", byKey, true, rawJWT(t, jose.ES256, pki.Key, jwtHdr, claimsJSON(lst, nil)), testURI, nil},
		{"jwt typ missing", byKey, true, rawJWT(t, jose.ES256, pki.Key, nil, claimsJSON(lst, nil)), testURI, statuslist.ErrType},
		{"jwt typ JWT", byKey, true, rawJWT(t, jose.ES256, pki.Key, map[string]any{"typ": "JWT"}, claimsJSON(lst, nil)), testURI, statuslist.ErrType},
		{"jwt typ media type", byKey, true, rawJWT(t, jose.ES256, pki.Key, map[string]any{"typ": "application/statuslist+jwt"}, claimsJSON(lst, nil)), testURI, statuslist.ErrType},
		{"jwt alg ES384", &statuslist.Verifier{Key: &p384.PublicKey, Now: now}, true, rawJWT(t, jose.ES384, p384, jwtHdr, claimsJSON(lst, nil)), testURI, statuslist.ErrAlg},
		{"jwt alg HS256", byKey, true, rawJWT(t, jose.HS256, bytes.Repeat([]byte{1}, 32), jwtHdr, claimsJSON(lst, nil)), testURI, statuslist.ErrAlg},
		{"jwt signature", byKey, true, tampered, testURI, statuslist.ErrSignature},
		{"jwt other key", &statuslist.Verifier{Key: &other.Key.PublicKey, Now: now}, true, good, testURI, statuslist.ErrSignature},
		{"jwt expired", byKey, true, rawJWT(t, jose.ES256, pki.Key, jwtHdr, claimsJSON(lst, func(c map[string]any) { c["exp"] = testNow.Unix() })), testURI, statuslist.ErrExpired},
		{"jwt iat future", byKey, true, rawJWT(t, jose.ES256, pki.Key, jwtHdr, claimsJSON(lst, func(c map[string]any) { c["iat"] = testNow.Unix() + 1 })), testURI, statuslist.ErrNotYetValid},
		{"jwt sub", byKey, true, good, testURI + "x", statuslist.ErrSubject},
		{"jwt no uri", byKey, true, good, "", statuslist.ErrSubject},
		{"jwt no sub", byKey, true, rawJWT(t, jose.ES256, pki.Key, jwtHdr, claimsJSON(lst, func(c map[string]any) { delete(c, "sub") })), testURI, statuslist.ErrClaims},
		{"jwt no iat", byKey, true, rawJWT(t, jose.ES256, pki.Key, jwtHdr, claimsJSON(lst, func(c map[string]any) { delete(c, "iat") })), testURI, statuslist.ErrClaims},
		{"jwt iat float", byKey, true, rawJWT(t, jose.ES256, pki.Key, jwtHdr, claimsJSON(lst, func(c map[string]any) { c["iat"] = 1.5 })), testURI, statuslist.ErrClaims},
		{"jwt ttl 0", byKey, true, rawJWT(t, jose.ES256, pki.Key, jwtHdr, claimsJSON(lst, func(c map[string]any) { c["ttl"] = 0 })), testURI, statuslist.ErrClaims},
		{"jwt no status_list", byKey, true, rawJWT(t, jose.ES256, pki.Key, jwtHdr, claimsJSON(lst, func(c map[string]any) { delete(c, "status_list") })), testURI, statuslist.ErrClaims},
		{"jwt lst padded", byKey, true, rawJWT(t, jose.ES256, pki.Key, jwtHdr, claimsJSON(lst, func(c map[string]any) {
			c["status_list"] = map[string]any{"bits": 2, "lst": base64.URLEncoding.EncodeToString(lst[:len(lst)-1])}
		})), testURI, statuslist.ErrClaims},
		{"jwt bits 3", byKey, true, rawJWT(t, jose.ES256, pki.Key, jwtHdr, claimsJSON(lst, func(c map[string]any) {
			c["status_list"] = map[string]any{"bits": 3, "lst": base64.RawURLEncoding.EncodeToString(lst)}
		})), testURI, statuslist.ErrBits},
		{"jwt zip bomb", small, true, rawJWT(t, jose.ES256, pki.Key, jwtHdr, claimsJSON(bomb, nil)), testURI, statuslist.ErrTooLarge},
		{"jwt chain ok", byRoots, true, rawJWT(t, jose.ES256, pki.Key, x5c(pki), claimsJSON(lst, nil)), testURI, nil},
		{"jwt no chain", byRoots, true, good, testURI, statuslist.ErrChain},
		{"jwt untrusted chain", byRoots, true, rawJWT(t, jose.ES256, other.Key, x5c(other), claimsJSON(lst, nil)), testURI, statuslist.ErrChain},
		{"jwt chain of another key", byRoots, true, rawJWT(t, jose.ES256, other.Key, x5c(pki), claimsJSON(lst, nil)), testURI, statuslist.ErrSignature},
		{"jwt garbage", byKey, true, []byte("a.b.c"), testURI, statuslist.ErrMalformed},
		{"jwt too large", small, true, make([]byte, 2<<20), testURI, statuslist.ErrTooLarge},
		{"no key or roots", &statuslist.Verifier{}, true, good, testURI, statuslist.ErrConfig},
		{"key and roots", &statuslist.Verifier{Key: &pki.Key.PublicKey, Roots: pki.Roots}, true, good, testURI, statuslist.ErrConfig},

		{"cwt ok", byKey, false, rawCWT(t, cose.AlgorithmES256, pki.Key, cwtHdr, claimsCBOR(lst, nil)), testURI, nil},
		{"cwt typ missing", byKey, false, rawCWT(t, cose.AlgorithmES256, pki.Key, nil, claimsCBOR(lst, nil)), testURI, statuslist.ErrType},
		{"cwt typ jwt", byKey, false, rawCWT(t, cose.AlgorithmES256, pki.Key, map[any]any{int64(16): "application/statuslist+jwt"}, claimsCBOR(lst, nil)), testURI, statuslist.ErrType},
		{"cwt alg ES384", &statuslist.Verifier{Key: &p384.PublicKey, Now: now}, false, rawCWT(t, cose.AlgorithmES384, p384, cwtHdr, claimsCBOR(lst, nil)), testURI, statuslist.ErrAlg},
		{"cwt signature", byKey, false, tamperedCWT, testURI, statuslist.ErrSignature},
		{"cwt expired", byKey, false, rawCWT(t, cose.AlgorithmES256, pki.Key, cwtHdr, claimsCBOR(lst, func(c map[any]any) { c[4] = testNow.Unix() })), testURI, statuslist.ErrExpired},
		{"cwt iat future", byKey, false, rawCWT(t, cose.AlgorithmES256, pki.Key, cwtHdr, claimsCBOR(lst, func(c map[any]any) { c[6] = testNow.Unix() + 1 })), testURI, statuslist.ErrNotYetValid},
		{"cwt sub", byKey, false, goodCWT, "https://other.example/1", statuslist.ErrSubject},
		{"cwt no sub", byKey, false, rawCWT(t, cose.AlgorithmES256, pki.Key, cwtHdr, claimsCBOR(lst, func(c map[any]any) { delete(c, 2) })), testURI, statuslist.ErrClaims},
		{"cwt sub not text", byKey, false, rawCWT(t, cose.AlgorithmES256, pki.Key, cwtHdr, claimsCBOR(lst, func(c map[any]any) { c[2] = 7 })), testURI, statuslist.ErrClaims},
		{"cwt lst text", byKey, false, rawCWT(t, cose.AlgorithmES256, pki.Key, cwtHdr, claimsCBOR(lst, func(c map[any]any) {
			c[65533] = map[string]any{"bits": 2, "lst": base64.RawURLEncoding.EncodeToString(lst)}
		})), testURI, statuslist.ErrClaims},
		{"cwt no status_list", byKey, false, rawCWT(t, cose.AlgorithmES256, pki.Key, cwtHdr, claimsCBOR(lst, func(c map[any]any) { delete(c, 65533) })), testURI, statuslist.ErrClaims},
		{"cwt zip bomb", small, false, rawCWT(t, cose.AlgorithmES256, pki.Key, cwtHdr, claimsCBOR(bomb, nil)), testURI, statuslist.ErrTooLarge},
		{"cwt untagged", byKey, false, goodCWT[1:], testURI, statuslist.ErrMalformed},
		{"cwt no chain", byRoots, false, goodCWT, testURI, statuslist.ErrChain},
		{"cwt untrusted chain", byRoots, false, rawCWT(t, cose.AlgorithmES256, other.Key, map[any]any{int64(16): "application/statuslist+cwt", int64(33): other.Chain[0].Raw}, claimsCBOR(lst, nil)), testURI, statuslist.ErrChain},
		{"cwt chain ok", byRoots, false, rawCWT(t, cose.AlgorithmES256, pki.Key, map[any]any{int64(16): "application/statuslist+cwt", int64(33): [][]byte{pki.Chain[0].Raw, pki.Chain[1].Raw}}, claimsCBOR(lst, nil)), testURI, nil},
	}
	for _, c := range cases {
		var err error
		if c.jwt {
			_, err = c.v.VerifyJWT(c.tok, c.uri)
		} else {
			_, err = c.v.VerifyCWT(c.tok, c.uri)
		}
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestSignRefuses(t *testing.T) {
	pki := statuslisttest.NewPKI(t)
	other := statuslisttest.NewPKI(t)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	cases := []struct {
		name string
		key  crypto.Signer
		opts statuslist.SignOptions
		mod  func(*statuslist.Token)
		want error
	}{
		{"no chain or kid", pki.Key, statuslist.SignOptions{}, nil, statuslist.ErrConfig},
		{"leaf of another key", other.Key, statuslist.SignOptions{Chain: pki.Chain}, nil, statuslist.ErrConfig},
		{"P-384", p384, statuslist.SignOptions{KeyID: "k"}, nil, statuslist.ErrAlg},
		{"no signer", nil, statuslist.SignOptions{KeyID: "k"}, nil, statuslist.ErrConfig},
		{"no subject", pki.Key, statuslist.SignOptions{KeyID: "k"}, func(t *statuslist.Token) { t.Subject = "" }, statuslist.ErrClaims},
		{"no iat", pki.Key, statuslist.SignOptions{KeyID: "k"}, func(t *statuslist.Token) { t.IssuedAt = time.Time{} }, statuslist.ErrClaims},
		{"exp before iat", pki.Key, statuslist.SignOptions{KeyID: "k"}, func(t *statuslist.Token) { t.Expiry = t.IssuedAt }, statuslist.ErrClaims},
		{"ttl below a second", pki.Key, statuslist.SignOptions{KeyID: "k"}, func(t *statuslist.Token) { t.TTL = time.Millisecond }, statuslist.ErrClaims},
		{"bits 3", pki.Key, statuslist.SignOptions{KeyID: "k"}, func(t *statuslist.Token) { t.Bits = 3 }, statuslist.ErrBits},
		{"empty lst", pki.Key, statuslist.SignOptions{KeyID: "k"}, func(t *statuslist.Token) { t.Lst = nil }, statuslist.ErrClaims},
	}
	for _, c := range cases {
		for _, f := range formats {
			tok := testToken(t)
			if c.mod != nil {
				c.mod(tok)
			}
			if _, err := f.sign(tok, c.key, c.opts); !errors.Is(err, c.want) {
				t.Errorf("%s %s: %v, want %v", f.name, c.name, err, c.want)
			}
		}
	}
}
