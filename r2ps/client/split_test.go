package client_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"testing"

	"github.com/wsca/wsca/attest"
	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/r2ps/client/httptransport"
	"github.com/wsca/wsca/server"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// TestSplitRoles: a WSCD instance (SoftHSM: the wallet keys) and a
// WSCA-only instance (the soft device: its own keys only, no wallet-key
// device) on one PostgreSQL. The wallet enrols, logs in and makes keys at
// the WSCD; the same session works at the WSCA (pseudonyms, unit
// information), which attests the keys and, when the holder revokes the
// unit there, every instance refuses it. Each refuses the other's types.
func TestSplitRoles(t *testing.T) {
	dsn := testenv.Postgres(t)
	ctx := t.Context()
	wsca := stacktest.StartWSCA(t, dsn, testdevice.Soft(t), nil)
	wscdDev := testdevice.PKCS11(t)
	wscdR := stacktest.Start(t, dsn, wscdDev, func(o *stack.Options) { o.Roles = server.Roles{WSCD: true} })

	unit := wscd.NewUnitID()
	if err := wscdR.Units.Create(ctx, unit); err != nil {
		t.Fatal(err)
	}
	code, err := wscdR.Units.IssueActivationCode(ctx, unit, store.PurposeActivation, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The WSCA issues no code: codes are MACed under the WSCD's key.
	if _, err := wsca.Units.IssueActivationCode(ctx, unit, store.PurposeActivation, 0); err == nil {
		t.Fatal("the WSCA-only instance issued an activation code")
	}

	csk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cak, _ := ecdh.P256().GenerateKey(rand.Reader)
	newClient := func(url string) *client.Client {
		keys, err := client.FetchServerKeys(ctx, httptransport.New(nil), url)
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.New(client.Config{URL: url, Transport: httptransport.New(nil), Unit: unit, Context: "hsm", SigningKey: csk, AgreementKey: cak, Server: keys})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	atWSCD, atWSCA := newClient(wscdR.URL), newClient(wsca.URL)
	if atWSCD.Config().Server.SigningKID == atWSCA.Config().Server.SigningKID {
		t.Fatal("the WSCA signs responses with the WSCD's key")
	}
	// Registration and login are the WSCD's.
	err = atWSCA.Enrol(ctx, code.Code, []byte("123456"))
	wantCode(t, "enrol at the WSCA", err, r2ps.CodeUnsupportedRequestType)
	if err := atWSCD.Enrol(ctx, code.Code, []byte("123456")); err != nil {
		t.Fatal(err)
	}
	s, err := atWSCD.Login(ctx, []byte("123456"), client.LoginOptions{})
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
	wscdR.ShareNow(ctx) // the WSCD publishes its device's assurance for the WSCA

	// The WSCD's session at the WSCA.
	sa := atWSCA.Resume(s.ID, s.Key, s.Task, s.ExpiresAt)
	if _, err := sa.PutPseudonym(ctx, "rp.example", []byte("p")); err != nil {
		t.Fatalf("the WSCD's session at the WSCA: %v", err)
	}
	info, err := sa.UnitInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Keys != 2 || info.Capabilities.DeviceAssurance != string(wscdDev.Info().Assurance) {
		t.Fatalf("unit info at the WSCA: %+v (the WSCD's device says %s)", info, wscdDev.Info().Assurance)
	}
	// Key operations are the WSCD's.
	_, err = sa.Generate(ctx)
	wantCode(t, "p256_generate at the WSCA", err, r2ps.CodeUnsupportedRequestType)
	_, err = sa.Sign(ctx, k1.KID, digest("x"))
	wantCode(t, "sign at the WSCA", err, r2ps.CodeUnsupportedRequestType)
	_, err = s.PutPseudonym(ctx, "rp.example", []byte("p"))
	wantCode(t, "pseudonym at the WSCD", err, r2ps.CodeUnsupportedRequestType)

	// Attestations from the WSCA, verified with its development root.
	ka, err := atWSCA.KeyAttestation(ctx, []string{k1.KID, k2.KID}, "n")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(wsca.URL + server.DevCAPath)
	if err != nil {
		t.Fatal(err)
	}
	var buf [8192]byte
	n, _ := resp.Body.Read(buf[:])
	resp.Body.Close()
	block, _ := pem.Decode(buf[:n])
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	v, err := attest.NewVerifier(attest.VerifierConfig{Roots: []*x509.Certificate{root}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.VerifyKeyAttestation(ka, attest.KeyAttestationOptions{Nonce: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Keys) != 2 || len(got.Claims.KeyStorage) != 0 {
		// SoftHSM as configured in the tests declares no certified level.
		t.Fatalf("key attestation from the WSCA: %+v", got.Claims)
	}
	if _, err := atWSCA.KeyAttestation(ctx, []string{"00112233445566778899aabbccddeeff"}, ""); !client.IsCode(err, r2ps.CodeIllegalRequestData) {
		t.Fatalf("unknown kid at the WSCA: %v", err)
	}
	// Someone who can write the database cannot plant a client key for the
	// WSCA: a share MAC that is not the share key's is refused there, and
	// the WSCD, which never reads it, is not affected.
	ck, err := wscdR.Store.ShareView().GetUnitClientKey(ctx, unit, store.UsageSign) // MAC is the share MAC here
	if err != nil {
		t.Fatal(err)
	}
	if err := wscdR.Store.SetClientKeyShareMAC(ctx, ck.KID, ck.PublicKey, make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	_, err = atWSCA.KeyAttestation(ctx, []string{k1.KID}, "")
	wantCode(t, "a client key with a planted share MAC at the WSCA", err, r2ps.CodeIllegalRequestData)
	if _, err := s.Sign(ctx, k1.KID, digest("still the WSCD")); err != nil {
		t.Fatalf("the WSCD after the planted share MAC: %v", err)
	}
	wscdR.ShareNow(ctx) // the backfill does not bless a row whose share MAC is set
	_, err = atWSCA.KeyAttestation(ctx, []string{k1.KID}, "")
	wantCode(t, "the planted share MAC after a backfill", err, r2ps.CodeIllegalRequestData)
	if err := wscdR.Store.SetClientKeyShareMAC(ctx, ck.KID, ck.PublicKey, ck.MAC); err != nil {
		t.Fatal(err)
	}

	// The WSCA holds no wallet key: its device has nothing of the unit.
	if keys, err := wsca.Device.List(ctx, device.Owner(unit)); err != nil || len(keys) != 0 {
		t.Fatalf("the WSCA's device holds %v (%v)", keys, err)
	}

	// The holder revokes at the WSCA; every instance refuses from then on.
	if err := sa.RevokeUnit(ctx, unit, "lost"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Sign(ctx, k1.KID, digest("y"))
	wantCode(t, "the WSCD session after revocation", err, r2ps.CodeUnauthorized)
	_, err = atWSCD.Login(ctx, []byte("123456"), client.LoginOptions{})
	wantCode(t, "login after revocation", err, r2ps.CodeAccessDenied)
	_, err = atWSCA.KeyAttestation(ctx, []string{k1.KID}, "")
	wantCode(t, "attestation after revocation", err, r2ps.CodeAccessDenied)
}
