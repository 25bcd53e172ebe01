package interop_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"

	"github.com/wsca/wsca/attest"
	"github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/r2ps/client/httptransport"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// TestServerAttestationsIndependentValidators: the attestations a running
// wscad issues over R2PS (keys on SoftHSM, the attestation key's
// development chain, status references into its own lists) pass
// @openid4vc/openid4vci and @openid4vc/oauth2 0.4.6. The OpenID4VCI jwt
// proof and the client attestation PoP are signed on the HSM with the
// attested key, through R2PS.
func TestServerAttestationsIndependentValidators(t *testing.T) {
	node := needValidators(t)
	const iss = "https://wp.example"
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.PKCS11(t), func(o *stack.Options) {
		o.Attest.Wallet.Issuer = iss
		o.Attest.Wallet.Subject = "https://wp.example/wallet-solution"
	})
	ctx := t.Context()
	unit := wscd.NewUnitID()
	if err := r.Units.Create(ctx, unit); err != nil {
		t.Fatal(err)
	}
	code, err := r.Units.IssueActivationCode(ctx, unit, store.PurposeActivation, 0)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := client.FetchServerKeys(ctx, httptransport.New(nil), r.URL)
	if err != nil {
		t.Fatal(err)
	}
	csk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cak, _ := ecdh.P256().GenerateKey(rand.Reader)
	c, err := client.New(client.Config{URL: r.URL, Transport: httptransport.New(nil), Unit: unit, Context: "hsm", SigningKey: csk, AgreementKey: cak, Server: keys})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Enrol(ctx, code.Code, []byte("123456")); err != nil {
		t.Fatal(err)
	}
	s, err := c.Login(ctx, []byte("123456"), client.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k1, err := s.Generate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := s.Generate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const nonce = "c-nonce-server"
	ka, err := c.KeyAttestation(ctx, []string{k1.KID, k2.KID}, nonce)
	if err != nil {
		t.Fatal(err)
	}
	wia, err := c.WalletAttestation(ctx, k2.KID)
	if err != nil {
		t.Fatal(err)
	}
	const aud = "https://as.example"
	pop, err := attest.NewClientAttestationPoP(s.Signer(ctx, k2), attest.PoPInput{Audience: aud, ClientID: "https://wp.example/wallet-solution", Lifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// The OpenID4VCI jwt proof, signed by attested_keys[0] on the HSM.
	const credIssuer = "https://issuer.example"
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: cryptosigner.Opaque(s.Signer(ctx, k1))},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("openid4vci-proof+jwt").WithHeader("key_attestation", ka))
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := json.Marshal(map[string]any{"aud": credIssuer, "iat": time.Now().Unix(), "nonce": nonce})
	obj, err := signer.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}

	resp, err := http.Get(r.URL + "/.well-known/wsca-dev-ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	roots, err := attest.ParseChainPEM(rootPEM)
	if err != nil || len(roots) != 1 {
		t.Fatalf("development root: %v", err)
	}
	res := runAttestCheck(t, node, attestInput{
		TrustAnchorsPEM: []string{string(attest.EncodeChainPEM([]*x509.Certificate{roots[0]}))},
		KA:              ka, Nonce: nonce, JWTProof: proof, CredentialIssuer: credIssuer,
		WIA: wia, WIANoIss: wia, PoP: pop, Aud: aud,
	})
	for _, name := range []string{"ka_parse", "ka_attestation", "ka_jwt_use", "ka_issuer_attestation_proof", "ka_issuer_jwt_proof", "wia_pop"} {
		if r := res[name]; !r.OK {
			t.Errorf("%s: refused by the validator: %s", name, r.Error)
		}
	}
	if r := res["ka_attestation"]; len(r.Kids) != 2 || len(r.KeyStorageStatus) == 0 || !strings.Contains(string(r.KeyStorageStatus), "/statuslists/") {
		t.Errorf("ka_attestation saw %+v", r)
	}
	if r := res["ka_issuer_jwt_proof"]; !r.Attested {
		t.Error("jwt proof verified without its key attestation")
	}
	if r := res["wia_pop"]; r.Iss != iss {
		t.Errorf("wia_pop saw %+v", r)
	}
	if r := res["ka_wrong_nonce"]; r.OK {
		t.Error("a wrong nonce passed the validator")
	}
}
