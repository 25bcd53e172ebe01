package attest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"testing"
)

// BenchmarkKeyAttestationSign signs one key attestation with a software
// key (go-jose through cryptosigner.Opaque); BenchmarkECDSASign is the raw
// signature it contains. Their ratio is the cost of building the token
// (docs/attestations.md). The SoftHSM variant belongs with the device
// benchmarks.
func BenchmarkKeyAttestationSign(b *testing.B) {
	f := newFixture(b)
	in := f.kaInput()
	in.Keys = in.Keys[:1]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.issuer.KeyAttestation(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkECDSASign(b *testing.B) {
	key := newKey(b)
	h := sha256.Sum256([]byte("a key attestation's signing input"))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ecdsa.Sign(rand.Reader, key, h[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKeyAttestationVerify(b *testing.B) {
	f := newFixture(b)
	tok, err := f.issuer.KeyAttestation(f.kaInput())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.ver.VerifyKeyAttestation(tok, KeyAttestationOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
