package secdsa

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
)

// ProofSize is the length of an encoded DLEQ proof: r (32 bytes, full
// width) ‖ s (32 bytes, in [1, n-1]).
const ProofSize = 2 * ScalarSize

// dleqChallenge is r = SHA-256(label‖0x00 ‖ enc(G_0)…enc(G_m) ‖
// enc(K_0)…enc(K_m) ‖ enc(D_0)…enc(D_m) ‖ N). An empty label omits the
// label and its 0x00 (the layout of reference §4.2, used by its test).
func dleqChallenge(label string, gens, ks, pubs []*point, n []byte) []byte {
	h := sha256.New()
	if label != "" {
		h.Write([]byte(label))
		h.Write([]byte{0})
	}
	for _, set := range [][]*point{gens, ks, pubs} {
		for _, p := range set {
			h.Write(encodePoint(p))
		}
	}
	h.Write(n)
	return h.Sum(nil)
}

// dleqProveNonce proves knowledge of d with pubs[i] = d·gens[i] for every i
// (Chaum–Pedersen made non-interactive by Fiat–Shamir), with nonce k:
// K_i = k·G_i, r = dleqChallenge(...), s = k + r·d mod n.
func dleqProveNonce(label string, gens, pubs []*point, d *scalar, n []byte, k *scalar) ([]byte, error) {
	ks := make([]*point, len(gens))
	for i, g := range gens {
		var err error
		if ks[i], err = mul(g, k); err != nil {
			return nil, err
		}
	}
	r := dleqChallenge(label, gens, ks, pubs, n)
	rd := mulN(hashToScalar(r), d)
	s := addN(k, rd)
	wipe(rd)
	if isZero(s) {
		return nil, fmt.Errorf("secdsa: dleq: zero response")
	}
	return append(r, scalarBytes(s)...), nil
}

func dleqProve(rand io.Reader, label string, gens, pubs []*point, d *scalar, n []byte) ([]byte, error) {
	k, err := randomScalar(rand)
	if err != nil {
		return nil, err
	}
	defer wipe(k)
	return dleqProveNonce(label, gens, pubs, d, n, k)
}

// dleqVerify checks a proof from dleqProve: r ≠ 0, s in [1, n-1],
// K_i = s·G_i − r·D_i never the identity, and r = dleqChallenge(...).
func dleqVerify(label string, gens, pubs []*point, n, proof []byte) error {
	if len(proof) != ProofSize {
		return fmt.Errorf("%w: length", ErrProof)
	}
	if bytes.Equal(proof[:ScalarSize], make([]byte, ScalarSize)) {
		return fmt.Errorf("%w: zero challenge", ErrProof)
	}
	s, err := parseScalar(proof[ScalarSize:])
	if err != nil {
		return fmt.Errorf("%w: response out of range", ErrProof)
	}
	negR := negN(hashToScalar(proof[:ScalarSize]))
	ks := make([]*point, len(gens))
	for i := range gens {
		if ks[i], err = lin(s, gens[i], negR, pubs[i]); err != nil {
			return fmt.Errorf("%w: commitment %d", ErrProof, i)
		}
	}
	if subtle.ConstantTimeCompare(dleqChallenge(label, gens, ks, pubs, n), proof[:ScalarSize]) != 1 {
		return fmt.Errorf("%w: challenge mismatch", ErrProof)
	}
	return nil
}
