package dispatch_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	"github.com/wsca/wsca/ecp256"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/secdsa"
	"github.com/wsca/wsca/store"
)

// secdsaWallet is an enrolled unit whose CSK is its SECDSA device key.
type secdsaWallet struct {
	*wallet
	dev    *secdsa.SoftwareDeviceKey
	binder *secdsa.SoftwarePINBinder
	ic     *secdsa.InternalCert
	pk     []byte
	sn     uint64
}

func (g *rig) secdsaSend(w *secdsaWallet, typ string, data, out any) outcome {
	g.t.Helper()
	o := g.send(w.wallet, forged{mode: r2ps.Mode1FA, typ: typ, data: data})
	if o.problem == "" && o.enclosed == "" && out != nil {
		if err := json.Unmarshal(o.data, out); err != nil {
			g.t.Fatal(err)
		}
	}
	return o
}

func (g *rig) secdsaActivate(w *secdsaWallet, pin string) {
	g.t.Helper()
	var nr r2ps.SECDSANonceResponse
	if o := g.secdsaSend(w, r2ps.TypeSECDSANonce, struct{}{}, &nr); o.problem+o.enclosed != "" {
		g.t.Fatalf("nonce: %+v", o)
	}
	req, state, err := secdsa.BeginActivation(rand.Reader, w.binder, w.dev, []byte(pin), nr.AccountID, nr.Nonce)
	if err != nil {
		g.t.Fatal(err)
	}
	var ar r2ps.SECDSAActivateResponse
	if o := g.secdsaSend(w, r2ps.TypeSECDSAActivateBegin, r2ps.SECDSAActivateRequest{Request: req.Marshal()}, &ar); o.problem+o.enclosed != "" {
		g.t.Fatalf("activate: %+v", o)
	}
	resp, err := secdsa.ParseActivationResponse(ar.Response)
	if err != nil {
		g.t.Fatal(err)
	}
	yp, err := state.Finish(resp)
	if err != nil {
		g.t.Fatal(err)
	}
	var fr r2ps.SECDSAFinishResponse
	if o := g.secdsaSend(w, r2ps.TypeSECDSAActivateFinish, r2ps.SECDSAFinishRequest{YPrime: yp}, &fr); o.problem+o.enclosed != "" {
		g.t.Fatalf("finish: %+v", o)
	}
	if w.ic, err = secdsa.ParseInternalCert(fr.Cert); err != nil {
		g.t.Fatal(err)
	}
	prov, err := ecp256.ParsePublicKey(fr.ProviderKey)
	if err != nil {
		g.t.Fatal(err)
	}
	if err := state.Accept(w.ic, prov); err != nil {
		g.t.Fatal(err)
	}
	w.pk = fr.ProviderKey
}

// instruct sends one instruction under pin and returns the outcome and,
// on success, the response.
func (g *rig) instruct(w *secdsaWallet, pin string, op r2ps.SECDSAOp) (outcome, r2ps.SECDSAInstructionResponse, []byte) {
	g.t.Helper()
	ins, err := op.Marshal()
	if err != nil {
		g.t.Fatal(err)
	}
	w.sn++
	x, err := secdsa.GenESInstruction(rand.Reader, w.ic, w.binder, w.dev, []byte(pin), w.sn, ins, []byte("Authorize 1.000 Euro to NL02INGB0123456789"))
	if err != nil {
		g.t.Fatal(err)
	}
	var resp r2ps.SECDSAInstructionResponse
	o := g.secdsaSend(w, r2ps.TypeSECDSAInstruction, r2ps.SECDSAInstructionRequest{Instruction: x.Marshal()}, &resp)
	return o, resp, x.Marshal()
}

func (g *rig) newSECDSAWallet() *secdsaWallet {
	g.t.Helper()
	w := g.enrol("hsm", "")
	dev, err := secdsa.SoftwareDeviceKeyFrom(w.csk)
	if err != nil {
		g.t.Fatal(err)
	}
	k := make([]byte, 32)
	rand.Read(k)
	b, err := secdsa.NewSoftwarePINBinder(k)
	if err != nil {
		g.t.Fatal(err)
	}
	return &secdsaWallet{wallet: w, dev: dev, binder: b}
}

// TestSECDSAOverR2PS: the whole flow over HTTP with the raw wallet:
// activation, every instruction op with its record verified by
// secdsa.VerifyTRecord and the ECDH secret only in the encrypted response,
// a wrong PIN (UNAUTHORIZED), a replay (ACCESS_DENIED), the lock, a
// second activation refused, a PIN change, and a suspended unit refused
// before anything.
func TestSECDSAOverR2PS(t *testing.T) {
	g := newRig(t)
	w := g.newSECDSAWallet()
	g.secdsaActivate(w, "1234")
	prov, _ := ecp256.ParsePublicKey(w.pk)
	verify := func(resp r2ps.SECDSAInstructionResponse) r2ps.SECDSAResult {
		t.Helper()
		tr, err := secdsa.ParseTRecord(resp.Record)
		if err != nil {
			t.Fatal(err)
		}
		if err := secdsa.VerifyTRecord(w.ic, prov, tr); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(tr.Result, resp.Result) {
			t.Fatal("record result differs from the response's")
		}
		var res r2ps.SECDSAResult
		if err := json.Unmarshal(resp.Result, &res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	o, resp, _ := g.instruct(w, "1234", r2ps.SECDSAOp{Op: r2ps.SECDSAOpGenerate})
	if o.problem+o.enclosed != "" {
		t.Fatalf("generate: %+v", o)
	}
	gen := verify(resp)
	if !gen.OK || gen.KID == "" || len(gen.PublicKey) != 65 {
		t.Fatalf("generate result %+v", gen)
	}
	digest := sha256.Sum256([]byte("pop"))
	_, resp, _ = g.instruct(w, "1234", r2ps.SECDSAOp{Op: r2ps.SECDSAOpSign, KID: gen.KID, Hash: digest[:]})
	sig := verify(resp)
	pub, _ := ecp256.ParsePoint(gen.PublicKey)
	epub, _ := ecp256.ParsePublicKey(gen.PublicKey)
	if !sig.OK || !ecp256.VerifyDER(epub, digest[:], sig.Signature) {
		t.Fatalf("sign result %+v", sig)
	}
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	_, resp, _ = g.instruct(w, "1234", r2ps.SECDSAOp{Op: r2ps.SECDSAOpECDH, KID: gen.KID, Peer: peer.PublicKey().Bytes()})
	want, _ := peer.ECDH(pub)
	if res := verify(resp); !res.OK || !bytes.Equal(resp.Secret, want) || bytes.Contains(resp.Record, want) {
		t.Fatalf("ECDH: result %+v, secret %x, want %x (and not in the record)", res, resp.Secret, want)
	}
	_, resp, _ = g.instruct(w, "1234", r2ps.SECDSAOp{Op: r2ps.SECDSAOpDelete, KID: gen.KID})
	if res := verify(resp); !res.OK {
		t.Fatalf("delete: %+v", res)
	}
	_, resp, _ = g.instruct(w, "1234", r2ps.SECDSAOp{Op: r2ps.SECDSAOpSign, KID: gen.KID, Hash: digest[:]})
	if res := verify(resp); res.OK || res.Error != r2ps.CodeIllegalRequestData {
		t.Fatalf("sign with a deleted key: %+v", res)
	}
	// Refusals inside the envelope.
	o, _, x := g.instruct(w, "0000", r2ps.SECDSAOp{Op: r2ps.SECDSAOpGenerate})
	if o.enclosed != r2ps.CodeUnauthorized {
		t.Fatalf("wrong PIN: %+v", o)
	}
	if o := g.secdsaSend(w, r2ps.TypeSECDSAInstruction, r2ps.SECDSAInstructionRequest{Instruction: x}, nil); o.enclosed != r2ps.CodeAccessDenied {
		t.Fatalf("replay: %+v", o)
	}
	if o := g.secdsaSend(w, r2ps.TypeSECDSAActivateBegin, r2ps.SECDSAActivateRequest{Request: []byte("x")}, nil); o.enclosed != r2ps.CodeIllegalState {
		t.Fatalf("second activation: %+v", o)
	}
	// PIN change under the old PIN.
	var nr r2ps.SECDSANonceResponse
	g.secdsaSend(w, r2ps.TypeSECDSANonce, struct{}{}, &nr)
	req, state, err := secdsa.BeginActivation(rand.Reader, w.binder, w.dev, []byte("5678"), nr.AccountID, nr.Nonce)
	if err != nil {
		t.Fatal(err)
	}
	_, resp, _ = g.instruct(w, "1234", r2ps.SECDSAOp{Op: r2ps.SECDSAOpPINChange, Activation: req.Marshal()})
	res := verify(resp)
	ar, err := secdsa.ParseActivationResponse(res.Response)
	if !res.OK || err != nil {
		t.Fatalf("pin change: %+v, %v", res, err)
	}
	yp, _ := state.Finish(ar)
	var fr r2ps.SECDSAFinishResponse
	if o := g.secdsaSend(w, r2ps.TypeSECDSAActivateFinish, r2ps.SECDSAFinishRequest{YPrime: yp}, &fr); o.problem+o.enclosed != "" {
		t.Fatalf("finish: %+v", o)
	}
	w.ic, _ = secdsa.ParseInternalCert(fr.Cert)
	if o, _, _ := g.instruct(w, "5678", r2ps.SECDSAOp{Op: r2ps.SECDSAOpGenerate}); o.problem+o.enclosed != "" {
		t.Fatalf("new PIN: %+v", o)
	}
	// The lock.
	for range 5 {
		g.instruct(w, "0000", r2ps.SECDSAOp{Op: r2ps.SECDSAOpGenerate})
	}
	if o, _, _ := g.instruct(w, "5678", r2ps.SECDSAOp{Op: r2ps.SECDSAOpGenerate}); o.enclosed != r2ps.CodeAccessDenied {
		t.Fatalf("locked: %+v", o)
	}
	// A suspended unit: refused by the policy before the handler.
	if err := g.st.SetUnitState(t.Context(), w.unit, store.UnitSuspended, time.Now()); err != nil {
		t.Fatal(err)
	}
	if o := g.secdsaSend(w, r2ps.TypeSECDSANonce, struct{}{}, nil); o.problem+o.enclosed == "" {
		t.Fatal("suspended unit served")
	}
}
