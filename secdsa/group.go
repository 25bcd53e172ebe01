package secdsa

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/big"

	"filippo.io/nistec"
)

// Scalar arithmetic modulo the group order n of P-256 and point arithmetic
// on P-256. Points use filippo.io/nistec (constant time). Scalars use
// math/big, which is NOT constant time: see docs/secdsa.md, "Side channels".
// Everything that touches a scalar goes through this file so that the
// arithmetic can be replaced in one place.

const (
	// PointSize is the length of an encoded point: SEC 1 uncompressed.
	PointSize = 65
	// ScalarSize is the length of an encoded scalar: 32 bytes, big-endian.
	ScalarSize = 32
)

var (
	order      = mustHex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")
	orderMinus = new(big.Int).Sub(order, big.NewInt(1))
)

func mustHex(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic("secdsa: bad constant")
	}
	return v
}

// scalarBytes encodes k (0 ≤ k < n) as 32 bytes big-endian.
func scalarBytes(k *big.Int) []byte {
	return k.FillBytes(make([]byte, ScalarSize))
}

// parseScalar decodes a 32-byte scalar in [1, n-1].
func parseScalar(b []byte) (*big.Int, error) {
	if len(b) != ScalarSize {
		return nil, fmt.Errorf("%w: scalar length", ErrMalformed)
	}
	k := new(big.Int).SetBytes(b)
	if k.Sign() == 0 || k.Cmp(order) >= 0 {
		return nil, fmt.Errorf("%w: scalar out of range", ErrMalformed)
	}
	return k, nil
}

// reduceNonZero maps a uniform byte string of at least 48 bytes to [1, n-1]
// as 1 + (OS2IP(b) mod (n-1)); the bias is below 2^-128.
func reduceNonZero(b []byte) *big.Int {
	k := new(big.Int).SetBytes(b)
	k.Mod(k, orderMinus)
	return k.Add(k, big.NewInt(1))
}

// randomScalar draws a scalar in [1, n-1] from rand.
func randomScalar(rand io.Reader) (*big.Int, error) {
	var b [48]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return nil, fmt.Errorf("secdsa: randomness: %w", err)
	}
	return reduceNonZero(b[:]), nil
}

func modN(k *big.Int) *big.Int { return k.Mod(k, order) }

func mulN(a, b *big.Int) *big.Int { return modN(new(big.Int).Mul(a, b)) }

func addN(a, b *big.Int) *big.Int { return modN(new(big.Int).Add(a, b)) }

func subN(a, b *big.Int) *big.Int { return modN(new(big.Int).Sub(a, b)) }

// invN returns k⁻¹ mod n; k must be non-zero mod n.
func invN(k *big.Int) *big.Int { return new(big.Int).ModInverse(k, order) }

// hashToScalar is int(SHA-256(msg)) mod n, ECDSA's message representative
// (the digest is 256 bits, as wide as n, so no truncation applies).
func hashToScalar(digest []byte) *big.Int {
	return modN(new(big.Int).SetBytes(digest))
}

func digest(parts ...[]byte) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// point is a validated P-256 point: on the curve and never the identity.
type point = nistec.P256Point

func generator() *point { return nistec.NewP256Point().SetGenerator() }

// mul returns k·P. It fails only if the result is the identity, which for a
// valid point and k in [1, n-1] cannot happen.
func mul(p *point, k *big.Int) (*point, error) {
	q, err := nistec.NewP256Point().ScalarMult(p, scalarBytes(modN(new(big.Int).Set(k))))
	if err != nil {
		return nil, fmt.Errorf("secdsa: scalar multiplication: %w", err)
	}
	if q.IsInfinity() == 1 {
		return nil, fmt.Errorf("%w: identity", ErrInvalidPoint)
	}
	return q, nil
}

// mulG returns k·G.
func mulG(k *big.Int) (*point, error) {
	q, err := nistec.NewP256Point().ScalarBaseMult(scalarBytes(modN(new(big.Int).Set(k))))
	if err != nil {
		return nil, fmt.Errorf("secdsa: scalar multiplication: %w", err)
	}
	if q.IsInfinity() == 1 {
		return nil, fmt.Errorf("%w: identity", ErrInvalidPoint)
	}
	return q, nil
}

// lin returns a·P + b·Q, refusing the identity.
func lin(a *big.Int, p *point, b *big.Int, q *point) (*point, error) {
	ap, err := nistec.NewP256Point().ScalarMult(p, scalarBytes(modN(new(big.Int).Set(a))))
	if err != nil {
		return nil, fmt.Errorf("secdsa: scalar multiplication: %w", err)
	}
	bq, err := nistec.NewP256Point().ScalarMult(q, scalarBytes(modN(new(big.Int).Set(b))))
	if err != nil {
		return nil, fmt.Errorf("secdsa: scalar multiplication: %w", err)
	}
	s := nistec.NewP256Point().Add(ap, bq)
	if s.IsInfinity() == 1 {
		return nil, fmt.Errorf("%w: identity", ErrInvalidPoint)
	}
	return s, nil
}

func equal(p, q *point) bool { return p.Equal(q) == 1 }

// xOf returns the 32-byte x-coordinate of a non-identity point.
func xOf(p *point) []byte {
	x, err := p.BytesX()
	if err != nil {
		panic("secdsa: x of the identity") // callers never hold the identity
	}
	return x
}

// encodePoint is the SEC 1 uncompressed encoding, 04‖X‖Y.
func encodePoint(p *point) []byte { return p.Bytes() }

// ParsePoint decodes a received point. Only the 65-byte SEC 1 uncompressed
// form is accepted, so that every structure has exactly one encoding; the
// point must be on the curve and not the identity.
func ParsePoint(b []byte) (*nistec.P256Point, error) {
	if len(b) != PointSize || b[0] != 4 {
		return nil, fmt.Errorf("%w: not a 65-byte SEC 1 uncompressed point", ErrInvalidPoint)
	}
	p, err := nistec.NewP256Point().SetBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%w: not on the curve", ErrInvalidPoint)
	}
	if p.IsInfinity() == 1 {
		return nil, fmt.Errorf("%w: identity", ErrInvalidPoint)
	}
	return p, nil
}

// liftX returns the two points with x-coordinate x (32 bytes), the one with
// even y first. It fails if x is not the x-coordinate of a curve point.
func liftX(x []byte) (*point, *point, error) {
	if len(x) != ScalarSize {
		return nil, nil, fmt.Errorf("%w: x length", ErrInvalidPoint)
	}
	p, err := nistec.NewP256Point().SetBytes(append([]byte{2}, x...))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: x not on the curve", ErrInvalidPoint)
	}
	return p, nistec.NewP256Point().Negate(p), nil
}

// rOf returns x(R) mod n, ECDSA's r for the nonce point R.
func rOf(p *point) *big.Int { return modN(new(big.Int).SetBytes(xOf(p))) }
