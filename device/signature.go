package device

import (
	"crypto/ecdsa"

	"github.com/wsca/wsca/ecp256"
)

// ErrInvalidSignature is returned by the signature decoders for input that
// is not a well-formed P-256 signature in the expected encoding.
var ErrInvalidSignature = ecp256.ErrInvalidSignature

// The signature helpers are those of package ecp256, which the wallet side
// shares; they are here so that device callers need one import.

// VerifyRaw reports whether sig is a valid raw r‖s (IEEE P1363) signature
// of digest under pub ([ecp256.VerifyRaw]).
func VerifyRaw(pub *ecdsa.PublicKey, digest, sig []byte) bool {
	return ecp256.VerifyRaw(pub, digest, sig)
}

// VerifyDER reports whether sig is a valid DER signature of digest under
// pub ([ecp256.VerifyDER]).
func VerifyDER(pub *ecdsa.PublicKey, digest, sig []byte) bool {
	return ecp256.VerifyDER(pub, digest, sig)
}

// RawToDER converts a raw r‖s signature to DER ([ecp256.RawToDER]).
func RawToDER(sig []byte) ([]byte, error) { return ecp256.RawToDER(sig) }

// DERToRaw converts a strict DER signature to raw r‖s ([ecp256.DERToRaw]).
func DERToRaw(der []byte) ([]byte, error) { return ecp256.DERToRaw(der) }
