package attest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/wsca/wsca/ecp256"
)

func TestDevCA(t *testing.T) {
	f := newFixture(t)
	root, inter, leaf := f.ca.Root, f.ca.Intermediate, f.chain[0]
	if !root.IsCA || !selfSigned(root) || root.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("root: CA %v self-signed %v usage %v", root.IsCA, selfSigned(root), root.KeyUsage)
	}
	if !inter.IsCA || !inter.MaxPathLenZero || selfSigned(inter) || inter.CheckSignatureFrom(root) != nil {
		t.Error("intermediate is not a path-length-0 CA issued by the root")
	}
	if leaf.IsCA || selfSigned(leaf) || leaf.KeyUsage != x509.KeyUsageDigitalSignature || leaf.CheckSignatureFrom(inter) != nil {
		t.Error("leaf is not a signing end-entity issued by the intermediate")
	}
	if len(f.chain) != 2 || f.chain[1] != inter {
		t.Error("chain is not leaf, intermediate")
	}
	if _, err := f.ca.Issue(&f.key.PublicKey, "", testNow, time.Hour); !errors.Is(err, ErrInput) {
		t.Errorf("no name: %v", err)
	}
	if _, err := NewDevCA("", testNow); !errors.Is(err, ErrInput) {
		t.Errorf("CA without name: %v", err)
	}
	if _, err := f.ca.Issue(&f.key.PublicKey, "x", testNow, 0); !errors.Is(err, ErrInput) {
		t.Errorf("no lifetime: %v", err)
	}
	if _, err := NewKeySet(f.selfSigned); !errors.Is(err, ErrSelfSigned) {
		t.Errorf("key set of a self-signed chain: %v", err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ca.Issue(&p384.PublicKey, "x", testNow, time.Hour); !errors.Is(err, ErrKey) {
		t.Errorf("P-384 key: %v", err)
	}
	if _, err := f.ca.Issue("not a key", "x", testNow, time.Hour); !errors.Is(err, ErrKey) {
		t.Errorf("not a key: %v", err)
	}
}

func TestCheckChain(t *testing.T) {
	f := newFixture(t)
	roots := []*x509.Certificate{f.ca.Root}
	if _, err := CheckChain(f.chain, roots, testNow); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		chain []*x509.Certificate
		roots []*x509.Certificate
		now   time.Time
		want  error
	}{
		{"empty", nil, roots, testNow, ErrNoX5C},
		{"no roots", f.chain, nil, testNow, ErrInput},
		{"expired leaf", f.chain, roots, testNow.Add(366 * 24 * time.Hour), ErrChain},
		{"not yet valid", f.chain, roots, testNow.Add(-time.Hour), ErrChain},
		{"root appended", append(append([]*x509.Certificate(nil), f.chain...), f.ca.Root), roots, testNow, ErrAnchorInChain},
		{"intermediate is an anchor", f.chain, []*x509.Certificate{f.ca.Intermediate}, testNow, ErrAnchorInChain},
		{"self-signed leaf", f.selfSigned, f.selfSigned, testNow, ErrSelfSigned},
		{"other CA", f.otherChain, roots, testNow, ErrChain},
		{"too long", make([]*x509.Certificate, maxChainLen+1), roots, testNow, ErrChain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := CheckChain(tc.chain, tc.roots, tc.now); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestChainPEM(t *testing.T) {
	f := newFixture(t)
	pemBytes := EncodeChainPEM(f.chain)
	got, err := ParseChainPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Equal(f.chain[0]) || !got[1].Equal(f.chain[1]) {
		t.Fatal("PEM round trip changed the chain")
	}
	key := []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")
	for name, in := range map[string][]byte{
		"empty":            nil,
		"garbage":          []byte("not pem"),
		"trailing":         append(append([]byte(nil), pemBytes...), "junk"...),
		"private key":      append(append([]byte(nil), pemBytes...), key...),
		"wrong block type": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: f.chain[0].Raw}),
		"bad DER":          []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
		"too many":         bytes.Repeat(EncodeChainPEM(f.chain[:1]), maxChainLen+1),
	} {
		if _, err := ParseChainPEM(in); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := ParseChainPEM(append(pemBytes, "\n\n"...)); err != nil {
		t.Errorf("trailing white space: %v", err)
	}
}

// TestRotation: after a key rotation, attestations signed by the old key
// still verify against the trust anchor and against a key set holding old
// and new keys; dropping the old key from a pinned set refuses them.
func TestRotation(t *testing.T) {
	f := newFixture(t)
	oldTok, err := f.issuer.KeyAttestation(f.kaInput())
	if err != nil {
		t.Fatal(err)
	}
	newKey := newKey(t)
	newChain, err := f.ca.Issue(&newKey.PublicKey, "wsca attestation key 2", testNow.Add(-time.Minute), 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	newIssuer, err := NewIssuer(IssuerConfig{Key: newKey, Chain: newChain, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	newTok, err := newIssuer.KeyAttestation(f.kaInput())
	if err != nil {
		t.Fatal(err)
	}
	both, err := NewKeySet(f.chain, newChain)
	if err != nil {
		t.Fatal(err)
	}
	// The published JWKS round-trips and names keys by ecp256.KID.
	b, err := json.Marshal(both)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseKeySet(b)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := ecp256.KID(&newKey.PublicKey)
	if len(parsed.Keys) != 2 || parsed.Keys[1].Kid != kid || parsed.Keys[1].Alg != "ES256" || len(parsed.Keys[1].X5C) != 2 {
		t.Fatalf("key set %s", b)
	}
	onlyNew, err := NewKeySet(newChain)
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return testNow }
	roots := []*x509.Certificate{f.ca.Root}
	for _, tc := range []struct {
		name     string
		keys     *KeySet
		old, new error
	}{
		{"anchor only", nil, nil, nil},
		{"old and new keys", parsed, nil, nil},
		{"new key only", onlyNew, ErrUntrustedKey, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(VerifierConfig{Roots: roots, Keys: tc.keys, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.VerifyKeyAttestation(oldTok, KeyAttestationOptions{}); !errors.Is(err, tc.old) || tc.old == nil && err != nil {
				t.Errorf("old: err = %v, want %v", err, tc.old)
			}
			if _, err := v.VerifyKeyAttestation(newTok, KeyAttestationOptions{}); !errors.Is(err, tc.new) || tc.new == nil && err != nil {
				t.Errorf("new: err = %v, want %v", err, tc.new)
			}
		})
	}
	if _, err := NewKeySet(f.chain, f.chain); !errors.Is(err, ErrKey) {
		t.Errorf("repeated key: %v", err)
	}
}

func TestParseKeySetRefuses(t *testing.T) {
	f := newFixture(t)
	good, _ := NewJWK(&f.key.PublicKey)
	priv := good
	priv.D = "AAAA"
	rsa := JWK{Kty: "RSA"}
	es384 := good
	es384.Alg = "ES384"
	for name, ks := range map[string]any{
		"private key": KeySet{Keys: []JWK{priv}},
		"RSA":         KeySet{Keys: []JWK{rsa}},
		"alg":         KeySet{Keys: []JWK{es384}},
		"no keys":     map[string]any{},
	} {
		b, _ := json.Marshal(ks)
		if _, err := ParseKeySet(b); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := ParseKeySet(append([]byte(`{"keys":[],"x":"`), append(bytes.Repeat([]byte("A"), MaxTokenSize), `"}`...)...)); err == nil {
		t.Error("oversize key set accepted")
	}
	if _, err := ParseKeySet([]byte(`{"keys":[],"keys":[]}`)); err == nil {
		t.Error("duplicate member accepted")
	}
}

// TestCheckShapeLeaf: the leaf must be a P-256 end-entity signing key.
func TestCheckShapeLeaf(t *testing.T) {
	f := newFixture(t)
	rsaLeaf := issueRaw(t, f, func(c *x509.Certificate) {}, "rsa")
	noSig := issueRaw(t, f, func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment }, "")
	p384 := issueRaw(t, f, func(c *x509.Certificate) {}, "p384")
	caLeaf := issueRaw(t, f, func(c *x509.Certificate) {
		c.IsCA, c.KeyUsage = true, x509.KeyUsageDigitalSignature|x509.KeyUsageCertSign
	}, "")
	for name, tc := range map[string]struct {
		chain []*x509.Certificate
		want  error
	}{
		"RSA leaf":          {rsaLeaf, ErrChain},
		"not for signature": {noSig, ErrChain},
		"P-384 leaf":        {p384, ErrChain},
		"CA leaf":           {caLeaf, ErrChain},
	} {
		if _, err := checkShape(tc.chain); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
}

// issueRaw issues a leaf from the fixture's intermediate with an edited
// template; kind "rsa" makes it for an RSA key.
func issueRaw(t *testing.T, f *fixture, edit func(*x509.Certificate), kind string) []*x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: "raw leaf"},
		NotBefore: testNow.Add(-time.Minute), NotAfter: testNow.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true,
	}
	edit(tmpl)
	var pub any = &f.key.PublicKey
	if kind == "p384" {
		k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pub = &k.PublicKey
	}
	if kind == "rsa" {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		pub = &k.PublicKey
	}
	tmpl.SerialNumber = big.NewInt(7)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.ca.Intermediate, pub, f.ca.interKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return []*x509.Certificate{c, f.ca.Intermediate}
}
