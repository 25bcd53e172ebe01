package ecp256

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"filippo.io/nistec"
)

// KIDSize is the number of SHA-256 bytes a kid keeps.
const KIDSize = 16

// KID returns the key id of a P-256 public key: lowercase hex of the first
// 16 bytes of SHA-256 over the compressed SEC1 encoding of its point (the
// go-r2ps-service convention, so kids agree across implementations).
func KID(pub *ecdsa.PublicKey) (string, error) {
	if pub == nil {
		return "", fmt.Errorf("%w: no key", ErrInvalidPoint)
	}
	raw, err := pub.Bytes()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidPoint, err)
	}
	p, err := nistec.NewP256Point().SetBytes(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidPoint, err)
	}
	sum := sha256.Sum256(p.BytesCompressed())
	return hex.EncodeToString(sum[:KIDSize]), nil
}
