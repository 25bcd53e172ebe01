package main

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
)

// TestSplitProcesses: one `wscad --role wscd` process (the wallet keys on
// the test's SoftHSM token) and one `wscad --role wsca` process with no
// device configured (its own data directory's default device holds its own
// keys only) on one PostgreSQL run enrolment, key generation, attestation
// and revocation end to end.
func TestSplitProcesses(t *testing.T) {
	dsn := testenv.Postgres(t)
	deviceURI := testenv.PKCS11URI(t)
	bin := buildWscad(t)
	token := "split-test-admin-token-0123456789ab"
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(token), 0o600)

	wscaIn := startWith(t, bin, dsn, tokenFile, "--role", "wsca")
	defer wscaIn.stop(t)
	wscdIn := startWith(t, bin, dsn, tokenFile, "--role", "wscd", "--device", deviceURI)
	defer wscdIn.stop(t)

	var created struct {
		Unit string `json:"unit"`
		Code string `json:"activation_code"`
	}
	wscdIn.adminCall(t, token, "POST", "/units", map[string]any{}, &created)
	ctx := context.Background()
	csk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cak, _ := ecdh.P256().GenerateKey(rand.Reader)
	newClient := func(in *instance) *client.Client { return in.client(t, created.Unit, csk, cak) }
	atWSCD, atWSCA := newClient(wscdIn), newClient(wscaIn)
	if err := atWSCD.Enrol(ctx, created.Code, []byte("135790")); err != nil {
		t.Fatalf("enrol: %v", err)
	}
	s, err := atWSCD.Login(ctx, []byte("135790"), client.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.Generate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("split"))
	if _, err := s.Sign(ctx, k.KID, d[:]); err != nil {
		t.Fatal(err)
	}
	ka, err := atWSCA.KeyAttestation(ctx, []string{k.KID}, "nonce")
	if err != nil {
		t.Fatalf("key attestation at the WSCA process: %v\n%s", err, wscaIn.logs)
	}
	if strings.Count(ka, ".") != 2 {
		t.Fatalf("key attestation: %q", ka)
	}
	resp, err := http.Get(wscaIn.url + "/.well-known/jwks.json")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the WSCA's JWKS: %v %v", resp, err)
	}
	resp.Body.Close()
	sa := atWSCA.Resume(s.ID, s.Key, s.Task, s.ExpiresAt)
	if _, err := sa.Generate(ctx); !client.IsCode(err, r2ps.CodeUnsupportedRequestType) {
		t.Fatalf("key generation at the WSCA process: %v", err)
	}
	if _, err := sa.UnitInfo(ctx); err != nil {
		t.Fatalf("the WSCD's session at the WSCA process: %v", err)
	}
	if err := sa.RevokeUnit(ctx, created.Unit, "test"); err != nil {
		t.Fatalf("revoke at the WSCA process: %v", err)
	}
	_, err = atWSCD.Login(ctx, []byte("135790"), client.LoginOptions{})
	if !client.IsCode(err, r2ps.CodeAccessDenied) {
		t.Fatalf("login at the WSCD after revocation at the WSCA: %v", err)
	}
}
