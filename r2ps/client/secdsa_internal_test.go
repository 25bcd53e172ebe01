package client

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"

	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/secdsa"
)

// softProvider is the provider side in software (the secdsa library's
// pure functions), to make genuine answers without a server.
type softProvider struct {
	aU     *ecdh.PrivateKey
	signer *ecdsa.PrivateKey
	dev    *secdsa.SoftwareDeviceKey
	binder *secdsa.SoftwarePINBinder
}

func newSoftProvider(t *testing.T) *softProvider {
	t.Helper()
	aU, _ := ecdh.P256().GenerateKey(rand.Reader)
	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dev, _ := secdsa.SoftwareDeviceKeyFrom(csk)
	k := make([]byte, 32)
	rand.Read(k)
	binder, err := secdsa.NewSoftwarePINBinder(k)
	if err != nil {
		t.Fatal(err)
	}
	return &softProvider{aU: aU, signer: signer, dev: dev, binder: binder}
}

// activate runs Protocol 4 up to the finish response; the state is ready
// for acceptFinish.
func (p *softProvider) activate(t *testing.T) (*secdsa.ActivationState, r2ps.SECDSAFinishResponse) {
	t.Helper()
	account, nonce := []byte("unit-1"), []byte("a provider nonce, 16+ bytes")
	req, state, err := secdsa.BeginActivation(rand.Reader, p.binder, p.dev, []byte("1234"), account, nonce)
	if err != nil {
		t.Fatal(err)
	}
	gp := p.aU.PublicKey().Bytes()
	resp, err := secdsa.Activate(req, account, nonce, gp, secdsa.SoftwareDerive(p.aU))
	if err != nil {
		t.Fatal(err)
	}
	yp, err := state.Finish(resp)
	if err != nil {
		t.Fatal(err)
	}
	ic, err := secdsa.IssueInternalCert(account, req.U, gp, yp, 1, p.signer)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := p.signer.PublicKey.Bytes()
	return state, r2ps.SECDSAFinishResponse{Success: true, Cert: ic.Marshal(), ProviderKey: pk}
}

// TestAcceptFinish: the certificate must be the activation's and the
// provider key the pinned one.
func TestAcceptFinish(t *testing.T) {
	p := newSoftProvider(t)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherPK, _ := other.PublicKey.Bytes()
	for _, tc := range []struct {
		name   string
		mod    func(fr *r2ps.SECDSAFinishResponse)
		pinned func() *ecdsa.PublicKey
		ok     bool
	}{
		{"genuine", nil, nil, true},
		{"genuine, pinned", nil, func() *ecdsa.PublicKey { return &p.signer.PublicKey }, true},
		{"another provider key than pinned", nil, func() *ecdsa.PublicKey { return &other.PublicKey }, false},
		{"garbage certificate", func(fr *r2ps.SECDSAFinishResponse) { fr.Cert = []byte("x") }, nil, false},
		{"garbage provider key", func(fr *r2ps.SECDSAFinishResponse) { fr.ProviderKey = []byte{4, 1} }, nil, false},
		{"certificate under another key", func(fr *r2ps.SECDSAFinishResponse) { fr.ProviderKey = otherPK }, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state, fr := p.activate(t)
			if tc.mod != nil {
				tc.mod(&fr)
			}
			var pinned *ecdsa.PublicKey
			if tc.pinned != nil {
				pinned = tc.pinned()
			}
			b, err := acceptFinish(state, fr, pinned)
			if (err == nil) != tc.ok {
				t.Fatalf("acceptFinish: %v, want ok %v", err, tc.ok)
			}
			if tc.ok && (b.Cert == nil || !b.Provider.Equal(&p.signer.PublicKey)) {
				t.Fatalf("binding %+v", b)
			}
		})
	}
}

// TestCheckSECDSAAnswer: an instruction's answer is accepted only with a
// record that verifies and holds the instruction as sent and the
// answer's result; a failed execution comes back with its code.
func TestCheckSECDSAAnswer(t *testing.T) {
	p := newSoftProvider(t)
	state, fr := p.activate(t)
	b, err := acceptFinish(state, fr, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	const sn = 7
	ad := []byte("Authorize 1.000 Euro to NL02INGB0123456789")
	answer := func(t *testing.T, result r2ps.SECDSAResult, ins []byte) r2ps.SECDSAInstructionResponse {
		t.Helper()
		x, err := secdsa.GenESInstruction(rand.Reader, b.Cert, p.binder, p.dev, []byte("1234"), sn, ins, ad)
		if err != nil {
			t.Fatal(err)
		}
		ex, err := secdsa.ExecESInstruction(b.Cert, x, 0, secdsa.SoftwareDerive(p.aU))
		if err != nil {
			t.Fatal(err)
		}
		res, _ := json.Marshal(result)
		tr, err := secdsa.NewTRecord(b.Cert, ex, res, 2, p.signer)
		if err != nil {
			t.Fatal(err)
		}
		return r2ps.SECDSAInstructionResponse{Success: true, Result: res, Record: tr.Marshal()}
	}
	okResult := r2ps.SECDSAResult{Op: r2ps.SECDSAOpGenerate, OK: true, KID: "00112233445566778899aabbccddeeff"}
	for _, tc := range []struct {
		name   string
		op     string // the instruction's op (default p256_generate)
		result r2ps.SECDSAResult
		mod    func(resp *r2ps.SECDSAInstructionResponse, b *SECDSABinding, sn *uint64, op *string, ins, ad *[]byte)
		want   error  // ErrSECDSARecord, or nil with code
		code   string // an *Error with this code (the outcome returned too)
		fails  bool   // some other error
	}{
		{name: "genuine", result: okResult},
		{name: "failed execution", result: r2ps.SECDSAResult{Op: r2ps.SECDSAOpGenerate, Error: r2ps.CodeIllegalRequestData}, code: r2ps.CodeIllegalRequestData},
		{name: "failed execution, unknown code", result: r2ps.SECDSAResult{Op: r2ps.SECDSAOpGenerate, Error: "NOPE"}, code: r2ps.CodeServerError},
		{name: "garbage record", result: okResult, want: ErrSECDSARecord,
			mod: func(r *r2ps.SECDSAInstructionResponse, _ *SECDSABinding, _ *uint64, _ *string, _, _ *[]byte) {
				r.Record = []byte("x")
			}},
		{name: "record under another provider key", result: okResult, want: ErrSECDSARecord,
			mod: func(_ *r2ps.SECDSAInstructionResponse, b *SECDSABinding, _ *uint64, _ *string, _, _ *[]byte) {
				b.Provider = &other.PublicKey
			}},
		{name: "another serial number", result: okResult, want: ErrSECDSARecord,
			mod: func(_ *r2ps.SECDSAInstructionResponse, _ *SECDSABinding, sn *uint64, _ *string, _, _ *[]byte) { *sn++ }},
		{name: "another instruction", result: okResult, want: ErrSECDSARecord,
			mod: func(_ *r2ps.SECDSAInstructionResponse, _ *SECDSABinding, _ *uint64, _ *string, ins, _ *[]byte) {
				*ins = []byte(`{"op":"p256_generate" }`)
			}},
		{name: "other additional data", result: okResult, want: ErrSECDSARecord,
			mod: func(_ *r2ps.SECDSAInstructionResponse, _ *SECDSABinding, _ *uint64, _ *string, _, ad *[]byte) {
				*ad = []byte("Authorize 9.000 Euro to NL02INGB0123456789")
			}},
		{name: "answer's result not the record's", result: okResult, want: ErrSECDSARecord,
			mod: func(r *r2ps.SECDSAInstructionResponse, _ *SECDSABinding, _ *uint64, _ *string, _, _ *[]byte) {
				r.Result, _ = json.Marshal(r2ps.SECDSAResult{Op: r2ps.SECDSAOpGenerate, OK: true, KID: "ffffffffffffffffffffffffffffffff"})
			}},
		{name: "result of another op", result: r2ps.SECDSAResult{Op: r2ps.SECDSAOpDelete, OK: true}, want: ErrSECDSARecord},
		{name: "ECDH", op: r2ps.SECDSAOpECDH, result: r2ps.SECDSAResult{Op: r2ps.SECDSAOpECDH, OK: true, KID: "00112233445566778899aabbccddeeff"},
			mod: func(r *r2ps.SECDSAInstructionResponse, _ *SECDSABinding, _ *uint64, _ *string, _, _ *[]byte) {
				r.Secret = make([]byte, 32)
			}},
		{name: "ECDH without its secret", op: r2ps.SECDSAOpECDH, result: r2ps.SECDSAResult{Op: r2ps.SECDSAOpECDH, OK: true}, fails: true},
		{name: "secret for an op without one", result: okResult, fails: true,
			mod: func(r *r2ps.SECDSAInstructionResponse, _ *SECDSABinding, _ *uint64, _ *string, _, _ *[]byte) {
				r.Secret = []byte{1}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := r2ps.SECDSAOpGenerate
			if tc.op != "" {
				op = tc.op
			}
			ins, _ := r2ps.SECDSAOp{Op: op}.Marshal()
			resp := answer(t, tc.result, ins)
			bb, s, i, a := *b, uint64(sn), ins, ad
			if tc.mod != nil {
				tc.mod(&resp, &bb, &s, &op, &i, &a)
			}
			out, err := checkSECDSAAnswer(&bb, s, op, i, a, resp)
			switch {
			case tc.want != nil:
				if !errors.Is(err, tc.want) {
					t.Fatalf("err %v, want %v", err, tc.want)
				}
			case tc.code != "":
				if !IsCode(err, tc.code) || out == nil || out.Record == nil {
					t.Fatalf("err %v, outcome %+v; want code %s with the outcome", err, out, tc.code)
				}
			case tc.fails:
				if err == nil {
					t.Fatal("accepted")
				}
			default:
				if err != nil || out.Result.KID != tc.result.KID || !out.Result.OK || out.Record.SN != sn {
					t.Fatalf("err %v, outcome %+v", err, out)
				}
			}
		})
	}
}
