package secdsa

import (
	"bytes"
	"testing"
)

// Every decoder: no panic, and what decodes re-encodes to the same bytes
// (one encoding per value).

func FuzzParsePoint(f *testing.F) {
	f.Add(encodePoint(generator()))
	f.Add([]byte{4})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePoint(b)
		if err == nil && !bytes.Equal(encodePoint(p), b) {
			t.Fatal("re-encoding differs")
		}
	})
}

func FuzzParseInternalCert(f *testing.F) {
	un := softUnit(f)
	f.Add(un.ic.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseInternalCert(b)
		if err == nil && !bytes.Equal(c.Marshal(), b) {
			t.Fatal("re-encoding differs")
		}
	})
}

func FuzzParseEncSignedInstruction(f *testing.F) {
	un := softUnit(f)
	f.Add(instruct(f, un, "12345", 1).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := ParseEncSignedInstruction(b)
		if err != nil {
			return
		}
		if !bytes.Equal(x.Marshal(), b) {
			t.Fatal("re-encoding differs")
		}
		_, _ = ExecESInstruction(un.ic, x, 0, un.prov.derive) // must not panic
	})
}

func FuzzParseTRecord(f *testing.F) {
	un, tr := record(f)
	f.Add(tr.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseTRecord(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Marshal(), b) {
			t.Fatal("re-encoding differs")
		}
		_ = VerifyTRecord(un.ic, &un.prov.signer.PublicKey, r) // must not panic
	})
}

func FuzzParseActivation(f *testing.F) {
	un := softUnit(f)
	req, _, err := BeginActivation(newDetReader("f"), un.binder, un.dev, []byte("12345"), []byte("unit-1"), testNonce)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(req.Marshal())
	f.Add((&ActivationResponse{un.ic.GPrime, un.ic.YPrime}).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := ParseActivationRequest(b); err == nil && !bytes.Equal(r.Marshal(), b) {
			t.Fatal("request re-encoding differs")
		}
		if r, err := ParseActivationResponse(b); err == nil && !bytes.Equal(r.Marshal(), b) {
			t.Fatal("response re-encoding differs")
		}
	})
}

// FuzzPlaintext: the decrypted plaintext's decoder, reached only after
// decryption, via unframe.
func FuzzPlaintext(f *testing.F) {
	f.Add(frame(labelPlaintext, make([]byte, 32), []byte("i"), nil, encodePoint(generator()), encodePoint(generator()), make([]byte, 64)))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := unframe(b, labelPlaintext, seedSize, -1, -1, PointSize, PointSize, ProofSize)
		if err == nil && !bytes.Equal(frame(labelPlaintext, fs...), b) {
			t.Fatal("re-encoding differs")
		}
	})
}
