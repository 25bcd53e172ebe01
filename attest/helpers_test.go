package attest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

// testNow is the fixed clock of the tests.
var testNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// fixture is a development CA, a Wallet Provider signing key certified by
// it, an Issuer and a Verifier on the fixed clock, and wallet keys.
type fixture struct {
	ca      *DevCA
	key     *ecdsa.PrivateKey
	chain   []*x509.Certificate
	issuer  *Issuer
	ver     *Verifier
	wallet  []*ecdsa.PrivateKey
	status  StatusRef
	cstatus StatusRef
	// selfSigned is a self-signed certificate for key; otherChain a chain
	// for key from another CA.
	selfSigned []*x509.Certificate
	otherChain []*x509.Certificate
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ca, err := NewDevCA("wsca test", testNow)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{ca: ca, key: newKey(t)}
	f.chain, err = ca.Issue(&f.key.PublicKey, "wsca test attestation key", testNow.Add(-time.Minute), 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f.issuer, err = NewIssuer(IssuerConfig{Key: f.key, Chain: f.chain, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	f.ver, err = NewVerifier(VerifierConfig{Roots: []*x509.Certificate{ca.Root}, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		f.wallet = append(f.wallet, newKey(t))
	}
	f.selfSigned = selfSignedChain(t, f.key)
	other, err := NewDevCA("other", testNow)
	if err != nil {
		t.Fatal(err)
	}
	if f.otherChain, err = other.Issue(&f.key.PublicKey, "other leaf", testNow.Add(-time.Minute), time.Hour); err != nil {
		t.Fatal(err)
	}
	f.status = StatusRef{Idx: 4711, URI: "https://wp.example/statuslists/1"}
	f.cstatus = StatusRef{Idx: 815, URI: "https://wp.example/statuslists/2"}
	return f
}

func (f *fixture) kaInput() KeyAttestationInput {
	return KeyAttestationInput{
		Keys:          []*ecdsa.PublicKey{&f.wallet[0].PublicKey, &f.wallet[1].PublicKey},
		Assurance:     KeyAssurance{KeyStorage: AssuranceHigh, UserAuthentication: AssuranceHigh},
		Certification: "https://wp.example/certification",
		Nonce:         "n-0S6_WzA2Mj",
		Status:        f.status,
		Lifetime:      31 * 24 * time.Hour,
	}
}

func (f *fixture) wiaInput() WalletAttestationInput {
	return WalletAttestationInput{
		Subject:       "https://wp.example/wallet-solution",
		Issuer:        "https://wp.example",
		Key:           &f.wallet[2].PublicKey,
		WalletName:    "wsca test wallet",
		WalletLink:    "https://wp.example/wallet",
		WalletVersion: "1.2.3",
		Status:        f.cstatus,
		Lifetime:      time.Hour,
	}
}

// decodeToken returns the header and claims of a compact JWS as maps.
func decodeToken(t testing.TB, token string) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	var h, c map[string]any
	for i, dst := range []*map[string]any{&h, &c} {
		b, err := b64.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return h, c
}

// rawToken signs any header and claims bytes with ES256 by key, whatever
// the header says: how the refusal tests forge tokens.
func rawToken(t testing.TB, key *ecdsa.PrivateKey, header, claims []byte) string {
	t.Helper()
	in := b64.EncodeToString(header) + "." + b64.EncodeToString(claims)
	h := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return in + "." + b64.EncodeToString(sig)
}

// resign re-encodes header and claims maps and signs them by key.
func resign(t testing.TB, key *ecdsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	hb, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return rawToken(t, key, hb, cb)
}

// selfSignedChain is a one-certificate chain whose leaf, for key, is
// self-signed.
func selfSignedChain(t testing.TB, key *ecdsa.PrivateKey) []*x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "self-signed"},
		NotBefore:    testNow.Add(-time.Hour),
		NotAfter:     testNow.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return []*x509.Certificate{c}
}

// memSeen is an in-memory SeenSet for the tests.
type memSeen struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (m *memSeen) Add(_ context.Context, id string, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]time.Time{}
	}
	if _, ok := m.seen[id]; ok {
		return false, nil
	}
	m.seen[id] = until
	return true, nil
}

var _ SeenSet = (*memSeen)(nil)

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
