package secdsa

import (
	"errors"
	"strings"
	"testing"

	"filippo.io/nistec"
)

// craft builds an instruction as a holder of the phone (device key, and
// here also the PIN) could, with the challenge altered by f: f may change
// R, R', E, the wallet's Z (whose x keys the encryption) and H2. The
// result is re-signed and re-encrypted, so only the provider's challenge
// checks can refuse it.
type crafted struct {
	R, RP, E, Z *point
	H2          []byte
}

func craft(t *testing.T, un *unit, sn uint64, f func(c *crafted, d1, d2 *scalar)) *EncSignedInstruction {
	t.Helper()
	honest := instruct(t, un, "12345", sn)
	ex, err := ExecESInstruction(un.ic, honest, 0, un.prov.derive)
	if err != nil {
		t.Fatal(err)
	}
	un.prov.calls.Add(-1)
	_, gp, _, _ := un.ic.points()
	seed := digest([]byte("crafted seed"))
	d1, d2, _ := challengeScalars(seed)
	c := &crafted{}
	c.R, _ = ParsePoint(honest.R)
	c.RP, _ = ParsePoint(honest.RPrime)
	c.E, _ = lin(d1, generator(), d2, c.R)
	c.Z, _ = lin(d1, gp, d2, c.RP)
	_, c.H2 = challengeHashes(d1, d2)
	f(c, d1, d2)
	x := *honest
	x.R, x.RPrime, x.E, x.H2 = encodePoint(c.R), encodePoint(c.RP), encodePoint(c.E), c.H2
	cd := challengeDigest(x.AccountID, x.SN, x.E, x.R, x.RPrime, x.H2)
	if x.SigChal, err = un.dev.SignDigest(cd); err != nil {
		t.Fatal(err)
	}
	aead, _ := instructionAEAD(xOf(c.Z))
	x.Ciphertext = aead.Seal(nil, x.IV, frame(labelPlaintext, seed, ex.Instruction, ex.Additional, ex.GPP, ex.YPP, ex.Proof), cd)
	return &x
}

// TestChallengeChecks: each of the provider's checks of the trusted
// challenge refuses, with its own reason, a challenge the others might
// let through; each refusal counts (ErrAuthentication).
func TestChallengeChecks(t *testing.T) {
	un := softUnit(t)
	_, gp, _, _ := un.ic.points()
	cases := []struct {
		name, reason string
		f            func(c *crafted, d1, d2 *scalar)
	}{
		{"honest", "", func(*crafted, *scalar, *scalar) {}},
		{"H2 not SHA-256(H1)", "challenge hash", func(c *crafted, _, _ *scalar) { c.H2 = digest([]byte("other")) }},
		{"E not d1·G + d2·R", "challenge key", func(c *crafted, _, _ *scalar) {
			// E + G: the wallet knows aU·(E + G) = Z + G'.
			c.E = nistecAdd(c.E, generator())
			c.Z = nistecAdd(c.Z, gp)
		}},
		{"R' not aU·R (R with a known nonce)", "challenge response", func(c *crafted, d1, d2 *scalar) {
			k := labelScalarOf("known k")
			c.R, _ = mulG(k)
			c.E, _ = lin(d1, generator(), d2, c.R)
			c.Z, _ = lin(d1, gp, mulN(d2, k), gp) // = aU·E
			c.RP, _ = mulG(labelScalarOf("any R'"))
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := craft(t, un, uint64(10+i), c.f)
			_, err := ExecESInstruction(un.ic, x, 0, un.prov.derive)
			if c.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrAuthentication) || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("err = %v, want a PIN failure for %q", err, c.reason)
			}
		})
	}
}

func nistecAdd(p, q *point) *point {
	return nistec.NewP256Point().Add(p, q)
}
