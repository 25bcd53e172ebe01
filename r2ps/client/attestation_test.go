package client_test

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/wsca/wsca/attest"
	"github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/statuslist"
)

// get fetches url with an Accept header and returns the body.
func get(t *testing.T, url, accept string) []byte {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	return b
}

// TestAttestations runs the attestation types end to end on both stores:
// a key attestation, a wallet instance attestation and a proof of
// association, each verified offline with the development CA's root; a
// foreign kid is refused; and the status list each attestation points at
// shows the unit suspended, resumed and revoked, as a verifier sees it.
func TestAttestations(t *testing.T) {
	for _, b := range testenv.StoreBackends() {
		t.Run(b.Name, func(t *testing.T) {
			r := stacktest.Start(t, b.DSN(t), testdevice.PKCS11(t), func(o *stack.Options) {
				o.StatusLists = stack.StatusListOptions{ShardSize: 10_000, Pool: 2, Debounce: time.Millisecond}
			})
			w := &world{url: r.URL, svc: r.Services, st: r.Store, pins: r.PIN, rec: &recorder{}}
			ctx := t.Context()
			alice, aliceUnit := w.enrolled(t, "alice", "123456")
			bob, _ := w.enrolled(t, "bob", "654321")
			as, err := alice.Login(ctx, []byte("123456"), client.LoginOptions{})
			if err != nil {
				t.Fatal(err)
			}
			k1, _ := as.Generate(ctx)
			k2, _ := as.Generate(ctx)
			bs, _ := bob.Login(ctx, []byte("654321"), client.LoginOptions{})
			bk, _ := bs.Generate(ctx)

			block, _ := pem.Decode(get(t, r.URL+"/.well-known/wsca-dev-ca.pem", ""))
			root, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			keys, err := attest.ParseKeySet(get(t, r.URL+"/.well-known/jwks.json", ""))
			if err != nil {
				t.Fatal(err)
			}
			v, err := attest.NewVerifier(attest.VerifierConfig{Roots: []*x509.Certificate{root}, Keys: keys})
			if err != nil {
				t.Fatal(err)
			}

			ka, err := alice.KeyAttestation(ctx, []string{k1.KID, k2.KID}, "c-nonce-1")
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.VerifyKeyAttestation(ka, attest.KeyAttestationOptions{Nonce: "c-nonce-1"})
			if err != nil {
				t.Fatalf("key attestation: %v", err)
			}
			if len(got.Keys) != 2 || got.Status == nil {
				t.Fatalf("key attestation: %+v", got)
			}
			if ks := got.Claims.KeyStorage; len(ks) != 0 {
				t.Fatalf("SoftHSM, declared nothing, claims key_storage %v", ks)
			}
			wia, err := alice.WalletAttestation(ctx, k1.KID)
			if err != nil {
				t.Fatal(err)
			}
			wa, err := v.VerifyWalletAttestation(wia, attest.WalletAttestationOptions{})
			if err != nil {
				t.Fatalf("wallet attestation: %v", err)
			}
			poa, err := alice.ProofOfAssociation(ctx, []string{k1.KID, k2.KID}, "https://rp.example", "n")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.VerifyProofOfAssociation(poa, attest.ProofOfAssociationOptions{Audience: "https://rp.example", Nonce: "n"}); err != nil {
				t.Fatalf("proof of association: %v", err)
			}

			// A foreign or unknown kid fails the request; none is dropped.
			for name, kids := range map[string][]string{
				"bob's key":   {k1.KID, bk.KID},
				"unknown kid": {k1.KID, "00112233445566778899aabbccddeeff"},
				"twice":       {k1.KID, k1.KID},
			} {
				_, err := alice.KeyAttestation(ctx, kids, "")
				wantCode(t, name, err, r2ps.CodeIllegalRequestData)
			}
			_, err = alice.WalletAttestation(ctx, bk.KID)
			wantCode(t, "WIA for bob's key", err, r2ps.CodeIllegalRequestData)
			_, err = alice.ProofOfAssociation(ctx, []string{k1.KID, bk.KID}, "", "")
			wantCode(t, "PoA with bob's key", err, r2ps.CodeIllegalRequestData)

			// The status lists, as a verifier reads them.
			pool := x509.NewCertPool()
			pool.AddCert(root)
			sv := &statuslist.Verifier{Roots: pool}
			status := func(ref attest.StatusRef, cwt bool) statuslist.Status {
				t.Helper()
				var vd *statuslist.Verified
				var err error
				if cwt {
					vd, err = sv.VerifyCWT(get(t, ref.URI, "application/statuslist+cwt"), ref.URI)
				} else {
					vd, err = sv.VerifyJWT(get(t, ref.URI, "application/statuslist+jwt"), ref.URI)
				}
				if err != nil {
					t.Fatalf("status list %s: %v", ref.URI, err)
				}
				s, err := vd.Status(ref.Idx)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			wiaRef := *wa.Claims.ClientStatus.Status.StatusList
			kaRef := *got.Status
			waitFor := func(step string, want statuslist.Status) {
				t.Helper()
				deadline := time.Now().Add(20 * time.Second)
				for {
					a, b, c := status(kaRef, false), status(wiaRef, false), status(kaRef, true)
					if a == want && b == want && c == want {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s: KA %d (CWT %d), WIA %d; want %d", step, a, c, b, want)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			waitFor("issued", 0)
			if err := w.svc.Units.SetState(ctx, aliceUnit, "suspended"); err != nil {
				t.Fatal(err)
			}
			r.Publisher.Notify()
			waitFor("suspended", 2)
			if err := w.svc.Units.SetState(ctx, aliceUnit, "active"); err != nil {
				t.Fatal(err)
			}
			r.Publisher.Notify()
			waitFor("resumed", 0)
			// The suspension ended the session.
			_, err = as.UnitInfo(ctx)
			wantCode(t, "session across a suspension", err, r2ps.CodeUnauthorized)
			as, err = alice.Login(ctx, []byte("123456"), client.LoginOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// A destroyed key invalidates the attestation naming it.
			if err := as.DeleteKey(ctx, k2.KID); err == nil {
				waitForKA := func() {
					deadline := time.Now().Add(20 * time.Second)
					for status(kaRef, false) != 1 {
						if time.Now().After(deadline) {
							t.Fatal("KA of a destroyed key still valid")
						}
						time.Sleep(50 * time.Millisecond)
					}
				}
				waitForKA()
				if s := status(wiaRef, false); s != 0 {
					t.Fatalf("WIA after a key of the unit was destroyed: %d", s)
				}
			} else {
				t.Fatal(err)
			}
			if err := as.RevokeUnit(ctx, aliceUnit, "lost"); err != nil {
				t.Fatal(err)
			}
			waitFor("revoked", 1)
			_, err = alice.KeyAttestation(ctx, []string{k1.KID}, "")
			wantCode(t, "attestation for a revoked unit", err, r2ps.CodeAccessDenied)
		})
	}
}
