package device

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"encoding/hex"

	"github.com/wsca/wsca/ecp256"
)

// KIDSize is the number of SHA-256 bytes a kid keeps.
const KIDSize = ecp256.KIDSize

// KID identifies a key: lowercase hex of the first 16 bytes of SHA-256 over
// the compressed SEC1 encoding of its public point (the go-r2ps-service
// convention, so kids agree across implementations). [ecp256.KID] computes
// it.
type KID string

// KIDOf computes the kid of a P-256 public key.
func KIDOf(pub *ecdsa.PublicKey) (KID, error) {
	k, err := ecp256.KID(pub)
	return KID(k), err
}

// ParseKID validates a kid received from outside: 32 lowercase hex digits.
func ParseKID(s string) (KID, error) {
	if len(s) != 2*KIDSize {
		return "", ErrInvalidKID
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", ErrInvalidKID
		}
	}
	return KID(s), nil
}

// Bytes returns the 16 raw bytes of the kid, the PKCS#11 CKA_ID of its
// objects (so `pkcs11-tool --id <kid>` finds them).
func (k KID) Bytes() []byte {
	b, err := hex.DecodeString(string(k))
	if err != nil || len(b) != KIDSize {
		panic("device: internal error: KID not validated")
	}
	return b
}

// MaxOwnerLen bounds an owner so that it fits a PKCS#11 label and a file name.
const MaxOwnerLen = 64

// Owner is a wallet unit identifier as the device records it (PKCS#11
// CKA_LABEL, soft keystore record): 1–64 characters from [A-Za-z0-9._:-].
type Owner string

// ParseOwner validates a wallet unit identifier.
func ParseOwner(s string) (Owner, error) {
	if len(s) == 0 || len(s) > MaxOwnerLen {
		return "", ErrInvalidOwner
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '_' || c == ':' || c == '-':
		default:
			return "", ErrInvalidOwner
		}
	}
	return Owner(s), nil
}

// ParsePoint validates a SEC1-encoded P-256 point (uncompressed or
// compressed) with [ecp256.ParsePoint], so an invalid-curve point never
// reaches a device. Errors wrap [ErrInvalidPoint].
func ParsePoint(b []byte) (*ecdh.PublicKey, error) { return ecp256.ParsePoint(b) }

// PublicKeyFromBytes parses a SEC1 P-256 point (as [ParsePoint]) into its
// ECDSA form.
func PublicKeyFromBytes(b []byte) (*ecdsa.PublicKey, error) { return ecp256.ParsePublicKey(b) }
