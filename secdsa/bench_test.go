package secdsa

import "testing"

func BenchmarkVerifyTRecord(b *testing.B) {
	un, tr := record(b)
	for b.Loop() {
		if err := VerifyTRecord(un.ic, &un.prov.signer.PublicKey, tr); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGenESInstruction(b *testing.B) {
	un := softUnit(b)
	rnd := newDetReader("bench")
	sn := uint64(0)
	for b.Loop() {
		sn++
		if _, err := GenESInstruction(rnd, un.ic, un.binder, un.dev, []byte("12345"), sn, []byte("sign"), nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExecESInstruction uses the software DeriveFunc (crypto/ecdh).
func BenchmarkExecESInstruction(b *testing.B) {
	un := softUnit(b)
	x := instruct(b, un, "12345", 1)
	for b.Loop() {
		if _, err := ExecESInstruction(un.ic, x, 0, un.prov.derive); err != nil {
			b.Fatal(err)
		}
	}
}
