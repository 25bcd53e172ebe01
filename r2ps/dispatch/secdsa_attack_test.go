package dispatch_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"testing"

	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/secdsa"
)

// TestSECDSAAttacker: unit A, activated and holding its PIN, aims every
// instruction at what is not its own (unit B's SECDSA key, its own key of
// the OPAQUE context), and forges the SECDSA fields around its device
// signature. Nothing of B's is used, returned or destroyed; no refusal
// before the HSM counts a PIN failure or moves the serial number.
func TestSECDSAAttacker(t *testing.T) {
	g := newRig(t)
	ctx := t.Context()
	a, b := g.newSECDSAWallet(), g.newSECDSAWallet()
	g.secdsaActivate(a, "1234")
	g.secdsaActivate(b, "9876")
	_, resp, _ := g.instruct(b, "9876", r2ps.SECDSAOp{Op: r2ps.SECDSAOpGenerate})
	var gen r2ps.SECDSAResult
	if err := json.Unmarshal(resp.Result, &gen); err != nil || !gen.OK {
		t.Fatalf("B's key: %+v %v", gen, err)
	}
	kidB := gen.KID
	hsmKey, err := a.sess.Generate(ctx) // A's key in the OPAQUE context "hsm"
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)

	// Authenticated instructions at keys A may not use: executed as
	// failures (a record says so), nothing of the key in the response.
	for _, tc := range []struct {
		name string
		op   r2ps.SECDSAOp
	}{
		{"sign with B's key", r2ps.SECDSAOp{Op: r2ps.SECDSAOpSign, KID: kidB, Hash: digest[:]}},
		{"ECDH with B's key", r2ps.SECDSAOp{Op: r2ps.SECDSAOpECDH, KID: kidB, Peer: peer.PublicKey().Bytes()}},
		{"delete B's key", r2ps.SECDSAOp{Op: r2ps.SECDSAOpDelete, KID: kidB}},
		{"sign with A's OPAQUE-context key", r2ps.SECDSAOp{Op: r2ps.SECDSAOpSign, KID: hsmKey.KID, Hash: digest[:]}},
		{"ECDH with A's OPAQUE-context key", r2ps.SECDSAOp{Op: r2ps.SECDSAOpECDH, KID: hsmKey.KID, Peer: peer.PublicKey().Bytes()}},
		{"delete A's OPAQUE-context key", r2ps.SECDSAOp{Op: r2ps.SECDSAOpDelete, KID: hsmKey.KID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, resp, _ := g.instruct(a, "1234", tc.op)
			if o.problem+o.enclosed != "" {
				t.Fatalf("outcome %q %q", o.problem, o.enclosed)
			}
			var res r2ps.SECDSAResult
			if err := json.Unmarshal(resp.Result, &res); err != nil {
				t.Fatal(err)
			}
			if res.OK || len(res.Signature)+len(res.PublicKey)+len(resp.Secret) != 0 {
				t.Fatalf("result %+v, secret %x", res, resp.Secret)
			}
		})
	}
	// B's key and A's OPAQUE key still work for their owners.
	if _, resp, _ := g.instruct(b, "9876", r2ps.SECDSAOp{Op: r2ps.SECDSAOpSign, KID: kidB, Hash: digest[:]}); !bytes.Contains(resp.Result, []byte(`"ok":true`)) {
		t.Fatalf("B's key after A's attempts: %s", resp.Result)
	}
	if _, err := a.sess.Sign(ctx, hsmKey.KID, digest[:]); err != nil {
		t.Fatalf("A's OPAQUE key after the SECDSA attempts: %v", err)
	}

	// Forged SECDSA fields in A's correctly signed envelope: refused
	// before the HSM, nothing counted, no serial number consumed.
	before, err := g.st.GetSECDSA(ctx, a.unit)
	if err != nil {
		t.Fatal(err)
	}
	ins, _ := r2ps.SECDSAOp{Op: r2ps.SECDSAOpGenerate}.Marshal()
	// B's instruction (B's certificate, device key and PIN), replayed by A.
	b.sn++
	xB, err := secdsa.GenESInstruction(rand.Reader, b.ic, b.binder, b.dev, []byte("9876"), b.sn, ins, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A's own instruction under a serial number already used, and one
	// whose challenge signature (the device's) has a byte changed. (A
	// changed ciphertext is a PIN failure by design: only the derive
	// tells it from a wrong PIN, and the envelope says the device sent it.)
	xOld, err := secdsa.GenESInstruction(rand.Reader, a.ic, a.binder, a.dev, []byte("1234"), a.sn, ins, nil)
	if err != nil {
		t.Fatal(err)
	}
	xA, err := secdsa.GenESInstruction(rand.Reader, a.ic, a.binder, a.dev, []byte("1234"), a.sn+1, ins, nil)
	if err != nil {
		t.Fatal(err)
	}
	xA.SigChal[10] ^= 1
	tampered := xA.Marshal()
	// B's activation request, with B's nonce, sent by A.
	var nrB r2ps.SECDSANonceResponse
	g.secdsaSend(b, r2ps.TypeSECDSANonce, struct{}{}, &nrB)
	reqB, _, err := secdsa.BeginActivation(rand.Reader, b.binder, b.dev, []byte("1111"), nrB.AccountID, nrB.Nonce)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, typ string
		data      any
		want      string
	}{
		{"B's instruction", r2ps.TypeSECDSAInstruction, r2ps.SECDSAInstructionRequest{Instruction: xB.Marshal()}, r2ps.CodeIllegalRequestData},
		{"a used serial number", r2ps.TypeSECDSAInstruction, r2ps.SECDSAInstructionRequest{Instruction: xOld.Marshal()}, r2ps.CodeAccessDenied},
		{"a changed byte", r2ps.TypeSECDSAInstruction, r2ps.SECDSAInstructionRequest{Instruction: tampered}, r2ps.CodeIllegalRequestData},
		{"empty instruction", r2ps.TypeSECDSAInstruction, r2ps.SECDSAInstructionRequest{}, r2ps.CodeIllegalRequestData},
		{"garbage instruction", r2ps.TypeSECDSAInstruction, r2ps.SECDSAInstructionRequest{Instruction: bytes.Repeat([]byte{0xff}, 4096)}, r2ps.CodeIllegalRequestData},
		{"unknown member", r2ps.TypeSECDSAInstruction, map[string]any{"instruction": xB.Marshal(), "x": 1}, r2ps.CodeIllegalRequestData},
		{"activation of a bound unit", r2ps.TypeSECDSAActivateBegin, r2ps.SECDSAActivateRequest{Request: reqB.Marshal()}, r2ps.CodeIllegalState},
		{"finish without an activation", r2ps.TypeSECDSAActivateFinish, r2ps.SECDSAFinishRequest{YPrime: peer.PublicKey().Bytes()}, r2ps.CodeIllegalState},
		{"finish with a bad Y'", r2ps.TypeSECDSAActivateFinish, r2ps.SECDSAFinishRequest{YPrime: bytes.Repeat([]byte{4}, 65)}, r2ps.CodeIllegalRequestData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if o := g.secdsaSend(a, tc.typ, tc.data, nil); o.enclosed != tc.want {
				t.Fatalf("outcome %d %q %q, want %s", o.status, o.problem, o.enclosed, tc.want)
			}
			after, err := g.st.GetSECDSA(ctx, a.unit)
			if err != nil {
				t.Fatal(err)
			}
			if after.Failures != before.Failures || after.LastSN != before.LastSN || after.Locked || !bytes.Equal(after.Cert, before.Cert) {
				t.Fatalf("binding changed: failures %d→%d, last SN %d→%d, locked %v", before.Failures, after.Failures, before.LastSN, after.LastSN, after.Locked)
			}
		})
	}
	// B is untouched: its nonce is still good, its instruction still runs.
	if o, _, _ := g.instruct(b, "9876", r2ps.SECDSAOp{Op: r2ps.SECDSAOpGenerate}); o.problem+o.enclosed != "" {
		t.Fatalf("B after A's attempts: %q %q", o.problem, o.enclosed)
	}
	// A's own next instruction still passes.
	if o, _, _ := g.instruct(a, "1234", r2ps.SECDSAOp{Op: r2ps.SECDSAOpGenerate}); o.problem+o.enclosed != "" {
		t.Fatalf("A after the refusals: %q %q", o.problem, o.enclosed)
	}
}
