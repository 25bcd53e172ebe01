package secdsa

import (
	"bytes"
	"errors"
	"testing"
)

func instruct(t testing.TB, un *unit, pin string, sn uint64) *EncSignedInstruction {
	t.Helper()
	x, err := GenESInstruction(newDetReader("instruction"), un.ic, un.binder, un.dev, []byte(pin), sn,
		[]byte("Authorize 1.000 Euro to NL02INGB0123456789"), []byte("session-42"))
	if err != nil {
		t.Fatal(err)
	}
	x, err = ParseEncSignedInstruction(x.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestFlow(t *testing.T) {
	un := softUnit(t)
	x := instruct(t, un, "12345", 1)
	calls := un.prov.calls.Load()
	ex, err := ExecESInstruction(un.ic, x, 0, un.prov.derive)
	if err != nil {
		t.Fatal(err)
	}
	if got := un.prov.calls.Load() - calls; got != 1 {
		t.Fatalf("ExecESInstruction made %d derive calls, want 1", got)
	}
	if string(ex.Instruction) != "Authorize 1.000 Euro to NL02INGB0123456789" || string(ex.Additional) != "session-42" {
		t.Fatalf("instruction %q / %q", ex.Instruction, ex.Additional)
	}
	tr, err := NewTRecord(un.ic, ex, []byte("OK"), 1767225700, un.prov.signer)
	if err != nil {
		t.Fatal(err)
	}
	tr, err = ParseTRecord(tr.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyTRecord(un.ic, &un.prov.signer.PublicKey, tr); err != nil {
		t.Fatal(err)
	}
}

// TestRefusals: each case names the outcome the spec gives it (counts: a
// PIN failure; perimeter: refused before the HSM, not counted).
func TestRefusals(t *testing.T) {
	un := softUnit(t)
	fabricated := func() *EncSignedInstruction {
		// An attacker with the phone but not the PIN picks R = k·G with a
		// known k: then R' = k·G' = aU·R and decryption succeeds; only the
		// R' = e·G'' + r·Y'' check catches it.
		x := instruct(t, un, "12345", 9)
		k := labelScalarOf("attacker-k")
		rp, _ := mulG(k)
		_, gp, _, _ := un.ic.points()
		rpp, _ := mul(gp, k)
		x.R, x.RPrime = encodePoint(rp), encodePoint(rpp)
		return resealed(t, un, x)
	}
	cases := []struct {
		name      string
		x         func() *EncSignedInstruction
		lastSN    uint64
		want      error // also ErrAuthentication when hsmCalled
		hsmCalled bool
	}{
		{"wrong PIN", func() *EncSignedInstruction { return instruct(t, un, "54321", 2) }, 0, ErrAuthentication, true},
		{"replayed serial", func() *EncSignedInstruction { return instruct(t, un, "12345", 5) }, 5, ErrReplay, false},
		{"forged challenge signature", func() *EncSignedInstruction {
			x := instruct(t, un, "12345", 6)
			x.SigChal[40] ^= 1
			return x
		}, 0, ErrChallengeSignature, false},
		{"other account", func() *EncSignedInstruction {
			x := instruct(t, un, "12345", 6)
			x.AccountID = []byte("unit-2")
			return x
		}, 0, ErrAccount, false},
		{"invalid E", func() *EncSignedInstruction {
			x := instruct(t, un, "12345", 6)
			x.E[64] ^= 1
			return x
		}, 0, ErrInvalidPoint, false},
		{"tampered ciphertext", func() *EncSignedInstruction {
			x := instruct(t, un, "12345", 6)
			x.Ciphertext[0] ^= 1
			return x
		}, 0, ErrAuthentication, true},
		{"fabricated R", fabricated, 0, ErrProof, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := c.x()
			calls := un.prov.calls.Load()
			_, err := ExecESInstruction(un.ic, x, c.lastSN, un.prov.derive)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if c.hsmCalled && !errors.Is(err, ErrAuthentication) {
				t.Fatalf("err = %v, want a PIN failure (ErrAuthentication)", err)
			}
			if called := un.prov.calls.Load() != calls; called != c.hsmCalled {
				t.Fatalf("HSM called = %v, want %v", called, c.hsmCalled)
			}
		})
	}
}

// resealed re-signs the challenge and re-encrypts for a modified R/R', as
// a holder of the phone (device key) but not of the PIN could.
func resealed(t *testing.T, un *unit, x *EncSignedInstruction) *EncSignedInstruction {
	t.Helper()
	_, gp, _, _ := un.ic.points()
	rP, _ := ParsePoint(x.R)
	rp, _ := ParsePoint(x.RPrime)
	seed := digest([]byte("attacker seed"))
	d1, d2, _ := challengeScalars(seed)
	e, _ := lin(d1, generator(), d2, rP)
	z, _ := lin(d1, gp, d2, rp)
	_, h2 := challengeHashes(d1, d2)
	x.E, x.H2 = encodePoint(e), h2
	c := challengeDigest(x.AccountID, x.SN, x.E, x.R, x.RPrime, x.H2)
	var err error
	if x.SigChal, err = un.dev.SignDigest(c); err != nil {
		t.Fatal(err)
	}
	// Plaintext: the honest G'', Y'', π of a real instruction (the attacker
	// cannot make them fit R without a signature under Y).
	honest := instruct(t, un, "12345", x.SN)
	ex, err := ExecESInstruction(un.ic, honest, 0, un.prov.derive)
	if err != nil {
		t.Fatal(err)
	}
	un.prov.calls.Add(-1)
	pt := frame(labelPlaintext, seed, ex.Instruction, ex.Additional, ex.GPP, ex.YPP, ex.Proof)
	aead, _ := instructionAEAD(xOf(z))
	x.Ciphertext = aead.Seal(nil, x.IV, pt, c)
	return x
}

func TestDeviceKeyMustMatchCertificate(t *testing.T) {
	un := softUnit(t)
	other, _ := NewSoftwareDeviceKey()
	if _, err := GenESInstruction(newDetReader("x"), un.ic, un.binder, other, []byte("12345"), 1, []byte("i"), nil); !errors.Is(err, ErrAccount) {
		t.Fatalf("err = %v", err)
	}
}

func TestActivationRefusals(t *testing.T) {
	un := softUnit(t)
	binder, dev := un.binder, un.dev
	fresh := func() *ActivationRequest {
		req, _, err := BeginActivation(newDetReader("a"), binder, dev, []byte("12345"), []byte("unit-1"), testNonce)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	other, _ := NewSoftwareDeviceKey()
	cases := []struct {
		name    string
		mutate  func(r *ActivationRequest)
		account string
		nonce   []byte
		want    error
	}{
		{"other account", func(*ActivationRequest) {}, "unit-2", testNonce, ErrAccount},
		{"other nonce", func(*ActivationRequest) {}, "unit-1", []byte("another-nonce-0123456789"), ErrActivation},
		{"proof", func(r *ActivationRequest) { r.Proof[5] ^= 1 }, "unit-1", testNonce, ErrActivation},
		{"PoP", func(r *ActivationRequest) { r.PoP[40] ^= 1 }, "unit-1", testNonce, ErrActivation},
		{"U of another device", func(r *ActivationRequest) {
			b, _ := other.Public().Bytes()
			r.U = b
		}, "unit-1", testNonce, ErrActivation},
		{"Ybl is G", func(r *ActivationRequest) { r.YBlind = encodePoint(generator()) }, "unit-1", testNonce, ErrActivation},
		{"Ybl off the curve", func(r *ActivationRequest) { r.YBlind[64] ^= 1 }, "unit-1", testNonce, ErrInvalidPoint},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := fresh()
			c.mutate(req)
			calls := un.prov.calls.Load()
			if _, err := Activate(req, []byte(c.account), c.nonce, un.prov.gp, un.prov.derive); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if un.prov.calls.Load() != calls {
				t.Fatal("the HSM was called for a refused activation")
			}
		})
	}
}

// TestAcceptRefusesForeignCertificate: the wallet refuses a certificate
// that is not the one its activation asked for.
func TestAcceptRefusesForeignCertificate(t *testing.T) {
	un := softUnit(t)
	req, st, err := BeginActivation(newDetReader("b"), un.binder, un.dev, []byte("12345"), []byte("unit-1"), testNonce)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := Activate(req, []byte("unit-1"), testNonce, un.prov.gp, un.prov.derive)
	if err != nil {
		t.Fatal(err)
	}
	yp, err := st.Finish(resp)
	if err != nil {
		t.Fatal(err)
	}
	wrongY := un.ic.U
	if bytes.Equal(wrongY, yp) {
		t.Fatal("test setup")
	}
	ic, err := IssueInternalCert(req.AccountID, req.U, resp.GPrime, wrongY, 1, un.prov.signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Accept(ic, &un.prov.signer.PublicKey); !errors.Is(err, ErrActivation) {
		t.Fatalf("err = %v", err)
	}
}

// TestFinishOnce: Finish wipes the blinding factor t, and a second Finish
// is refused rather than computed with a wiped t.
func TestFinishOnce(t *testing.T) {
	un := softUnit(t)
	req, st, err := BeginActivation(newDetReader("c"), un.binder, un.dev, []byte("12345"), []byte("unit-1"), testNonce)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := Activate(req, []byte("unit-1"), testNonce, un.prov.gp, un.prov.derive)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Finish(resp); err != nil {
		t.Fatal(err)
	}
	if st.t != nil {
		t.Fatal("t kept after Finish")
	}
	if _, err := st.Finish(resp); !errors.Is(err, ErrActivation) {
		t.Fatalf("second Finish: err = %v, want ErrActivation", err)
	}
}
