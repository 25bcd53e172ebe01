package interop_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/attest"
	"github.com/wsca/wsca/internal/testenv"
)

// attestInput is what attest-check.mjs reads.
type attestInput struct {
	TrustAnchorsPEM  []string `json:"trust_anchors_pem"`
	KA               string   `json:"ka"`
	KALegacy         string   `json:"ka_legacy"`
	KAUntrusted      string   `json:"ka_untrusted"`
	Nonce            string   `json:"nonce"`
	JWTProof         string   `json:"jwt_proof"`
	CredentialIssuer string   `json:"credential_issuer"`
	WIA              string   `json:"wia"`
	WIANoIss         string   `json:"wia_no_iss"`
	PoP              string   `json:"pop"`
	Aud              string   `json:"aud"`
}

// checkResult is one check's outcome in attest-check.mjs's output.
type checkResult struct {
	OK                 bool            `json:"ok"`
	Error              string          `json:"error"`
	Typ                string          `json:"typ"`
	Kids               []string        `json:"kids"`
	KeyStorage         []string        `json:"key_storage"`
	UserAuthentication []string        `json:"user_authentication"`
	KeyStorageStatus   json.RawMessage `json:"key_storage_status"`
	Attested           bool            `json:"attested"`
	Sub                string          `json:"sub"`
	Iss                string          `json:"iss"`
}

func needValidators(t *testing.T) string {
	t.Helper()
	return testenv.Node(t, "node", ".", "@openid4vc/openid4vci", "@openid4vc/oauth2")
}

func genKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// resignTyp signs token's claims again by key with another typ and the
// same x5c: how a legacy-typ key attestation is made by hand.
func resignTyp(t *testing.T, token string, key *ecdsa.PrivateKey, typ string, chain []*x509.Certificate) string {
	t.Helper()
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var x5c []string
	for _, c := range chain {
		x5c = append(x5c, base64.StdEncoding.EncodeToString(c.Raw))
	}
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("x5c", x5c)
	return signJOSE(t, key, opts, payload)
}

func signJOSE(t *testing.T, key *ecdsa.PrivateKey, opts *jose.SignerOptions, payload []byte) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAttestationsIndependentValidators builds a key attestation, a wallet
// instance attestation and its PoP with the attest package and a
// development CA, and has @openid4vc/openid4vci and @openid4vc/oauth2
// (0.4.6) verify them (attest-check.mjs); negatives: a wrong nonce, a
// wrong audience and a WIA without iss fail there, and the legacy typ,
// which 0.4.6 accepts, fails our verifier unless asked for.
func TestAttestationsIndependentValidators(t *testing.T) {
	node := needValidators(t)
	now := time.Now()
	ca, err := attest.NewDevCA("wsca interop", now)
	if err != nil {
		t.Fatal(err)
	}
	wpKey := genKey(t)
	chain, err := ca.Issue(&wpKey.PublicKey, "wsca interop attestation key", now.Add(-time.Minute), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := attest.NewIssuer(attest.IssuerConfig{Key: wpKey, Chain: chain})
	if err != nil {
		t.Fatal(err)
	}
	wallet := []*ecdsa.PrivateKey{genKey(t), genKey(t), genKey(t)}
	const nonce = "c-nonce-4f1a"
	ka, err := iss.KeyAttestation(attest.KeyAttestationInput{
		Keys:          []*ecdsa.PublicKey{&wallet[0].PublicKey, &wallet[1].PublicKey},
		Assurance:     attest.KeyAssurance{KeyStorage: attest.AssuranceSoftware, UserAuthentication: attest.AssuranceSoftware},
		Certification: "https://wp.example/certification",
		Nonce:         nonce,
		Status:        attest.StatusRef{Idx: 9001, URI: "https://wp.example/statuslists/1"},
		Lifetime:      time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The same claims from a provider whose CA the validator does not trust.
	otherCA, err := attest.NewDevCA("untrusted", now)
	if err != nil {
		t.Fatal(err)
	}
	otherChain, err := otherCA.Issue(&wpKey.PublicKey, "untrusted attestation key", now.Add(-time.Minute), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	const credIssuer = "https://issuer.example"
	proofOpts := (&jose.SignerOptions{EmbedJWK: true}).WithType("openid4vci-proof+jwt").WithHeader("key_attestation", ka)
	proofClaims, err := json.Marshal(map[string]any{"aud": credIssuer, "iat": now.Unix(), "nonce": nonce})
	if err != nil {
		t.Fatal(err)
	}
	wiaIn := attest.WalletAttestationInput{
		Subject: "https://wp.example/wallet-solution", Issuer: "https://wp.example",
		Key: &wallet[2].PublicKey, WalletName: "wsca interop wallet", WalletLink: "https://wp.example/wallet", WalletVersion: "0.1.0",
		Status: attest.StatusRef{Idx: 77, URI: "https://wp.example/statuslists/2"}, Lifetime: time.Hour,
	}
	wia, err := iss.WalletAttestation(wiaIn)
	if err != nil {
		t.Fatal(err)
	}
	wiaIn.Issuer = ""
	wiaNoIss, err := iss.WalletAttestation(wiaIn)
	if err != nil {
		t.Fatal(err)
	}
	const aud = "https://as.example"
	pop, err := attest.NewClientAttestationPoP(wallet[2], attest.PoPInput{Audience: aud, ClientID: wiaIn.Subject, Lifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	in := attestInput{
		TrustAnchorsPEM:  []string{string(attest.EncodeChainPEM([]*x509.Certificate{ca.Root}))},
		KA:               ka,
		KALegacy:         resignTyp(t, ka, wpKey, attest.TypKeyAttestationLegacy, chain),
		KAUntrusted:      resignTyp(t, ka, wpKey, attest.TypKeyAttestation, otherChain),
		Nonce:            nonce,
		JWTProof:         signJOSE(t, wallet[0], proofOpts, proofClaims),
		CredentialIssuer: credIssuer,
		WIA:              wia,
		WIANoIss:         wiaNoIss,
		PoP:              pop,
		Aud:              aud,
	}
	res := runAttestCheck(t, node, in)

	for _, name := range []string{"ka_parse", "ka_attestation", "ka_jwt_use", "ka_issuer_attestation_proof", "ka_issuer_jwt_proof", "ka_legacy_typ", "wia_pop"} {
		if r := res[name]; !r.OK {
			t.Errorf("%s: refused by the validator: %s", name, r.Error)
		}
	}
	// Each negative fails for its reason.
	for name, reason := range map[string]string{
		"ka_wrong_nonce":    "'nonce' does not match",
		"ka_untrusted_ca":   "no trust anchor",
		"wia_pop_wrong_aud": "'aud' does not match",
		"wia_no_iss":        `"iss"`,
	} {
		if r := res[name]; r.OK || !strings.Contains(r.Error, reason) {
			t.Errorf("%s: ok %v, error %q, want a refusal naming %s", name, r.OK, r.Error, reason)
		}
	}
	if r := res["ka_attestation"]; r.Typ != attest.TypKeyAttestation || len(r.Kids) != 2 || strings.Join(r.KeyStorage, ",") != "software" || len(r.KeyStorageStatus) == 0 {
		t.Errorf("ka_attestation saw %+v", r)
	}
	if r := res["ka_issuer_jwt_proof"]; !r.Attested {
		t.Error("jwt proof verified without its key attestation")
	}
	if r := res["wia_pop"]; r.Sub != wiaIn.Subject || r.Iss != "https://wp.example" {
		t.Errorf("wia_pop saw %+v", r)
	}

	// Our verifier: the same tokens pass; the legacy typ only on request.
	v, err := attest.NewVerifier(attest.VerifierConfig{Roots: []*x509.Certificate{ca.Root}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyKeyAttestation(ka, attest.KeyAttestationOptions{Nonce: nonce}); err != nil {
		t.Errorf("our verifier refuses the KA: %v", err)
	}
	if _, err := v.VerifyKeyAttestation(in.KALegacy, attest.KeyAttestationOptions{Nonce: nonce}); !errors.Is(err, attest.ErrTyp) {
		t.Errorf("legacy typ: err = %v, want ErrTyp", err)
	}
	if k, err := v.VerifyKeyAttestation(in.KALegacy, attest.KeyAttestationOptions{Nonce: nonce, AcceptLegacyTyp: true}); err != nil || !k.Legacy {
		t.Errorf("legacy typ on request: %v", err)
	}
	wa, err := v.VerifyWalletAttestation(wia, attest.WalletAttestationOptions{Issuer: "https://wp.example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyClientAttestationPoP(context.Background(), pop, wa, attest.PoPOptions{Audience: aud, Seen: &seenOnce{}}); err != nil {
		t.Errorf("our verifier refuses the PoP: %v", err)
	}
}

// seenOnce is a one-test SeenSet.
type seenOnce struct{ ids []string }

func (s *seenOnce) Add(_ context.Context, id string, _ time.Time) (bool, error) {
	for _, x := range s.ids {
		if x == id {
			return false, nil
		}
	}
	s.ids = append(s.ids, id)
	return true, nil
}

func runAttestCheck(t *testing.T, node string, in attestInput) map[string]checkResult {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "input.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), walletTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "attest-check.mjs", path)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("attest-check.mjs: %v\n%s", err, stderr.Bytes())
	}
	var res map[string]checkResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("attest-check.mjs output: %v\n%s", err, stdout.Bytes())
	}
	t.Logf("validators: %s", bytes.TrimSpace(stdout.Bytes()))
	return res
}
