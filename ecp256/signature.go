package ecp256

import (
	"crypto/ecdsa"
	"errors"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// SignatureSize is the length of a raw r‖s (IEEE P1363) P-256 signature.
const SignatureSize = 64

// ErrInvalidSignature is returned by the signature converters for input
// that is not a well-formed P-256 signature in the expected encoding.
var ErrInvalidSignature = errors.New("ecp256: invalid signature encoding")

// VerifyRaw reports whether sig is a valid raw r‖s signature of digest
// under pub. Anything but exactly 64 bytes is invalid.
func VerifyRaw(pub *ecdsa.PublicKey, digest, sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	return ecdsa.Verify(pub, digest, r, s)
}

// VerifyDER reports whether sig is a valid DER (X9.62 Ecdsa-Sig-Value)
// signature of digest under pub. BER variants are rejected.
func VerifyDER(pub *ecdsa.PublicKey, digest, sig []byte) bool {
	return ecdsa.VerifyASN1(pub, digest, sig)
}

// RawToDER converts a raw r‖s signature to DER.
func RawToDER(sig []byte) ([]byte, error) {
	if len(sig) != SignatureSize {
		return nil, ErrInvalidSignature
	}
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	if r.Sign() == 0 || s.Sign() == 0 {
		return nil, ErrInvalidSignature
	}
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(r)
		b.AddASN1BigInt(s)
	})
	return b.Bytes()
}

// DERToRaw converts a strict DER signature to raw r‖s. It rejects trailing
// data, non-minimal integers, negative or zero values and values wider than
// 32 bytes.
func DERToRaw(der []byte) ([]byte, error) {
	var (
		r, s  big.Int
		inner cryptobyte.String
	)
	in := cryptobyte.String(der)
	if !in.ReadASN1(&inner, asn1.SEQUENCE) || !in.Empty() ||
		!inner.ReadASN1Integer(&r) || !inner.ReadASN1Integer(&s) || !inner.Empty() {
		return nil, ErrInvalidSignature
	}
	if r.Sign() <= 0 || s.Sign() <= 0 || r.BitLen() > 256 || s.BitLen() > 256 {
		return nil, ErrInvalidSignature
	}
	out := make([]byte, SignatureSize)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}
