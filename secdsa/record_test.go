package secdsa

import (
	"errors"
	"reflect"
	"testing"

	"github.com/wsca/wsca/internal/wycheproof"
)

func record(t testing.TB) (*unit, *TRecord) {
	t.Helper()
	un := softUnit(t)
	ex, err := ExecESInstruction(un.ic, instruct(t, un, "12345", 3), 0, un.prov.derive)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTRecord(un.ic, ex, []byte("signature: 3045..."), 1767225700, un.prov.signer)
	if err != nil {
		t.Fatal(err)
	}
	return un, tr
}

// flip changes one field of a struct (by index) in place: a byte flipped,
// a counter incremented, an empty field given a byte.
func flip(v reflect.Value) {
	switch v.Kind() {
	case reflect.Uint64:
		v.SetUint(v.Uint() + 1)
	case reflect.Slice:
		b := append([]byte(nil), v.Bytes()...)
		if len(b) == 0 {
			b = []byte{0}
		} else {
			b[len(b)/2] ^= 1
		}
		v.SetBytes(b)
	}
}

// TestRecordFieldChanged: changing any single field of a record makes
// VerifyTRecord fail. Re-signed by the provider (a malicious operator),
// every field the wallet's cryptography covers still fails; only the
// provider's own claims (Result, Time) then pass, as the spec says.
func TestRecordFieldChanged(t *testing.T) {
	un, tr := record(t)
	pub := &un.prov.signer.PublicKey
	if err := VerifyTRecord(un.ic, pub, tr); err != nil {
		t.Fatal(err)
	}
	providerOnly := map[string]bool{"Result": true, "Time": true, "Signature": true}
	typ := reflect.TypeOf(*tr)
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		t.Run(name, func(t *testing.T) {
			c := *tr
			flip(reflect.ValueOf(&c).Elem().Field(i))
			if err := VerifyTRecord(un.ic, pub, &c); err == nil {
				t.Fatal("verified")
			}
			if name == "Signature" {
				return
			}
			sig, err := providerSign(un.prov.signer, c.Hash())
			if err != nil {
				t.Fatal(err)
			}
			c.Signature = sig
			err = VerifyTRecord(un.ic, pub, &c)
			if providerOnly[name] != (err == nil) {
				t.Fatalf("re-signed: err = %v, provider-only field = %v", err, providerOnly[name])
			}
		})
	}
}

// TestCertFieldChanged: changing any single field of the Internal
// Certificate makes VerifyTRecord fail; re-signing both the certificate and
// the record, only IssuedAt (the provider's claim) passes.
func TestCertFieldChanged(t *testing.T) {
	un, tr := record(t)
	pub := &un.prov.signer.PublicKey
	typ := reflect.TypeOf(*un.ic)
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		t.Run(name, func(t *testing.T) {
			ic := *un.ic
			flip(reflect.ValueOf(&ic).Elem().Field(i))
			if err := VerifyTRecord(&ic, pub, tr); err == nil {
				t.Fatal("verified")
			}
			if name == "Signature" {
				return
			}
			if ic.Signature, _ = providerSign(un.prov.signer, ic.ID()); ic.Signature == nil {
				t.Fatal("sign")
			}
			c := *tr
			c.AccountID, c.CertID = ic.AccountID, ic.ID()
			c.Signature, _ = providerSign(un.prov.signer, c.Hash())
			err := VerifyTRecord(&ic, pub, &c)
			if (name == "IssuedAt") != (err == nil) {
				t.Fatalf("re-signed: err = %v", err)
			}
		})
	}
}

func TestRecordOtherProvider(t *testing.T) {
	un, tr := record(t)
	other := newProvider(t, labelScalarOf("x"), labelScalarOf("other provider"))
	if err := VerifyTRecord(un.ic, &other.signer.PublicKey, tr); !errors.Is(err, ErrSignature) {
		t.Fatalf("err = %v", err)
	}
}

// TestWycheproofInvalidPoints runs the invalid public points of
// Wycheproof's ecdh_secp256r1_ecpoint_test.json (repository copy in
// testdata/wycheproof, with its source and licence) through every entry
// that receives a point: ParsePoint, the activation request, the response,
// the certificate, the instruction (CheckPerimeter, before the HSM) and
// the record.
func TestWycheproofInvalidPoints(t *testing.T) {
	un, tr := record(t)
	x := instruct(t, un, "12345", 4)
	req, _, err := BeginActivation(newDetReader("w"), un.binder, un.dev, []byte("12345"), []byte("unit-1"), testNonce)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tc := range wycheproof.ECDH(t, "ecdh_secp256r1_ecpoint_test.json") {
		if tc.Result != wycheproof.Invalid {
			continue
		}
		n++
		pt := []byte(tc.Public)
		if _, err := ParsePoint(pt); err == nil {
			t.Errorf("tc %d: ParsePoint accepted", tc.TcID)
		}
		entries := map[string]func() error{
			"activation U": func() error { r := *req; r.U = pt; _, err := ParseActivationRequest(r.Marshal()); return err },
			"activation Ybl": func() error {
				r := *req
				r.YBlind = pt
				_, err := Activate(&r, r.AccountID, r.Nonce, un.prov.gp, un.prov.derive)
				return err
			},
			"response Y'bl": func() error {
				_, err := ParseActivationResponse((&ActivationResponse{un.ic.GPrime, pt}).Marshal())
				return err
			},
			"certificate Y'": func() error { c := *un.ic; c.YPrime = pt; return VerifyInternalCert(&c, &un.prov.signer.PublicKey) },
			"instruction E":  func() error { c := *x; c.E = pt; _, err := ExecESInstruction(un.ic, &c, 0, un.prov.derive); return err },
			"instruction R":  func() error { c := *x; c.R = pt; _, err := ExecESInstruction(un.ic, &c, 0, un.prov.derive); return err },
			"instruction R'": func() error {
				c := *x
				c.RPrime = pt
				_, err := ExecESInstruction(un.ic, &c, 0, un.prov.derive)
				return err
			},
			"record G''": func() error { c := *tr; c.GPP = pt; return VerifyTRecord(un.ic, &un.prov.signer.PublicKey, &c) },
			"issue G'": func() error {
				_, err := IssueInternalCert([]byte("a"), un.ic.U, pt, un.ic.YPrime, 1, un.prov.signer)
				return err
			},
		}
		calls := un.prov.calls.Load()
		for name, f := range entries {
			if err := f(); err == nil {
				t.Errorf("tc %d (%s): %s accepted", tc.TcID, tc.Comment, name)
			}
		}
		if un.prov.calls.Load() != calls {
			t.Errorf("tc %d: the HSM saw an invalid point", tc.TcID)
		}
	}
	if n == 0 {
		t.Fatal("no invalid points")
	}
}
