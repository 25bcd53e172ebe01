package client_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/wsca/wsca/ecp256"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/secdsa"
)

const consent = "Authorize 1.000 Euro to NL02INGB0123456789"

// secdsaUnit enrols a unit over R2PS (its CSK registered, as the SECDSA
// types need) and returns its client and SECDSA keys (the device key
// left nil: the CSK).
func secdsaUnit(t *testing.T, r *stacktest.Running) (*client.Client, client.SECDSAKeys, string) {
	t.Helper()
	c, unit := r.EnrolledClient(t, "opaque-pin")
	k := make([]byte, 32)
	rand.Read(k)
	binder, err := secdsa.NewSoftwarePINBinder(k)
	if err != nil {
		t.Fatal(err)
	}
	return c, client.SECDSAKeys{Binder: binder}, unit
}

// TestSECDSAClient: the wallet side against a real server on SoftHSM:
// activation; generate, sign, ECDH (the secret only in the answer, not
// in the record), delete, each with its record verified; a failed
// execution with its record; a wrong PIN counted; a replayed serial
// number refused; a PIN change after which only the new PIN works; a
// device key that is not the CSK refused before anything is sent.
func TestSECDSAClient(t *testing.T) {
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.PKCS11(t), nil)
	ctx := t.Context()
	c, keys, unit := secdsaUnit(t, r)

	b, err := c.SECDSAActivate(ctx, keys, []byte("1234"))
	if err != nil {
		t.Fatal(err)
	}
	if !b.Provider.Equal(r.SECDSA.ProviderKey()) || string(b.Cert.AccountID) != unit {
		t.Fatalf("binding: provider %v, account %q", b.Provider, b.Cert.AccountID)
	}
	sn := uint64(0)
	do := func(pin string, op r2ps.SECDSAOp) (*client.SECDSAOutcome, error) {
		sn++
		return c.SECDSAInstruction(ctx, b, keys, []byte(pin), sn, op, []byte(consent))
	}
	gen, err := do("1234", r2ps.SECDSAOp{Op: r2ps.SECDSAOpGenerate})
	if err != nil {
		t.Fatal(err)
	}
	if !gen.Result.OK || len(gen.Result.PublicKey) != 65 || string(gen.Record.Additional) != consent {
		t.Fatalf("generate: %+v", gen.Result)
	}
	// A third party verifies the record with the certificate and the
	// provider key only.
	if err := secdsa.VerifyTRecord(b.Cert, r.SECDSA.ProviderKey(), gen.Record); err != nil {
		t.Fatal(err)
	}
	pub, _ := ecp256.ParsePublicKey(gen.Result.PublicKey)
	d := sha256.Sum256([]byte("pop"))
	sig, err := do("1234", r2ps.SECDSAOp{Op: r2ps.SECDSAOpSign, KID: gen.Result.KID, Hash: d[:]})
	if err != nil || !ecdsa.VerifyASN1(pub, d[:], sig.Result.Signature) {
		t.Fatalf("sign: %v, %+v", err, sig)
	}
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	z, err := do("1234", r2ps.SECDSAOp{Op: r2ps.SECDSAOpECDH, KID: gen.Result.KID, Peer: peer.PublicKey().Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	mine, _ := pub.ECDH()
	want, _ := peer.ECDH(mine)
	if !bytes.Equal(z.Secret, want) || bytes.Contains(z.Record.Marshal(), want) {
		t.Fatal("ECDH: wrong secret, or the secret is in the record")
	}
	if _, err := do("1234", r2ps.SECDSAOp{Op: r2ps.SECDSAOpDelete, KID: gen.Result.KID}); err != nil {
		t.Fatal(err)
	}
	failed, err := do("1234", r2ps.SECDSAOp{Op: r2ps.SECDSAOpSign, KID: gen.Result.KID, Hash: d[:]})
	if !client.IsCode(err, r2ps.CodeIllegalRequestData) || failed == nil || failed.Record == nil || failed.Result.OK {
		t.Fatalf("sign with a deleted key: %v, %+v", err, failed)
	}

	// A wrong PIN: UNAUTHORIZED, counted.
	if _, err := do("0000", r2ps.SECDSAOp{Op: r2ps.SECDSAOpGenerate}); !client.IsCode(err, r2ps.CodeUnauthorized) {
		t.Fatalf("wrong PIN: %v", err)
	}
	if u, err := r.Store.GetSECDSA(ctx, unit); err != nil || u.Failures != 1 {
		t.Fatalf("failures after a wrong PIN: %+v, %v", u, err)
	}
	// A serial number not above the last: ACCESS_DENIED, not counted.
	if _, err := c.SECDSAInstruction(ctx, b, keys, []byte("1234"), sn, r2ps.SECDSAOp{Op: r2ps.SECDSAOpGenerate}, nil); !client.IsCode(err, r2ps.CodeAccessDenied) {
		t.Fatalf("replayed serial number: %v", err)
	}
	if u, _ := r.Store.GetSECDSA(ctx, unit); u.Failures != 1 {
		t.Fatalf("a replay was counted: %+v", u)
	}

	// PIN change.
	sn++
	nb, out, err := c.SECDSAChangePIN(ctx, b, keys, []byte("1234"), []byte("5678"), sn)
	if err != nil || !out.Result.OK {
		t.Fatalf("PIN change: %v", err)
	}
	if bytes.Equal(nb.Cert.YPrime, b.Cert.YPrime) {
		t.Fatal("the PIN change kept Y'")
	}
	b = nb
	if _, err := do("1234", r2ps.SECDSAOp{Op: r2ps.SECDSAOpGenerate}); !client.IsCode(err, r2ps.CodeUnauthorized) {
		t.Fatalf("old PIN after the change: %v", err)
	}
	if _, err := do("5678", r2ps.SECDSAOp{Op: r2ps.SECDSAOpGenerate}); err != nil {
		t.Fatalf("new PIN: %v", err)
	}

	// The device key must be the CSK; and a binder is needed.
	other, _ := secdsa.NewSoftwareDeviceKey()
	if _, err := c.SECDSAInstruction(ctx, b, client.SECDSAKeys{Binder: keys.Binder, Device: other}, []byte("5678"), sn+10, r2ps.SECDSAOp{Op: r2ps.SECDSAOpGenerate}, nil); err == nil {
		t.Fatal("a device key other than the CSK was used")
	}
	if _, err := c.SECDSAActivate(ctx, client.SECDSAKeys{}, []byte("5678")); err == nil {
		t.Fatal("activation without a PIN binder")
	}
	if _, err := c.SECDSAInstruction(ctx, nil, keys, []byte("5678"), sn+10, r2ps.SECDSAOp{Op: r2ps.SECDSAOpGenerate}, nil); err == nil || errors.Is(err, client.ErrSECDSARecord) {
		t.Fatalf("an instruction without a binding: %v", err)
	}
}
