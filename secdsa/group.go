package secdsa

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"filippo.io/bigmod"
	"filippo.io/nistec"
)

// Scalar arithmetic modulo the group order n of P-256 and point arithmetic
// on P-256, both constant time: scalars use filippo.io/bigmod, points
// filippo.io/nistec (docs/secdsa.md, "Side channels"). Everything that
// touches a scalar goes through this file. The only branches on scalar
// values are the range checks of received scalars and the refusal of a zero
// result (a public event of negligible probability for secret scalars).

const (
	// PointSize is the length of an encoded point: SEC 1 uncompressed.
	PointSize = 65
	// ScalarSize is the length of an encoded scalar: 32 bytes, big-endian.
	ScalarSize = 32
)

// scalar is an integer modulo n, always of n's announced size (bigmod
// operations leak sizes, never values). A scalar is mutated only where it
// is created: the helpers below return fresh values.
type scalar = bigmod.Nat

const (
	orderHex = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"
	// orderMinusTwoHex is n−2, the Fermat exponent of the inverse (public).
	orderMinusTwoHex = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc63254f"
	// orderMinusOneHex is n−1, the modulus of reduceNonZero.
	orderMinusOneHex = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632550"
	// twoTo256ModOrderMinusOneHex is 2^256 mod (n−1) = 2^256 − (n−1).
	twoTo256ModOrderMinusOneHex = "00000000ffffffff00000000000000004319055258e8617b0c46353d039cdab0"
)

// The moduli are immutable once built; bigmod only reads them.
var (
	order         = mustModulus(orderHex)
	orderMinusOne = mustModulus(orderMinusOneHex)
	orderMinusTwo = mustUnhex(orderMinusTwoHex)
	twoTo256      = mustUnhex(twoTo256ModOrderMinusOneHex)
)

func mustUnhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic("secdsa: bad constant")
	}
	return b
}

func mustModulus(s string) *bigmod.Modulus {
	m, err := bigmod.NewModulus(mustUnhex(s))
	if err != nil {
		panic("secdsa: bad constant")
	}
	return m
}

// zeroScalar returns 0 with n's size.
func zeroScalar() *scalar { return bigmod.NewNat().ExpandFor(order) }

// copyScalar returns a fresh copy of k (0 + k, constant time).
func copyScalar(k *scalar) *scalar { return zeroScalar().Add(k, order) }

// wipe overwrites k with zero; k is not usable afterwards.
func wipe(k *scalar) {
	if k != nil {
		k.SetUint(0)
	}
}

// scalarBytes encodes k (0 ≤ k < n) as 32 bytes big-endian.
func scalarBytes(k *scalar) []byte { return k.Bytes(order) }

// parseScalar decodes a 32-byte scalar in [1, n-1]. Whether b is in range
// is the only thing its timing tells.
func parseScalar(b []byte) (*scalar, error) {
	if len(b) != ScalarSize {
		return nil, fmt.Errorf("%w: scalar length", ErrMalformed)
	}
	k, err := bigmod.NewNat().SetBytes(b, order)
	if err != nil || k.IsZero() == 1 {
		return nil, fmt.Errorf("%w: scalar out of range", ErrMalformed)
	}
	return k, nil
}

// reduceNonZero maps a uniform byte string of at most 64 bytes (48 in
// use: bias below 2^-128) to [1, n-1] as 1 + (OS2IP(b) mod (n-1)), in
// constant time for a given length of b: b = hi·2^256 + lo with hi, lo
// below 2^256 < 2(n−1), each reduced by one conditional subtraction, and
// b mod (n−1) = hi·(2^256 mod (n−1)) + lo.
func reduceNonZero(b []byte) *scalar {
	if len(b) > 2*ScalarSize {
		panic("secdsa: reduceNonZero input longer than 64 bytes")
	}
	var wide [2 * ScalarSize]byte
	copy(wide[len(wide)-len(b):], b)
	defer clear(wide[:])
	m := orderMinusOne
	hi, err1 := bigmod.NewNat().SetOverflowingBytes(wide[:ScalarSize], m)
	lo, err2 := bigmod.NewNat().SetOverflowingBytes(wide[ScalarSize:], m)
	c, err3 := bigmod.NewNat().SetBytes(twoTo256, m)
	if err1 != nil || err2 != nil || err3 != nil {
		panic("secdsa: reduceNonZero: bad arithmetic") // n−1 has 256 bits: cannot happen
	}
	k := hi.Mul(c, m).Add(lo, m) // in [0, n−2]; n and n−1 have the same size
	wipe(lo)
	return k.Add(bigmod.NewNat().SetUint(1).ExpandFor(order), order)
}

// randomScalar draws a scalar in [1, n-1] from rand.
func randomScalar(rand io.Reader) (*scalar, error) {
	var b [48]byte
	defer clear(b[:])
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return nil, fmt.Errorf("secdsa: randomness: %w", err)
	}
	return reduceNonZero(b[:]), nil
}

// mulN returns a·b mod n.
func mulN(a, b *scalar) *scalar { return copyScalar(a).Mul(b, order) }

// addN returns a+b mod n.
func addN(a, b *scalar) *scalar { return copyScalar(a).Add(b, order) }

// negN returns −a mod n.
func negN(a *scalar) *scalar { return zeroScalar().Sub(a, order) }

// invN returns k⁻¹ = k^(n−2) mod n (Fermat; constant time, the exponent
// is public); k must be non-zero mod n (0 gives 0).
func invN(k *scalar) *scalar { return bigmod.NewNat().Exp(k, orderMinusTwo, order) }

// equalScalar compares in constant time.
func equalScalar(a, b *scalar) bool { return a.Equal(b) == 1 }

// isZero tells whether k is 0 (constant time; the caller's branch is not).
func isZero(k *scalar) bool { return k.IsZero() == 1 }

// hashToScalar is int(SHA-256(msg)) mod n, ECDSA's message representative
// (the digest is 256 bits, as wide as n, so no truncation applies; it is
// below 2^256 < 2n, so one conditional subtraction reduces it).
func hashToScalar(digest []byte) *scalar {
	k, err := bigmod.NewNat().SetOverflowingBytes(digest, order)
	if err != nil {
		panic("secdsa: hashToScalar: not 32 bytes")
	}
	return k
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
func mul(p *point, k *scalar) (*point, error) {
	kb := scalarBytes(k)
	defer clear(kb)
	q, err := nistec.NewP256Point().ScalarMult(p, kb)
	if err != nil {
		return nil, fmt.Errorf("secdsa: scalar multiplication: %w", err)
	}
	if q.IsInfinity() == 1 {
		return nil, fmt.Errorf("%w: identity", ErrInvalidPoint)
	}
	return q, nil
}

// mulG returns k·G.
func mulG(k *scalar) (*point, error) {
	kb := scalarBytes(k)
	defer clear(kb)
	q, err := nistec.NewP256Point().ScalarBaseMult(kb)
	if err != nil {
		return nil, fmt.Errorf("secdsa: scalar multiplication: %w", err)
	}
	if q.IsInfinity() == 1 {
		return nil, fmt.Errorf("%w: identity", ErrInvalidPoint)
	}
	return q, nil
}

// lin returns a·P + b·Q, refusing the identity.
func lin(a *scalar, p *point, b *scalar, q *point) (*point, error) {
	ab, bb := scalarBytes(a), scalarBytes(b)
	defer clear(ab)
	defer clear(bb)
	ap, err := nistec.NewP256Point().ScalarMult(p, ab)
	if err != nil {
		return nil, fmt.Errorf("secdsa: scalar multiplication: %w", err)
	}
	bq, err := nistec.NewP256Point().ScalarMult(q, bb)
	if err != nil {
		return nil, fmt.Errorf("secdsa: scalar multiplication: %w", err)
	}
	s := nistec.NewP256Point().Add(ap, bq)
	if s.IsInfinity() == 1 {
		return nil, fmt.Errorf("%w: identity", ErrInvalidPoint)
	}
	return s, nil
}

// linG returns a·G + b·Q, refusing the identity: a·G from the generator's
// precomputed table (ScalarBaseMult), a fraction of a ScalarMult's cost.
func linG(a *scalar, b *scalar, q *point) (*point, error) {
	ab, bb := scalarBytes(a), scalarBytes(b)
	defer clear(ab)
	defer clear(bb)
	ag, err := nistec.NewP256Point().ScalarBaseMult(ab)
	if err != nil {
		return nil, fmt.Errorf("secdsa: scalar multiplication: %w", err)
	}
	bq, err := nistec.NewP256Point().ScalarMult(q, bb)
	if err != nil {
		return nil, fmt.Errorf("secdsa: scalar multiplication: %w", err)
	}
	s := nistec.NewP256Point().Add(ag, bq)
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
func rOf(p *point) *scalar { return hashToScalar(xOf(p)) }

// sub returns P − Q, refusing the identity.
func sub(p, q *point) (*point, error) {
	s := nistec.NewP256Point().Add(p, nistec.NewP256Point().Negate(q))
	if s.IsInfinity() == 1 {
		return nil, fmt.Errorf("%w: identity", ErrInvalidPoint)
	}
	return s, nil
}
