package attest

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/wsca/wsca/ecp256"
)

// TestKeyAttestationClaims: what the builder emits (docs/attestations.md).
func TestKeyAttestationClaims(t *testing.T) {
	f := newFixture(t)
	tok, err := f.issuer.KeyAttestation(f.kaInput())
	if err != nil {
		t.Fatal(err)
	}
	h, c := decodeToken(t, tok)
	if h["typ"] != TypKeyAttestation || h["alg"] != "ES256" || len(h["x5c"].([]any)) != 2 || len(h) != 3 {
		t.Fatalf("header = %v", h)
	}
	if _, ok := c["iss"]; ok {
		t.Fatal("key attestation has iss (TS3 v1.5 has none)")
	}
	if c["nonce"] != "n-0S6_WzA2Mj" || c["c_nonce"] != c["nonce"] {
		t.Fatalf("nonce %v, c_nonce %v", c["nonce"], c["c_nonce"])
	}
	if c["exp"].(float64)-c["iat"].(float64) != 31*24*3600 {
		t.Fatalf("lifetime %v", c["exp"].(float64)-c["iat"].(float64))
	}
	kid, _ := ecp256.KID(&f.wallet[0].PublicKey)
	if k0(c)["kid"] != kid {
		t.Fatalf("kid %v, want %s", k0(c)["kid"], kid)
	}
	st := kss(c)
	if st["exp"].(float64) < c["iat"].(float64)+31*24*3600 {
		t.Fatalf("key_storage_status.exp %v", st["exp"])
	}
	sl := st["status"].(map[string]any)["status_list"].(map[string]any)
	if sl["idx"].(float64) != 4711 || sl["uri"] != f.status.URI {
		t.Fatalf("status_list %v", sl)
	}
	ka, err := f.ver.VerifyKeyAttestation(tok, KeyAttestationOptions{Nonce: "n-0S6_WzA2Mj"})
	if err != nil {
		t.Fatal(err)
	}
	if ka.Keys[0].KID != kid || !ka.Keys[1].Public.Equal(&f.wallet[1].PublicKey) || *ka.Status != f.status || ka.Legacy {
		t.Fatalf("verified %+v", ka)
	}
	// Without a nonce neither nonce nor c_nonce appears.
	in := f.kaInput()
	in.Nonce = ""
	tok, err = f.issuer.KeyAttestation(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, c := decodeToken(t, tok); c["nonce"] != nil || c["c_nonce"] != nil {
		t.Fatalf("nonce without input: %v", c)
	}
}

// TestKeyAttestationAssurance: the claims follow the configured assurance
// only; no input makes an uncertified device claim a certified level.
func TestKeyAttestationAssurance(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name           string
		in             KeyAssurance
		storage, uauth []string
		want           error
	}{
		{"high", KeyAssurance{AssuranceHigh, AssuranceHigh}, []string{"iso_18045_high"}, []string{"iso_18045_high"}, nil},
		{"moderate device, basic auth", KeyAssurance{AssuranceModerate, AssuranceBasic}, []string{"iso_18045_moderate"}, []string{"iso_18045_basic"}, nil},
		{"soft device", KeyAssurance{AssuranceSoftware, AssuranceSoftware}, []string{"software"}, []string{"software"}, nil},
		{"uncertified token", KeyAssurance{AssuranceNotCertified, AssuranceNotCertified}, nil, nil, nil},
		{"empty input claims nothing", KeyAssurance{}, nil, nil, ErrAssurance},
		{"auth above device", KeyAssurance{AssuranceModerate, AssuranceHigh}, nil, nil, ErrAssurance},
		{"certified auth on soft device", KeyAssurance{AssuranceSoftware, AssuranceHigh}, nil, nil, ErrAssurance},
		{"unknown value", KeyAssurance{Assurance("ISO_18045_HIGH"), AssuranceHigh}, nil, nil, ErrAssurance},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := f.kaInput()
			in.Assurance = tc.in
			tok, err := f.issuer.KeyAttestation(in)
			if !errors.Is(err, tc.want) || tc.want == nil && err != nil {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err != nil {
				return
			}
			var c KeyAttestationClaims
			_, raw := decodeToken(t, tok)
			b, _ := json.Marshal(raw)
			if err := json.Unmarshal(b, &c); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.KeyStorage, tc.storage) || !slices.Equal(c.UserAuthentication, tc.uauth) {
				t.Fatalf("key_storage %v user_authentication %v", c.KeyStorage, c.UserAuthentication)
			}
		})
	}
}

func TestParseAssurance(t *testing.T) {
	for s, want := range map[string]Assurance{
		"": AssuranceNotCertified, "software": AssuranceSoftware, "not-certified": AssuranceNotCertified,
		"iso_18045_basic": AssuranceBasic, "iso_18045_enhanced-basic": AssuranceEnhancedBasic,
		"iso_18045_moderate": AssuranceModerate, "iso_18045_high": AssuranceHigh,
	} {
		if got, err := ParseAssurance(s); err != nil || got != want {
			t.Errorf("ParseAssurance(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"high", "ISO_18045_HIGH", "iso_18045_high ", "hardware"} {
		if _, err := ParseAssurance(s); !errors.Is(err, ErrAssurance) {
			t.Errorf("ParseAssurance(%q) err = %v", s, err)
		}
	}
	if AssuranceSoftware.Certified() || AssuranceNotCertified.Certified() || !AssuranceBasic.Certified() {
		t.Error("Certified wrong")
	}
}

func TestKeyAttestationInputRefused(t *testing.T) {
	f := newFixture(t)
	day := 24 * time.Hour
	for _, tc := range []struct {
		name string
		edit func(in *KeyAttestationInput)
		want error
	}{
		{"no keys", func(in *KeyAttestationInput) { in.Keys = nil }, ErrInput},
		{"repeated key", func(in *KeyAttestationInput) { in.Keys = []*ecdsa.PublicKey{in.Keys[0], in.Keys[0]} }, ErrKey},
		{"nil key", func(in *KeyAttestationInput) { in.Keys = []*ecdsa.PublicKey{nil} }, ErrKey},
		{"no lifetime", func(in *KeyAttestationInput) { in.Lifetime = 0 }, ErrLifetime},
		{"status under 31 days", func(in *KeyAttestationInput) {
			in.StatusExpiry = testNow.Add(31*day - time.Second)
			in.Lifetime = time.Hour
		}, ErrLifetime},
		{"status before exp", func(in *KeyAttestationInput) { in.StatusExpiry = testNow.Add(40 * day); in.Lifetime = 41 * day }, ErrLifetime},
		{"lifetime past default status", func(in *KeyAttestationInput) { in.Lifetime = 32 * day }, ErrLifetime},
		{"status uri http", func(in *KeyAttestationInput) { in.Status.URI = "http://wp.example/1" }, ErrStatus},
		{"status uri fragment", func(in *KeyAttestationInput) { in.Status.URI = "https://wp.example/1#x" }, ErrStatus},
		{"status uri userinfo", func(in *KeyAttestationInput) { in.Status.URI = "https://u:p@wp.example/1" }, ErrStatus},
		{"status uri opaque", func(in *KeyAttestationInput) { in.Status.URI = "https:wp.example/1" }, ErrStatus},
		{"status uri relative", func(in *KeyAttestationInput) { in.Status.URI = "/statuslists/1" }, ErrStatus},
		{"certification not a URL", func(in *KeyAttestationInput) { in.Certification = "cc-eal4" }, ErrInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := f.kaInput()
			tc.edit(&in)
			if _, err := f.issuer.KeyAttestation(in); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// Loopback http is allowed (development).
	in := f.kaInput()
	in.Status.URI = "http://127.0.0.1:8080/statuslists/1"
	if _, err := f.issuer.KeyAttestation(in); err != nil {
		t.Fatal(err)
	}
}

func TestWalletAttestationInput(t *testing.T) {
	f := newFixture(t)
	tok, err := f.issuer.WalletAttestation(f.wiaInput())
	if err != nil {
		t.Fatal(err)
	}
	h, c := decodeToken(t, tok)
	if h["typ"] != TypClientAttestation || len(h) != 3 {
		t.Fatalf("header %v", h)
	}
	for _, k := range []string{"iss", "sub", "iat", "exp", "cnf", "wallet_name", "wallet_link", "wallet_version", "client_status"} {
		if _, ok := c[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
	if cs(c)["exp"] != c["exp"] {
		t.Errorf("client_status.exp %v, want exp %v by default", cs(c)["exp"], c["exp"])
	}
	noIss := f.wiaInput()
	noIss.Issuer = ""
	noIss.CertificationInformation = json.RawMessage(`{"cab":"x","number":"1"}`)
	tok, err = f.issuer.WalletAttestation(noIss)
	if err != nil {
		t.Fatal(err)
	}
	if _, c := decodeToken(t, tok); c["iss"] != nil || c["wallet_solution_certification_information"] == nil {
		t.Fatalf("claims %v", c)
	}
	for _, tc := range []struct {
		name string
		edit func(in *WalletAttestationInput)
		want error
	}{
		{"over 24h", func(in *WalletAttestationInput) { in.Lifetime = 24*time.Hour + time.Second }, ErrLifetime},
		{"no lifetime", func(in *WalletAttestationInput) { in.Lifetime = 0 }, ErrLifetime},
		{"status before exp", func(in *WalletAttestationInput) { in.StatusExpiry = testNow.Add(time.Minute) }, ErrLifetime},
		{"no sub", func(in *WalletAttestationInput) { in.Subject = "" }, ErrInput},
		{"no version", func(in *WalletAttestationInput) { in.WalletVersion = "" }, ErrInput},
		{"bad link", func(in *WalletAttestationInput) { in.WalletLink = "wallet" }, ErrInput},
		{"bad certification info", func(in *WalletAttestationInput) { in.CertificationInformation = json.RawMessage(`{`) }, ErrInput},
		{"no key", func(in *WalletAttestationInput) { in.Key = nil }, ErrKey},
		{"bad status uri", func(in *WalletAttestationInput) { in.Status.URI = "ftp://wp.example/x" }, ErrStatus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := f.wiaInput()
			tc.edit(&in)
			if _, err := f.issuer.WalletAttestation(in); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	in := f.wiaInput()
	in.Lifetime = 24 * time.Hour
	if _, err := f.issuer.WalletAttestation(in); err != nil {
		t.Fatalf("24 h refused: %v", err)
	}
}

func TestNewIssuerRefuses(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		cfg  IssuerConfig
		want error
	}{
		{"no key", IssuerConfig{Chain: f.chain}, ErrInput},
		{"no chain", IssuerConfig{Key: f.key}, ErrNoX5C},
		{"self-signed leaf", IssuerConfig{Key: f.key, Chain: f.selfSigned}, ErrSelfSigned},
		{"anchor in chain", IssuerConfig{Key: f.key, Chain: append(append([]*x509.Certificate(nil), f.chain...), f.ca.Root)}, ErrAnchorInChain},
		{"key not the leaf's", IssuerConfig{Key: f.wallet[0], Chain: f.chain}, ErrInput},
		{"leaf is the CA", IssuerConfig{Key: f.key, Chain: f.chain[1:]}, ErrChain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewIssuer(tc.cfg); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := NewVerifier(VerifierConfig{}); !errors.Is(err, ErrInput) {
		t.Fatalf("verifier without roots: %v", err)
	}
}
