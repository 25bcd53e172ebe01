package stacktest

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/r2ps/client/httptransport"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// EnrolledClient creates a unit, issues its activation code and enrols a
// wallet client with fresh keys (CSK, CAK) in context "hsm" under pin. It
// returns the client and the unit id.
func (r *Running) EnrolledClient(t testing.TB, pin string) (*client.Client, string) {
	t.Helper()
	ctx := t.Context()
	unit := wscd.NewUnitID()
	if err := r.Services.Units.Create(ctx, unit); err != nil {
		t.Fatal(err)
	}
	code, err := r.Services.Units.IssueActivationCode(ctx, unit, store.PurposeActivation, 0)
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
	if err := c.Enrol(ctx, code.Code, []byte(pin)); err != nil {
		t.Fatal(err)
	}
	return c, unit
}
