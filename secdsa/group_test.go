package secdsa

import (
	"bytes"
	"errors"
	"go/parser"
	"go/token"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"filippo.io/nistec"
)

// The constant-time scalar arithmetic (bigmod) against math/big, which is
// the reference here and nowhere else.

var bigOrder, _ = new(big.Int).SetString(orderHex, 16)

func bigOf(k *scalar) *big.Int { return new(big.Int).SetBytes(scalarBytes(k)) }

func bigBytes(v *big.Int) []byte { return v.FillBytes(make([]byte, ScalarSize)) }

// bigReduceNonZero is 1 + (OS2IP(b) mod (n−1)) in math/big.
func bigReduceNonZero(b []byte) *big.Int {
	m := new(big.Int).Sub(bigOrder, big.NewInt(1))
	k := new(big.Int).Mod(new(big.Int).SetBytes(b), m)
	return k.Add(k, big.NewInt(1))
}

func repeat(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

func TestGroupConstants(t *testing.T) {
	m := new(big.Int).Sub(bigOrder, big.NewInt(1))
	two256 := new(big.Int).Lsh(big.NewInt(1), 256)
	for _, c := range []struct {
		name string
		got  []byte
		want *big.Int
	}{
		{"n", order.Nat().Bytes(order), bigOrder},
		{"n-1", orderMinusOne.Nat().Bytes(orderMinusOne), m},
		{"n-2", orderMinusTwo, new(big.Int).Sub(bigOrder, big.NewInt(2))},
		{"2^256 mod (n-1)", twoTo256, new(big.Int).Mod(two256, m)},
	} {
		if !bytes.Equal(c.got, bigBytes(c.want)) {
			t.Errorf("%s = %x, want %x", c.name, c.got, bigBytes(c.want))
		}
	}
}

func TestReduceNonZero(t *testing.T) {
	m := new(big.Int).Sub(bigOrder, big.NewInt(1))
	mult := func(k int64, plus int64, size int) []byte { // k·(n−1) + plus, size bytes
		v := new(big.Int).Mul(m, big.NewInt(k))
		return v.Add(v, big.NewInt(plus)).FillBytes(make([]byte, size))
	}
	cases := map[string][]byte{
		"empty":             nil,
		"32 zero":           repeat(0, 32),
		"32 ones":           repeat(0xff, 32),
		"n-2 (32)":          mult(1, -1, 32),
		"n-1 (32)":          mult(1, 0, 32),
		"n (32)":            mult(1, 1, 32),
		"40 ones":           repeat(0xff, 40),
		"48 zero":           repeat(0, 48),
		"48 ones":           repeat(0xff, 48),
		"48 multiple":       mult(1<<40, 0, 48),
		"48 multiple - 1":   mult(1<<40, -1, 48),
		"64 ones":           repeat(0xff, 64),
		"64 high half only": append(repeat(0xff, 32), repeat(0, 32)...),
		"hash":              digest([]byte("reduce")),
		"48 hash":           append(digest([]byte("a")), digest([]byte("b"))[:16]...),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			got, want := bigOf(reduceNonZero(b)), bigReduceNonZero(b)
			if got.Cmp(want) != 0 {
				t.Fatalf("reduceNonZero(%x) = %x, want %x", b, got, want)
			}
		})
	}
}

func TestReduceNonZeroTooLong(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("65 bytes accepted")
		}
	}()
	reduceNonZero(make([]byte, 65))
}

func TestParseScalar(t *testing.T) {
	one := new(big.Int).SetInt64(1)
	cases := []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"1", bigBytes(one), true},
		{"n-1", bigBytes(new(big.Int).Sub(bigOrder, one)), true},
		{"0", make([]byte, 32), false},
		{"n", bigBytes(bigOrder), false},
		{"n+1", bigBytes(new(big.Int).Add(bigOrder, one)), false},
		{"2^256-1", repeat(0xff, 32), false},
		{"31 bytes", repeat(1, 31), false},
		{"33 bytes", append([]byte{0}, bigBytes(one)...), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := parseScalar(c.b)
			if c.ok != (err == nil) {
				t.Fatalf("err = %v, want ok = %v", err, c.ok)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if c.ok && !bytes.Equal(scalarBytes(k), c.b) {
				t.Fatalf("round trip %x", scalarBytes(k))
			}
		})
	}
}

// TestScalarOps checks every operation on operands that include the edges
// (1, n−1, digests at or above n) against math/big, and that no operation
// changes its operands.
func TestScalarOps(t *testing.T) {
	nMinus1 := new(big.Int).Sub(bigOrder, big.NewInt(1))
	inputs := [][]byte{bigBytes(big.NewInt(1)), bigBytes(big.NewInt(2)), bigBytes(nMinus1),
		digest([]byte("x")), digest([]byte("y")), bigBytes(new(big.Int).Rsh(bigOrder, 1))}
	for i, ab := range inputs {
		a := scalarOf(t, ab)
		ba := new(big.Int).SetBytes(ab)
		mod := func(v *big.Int) *big.Int { return v.Mod(v, bigOrder) }
		check := func(op string, got *scalar, want *big.Int) {
			t.Helper()
			if bigOf(got).Cmp(want) != 0 {
				t.Errorf("input %d: %s = %x, want %x", i, op, bigOf(got), want)
			}
		}
		check("inv", invN(a), new(big.Int).ModInverse(ba, bigOrder))
		check("neg", negN(a), mod(new(big.Int).Neg(ba)))
		check("copy", copyScalar(a), ba)
		for _, bb := range inputs {
			b := scalarOf(t, bb)
			bbig := new(big.Int).SetBytes(bb)
			check("mul", mulN(a, b), mod(new(big.Int).Mul(ba, bbig)))
			check("add", addN(a, b), mod(new(big.Int).Add(ba, bbig)))
			if equalScalar(a, b) != (ba.Cmp(bbig) == 0) {
				t.Errorf("input %d: equal wrong", i)
			}
		}
		if !bytes.Equal(scalarBytes(a), ab) {
			t.Fatalf("input %d changed by an operation", i)
		}
	}
	for _, d := range [][]byte{repeat(0xff, 32), bigBytes(bigOrder), digest([]byte("z"))} {
		want := new(big.Int).Mod(new(big.Int).SetBytes(d), bigOrder)
		if got := bigOf(hashToScalar(d)); got.Cmp(want) != 0 {
			t.Errorf("hashToScalar(%x) = %x, want %x", d, got, want)
		}
	}
	if !isZero(zeroScalar()) || isZero(scalarOf(t, inputs[0])) {
		t.Error("isZero")
	}
}

func FuzzReduceNonZero(f *testing.F) {
	f.Add(repeat(0xff, 48))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 2*ScalarSize {
			b = b[:2*ScalarSize]
		}
		if got, want := bigOf(reduceNonZero(b)), bigReduceNonZero(b); got.Cmp(want) != 0 {
			t.Fatalf("reduceNonZero(%x) = %x, want %x", b, got, want)
		}
	})
}

func FuzzParseScalar(f *testing.F) {
	f.Add(bigBytes(bigOrder))
	f.Add(repeat(1, 32))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := parseScalar(b)
		v := new(big.Int).SetBytes(b)
		if ok := len(b) == ScalarSize && v.Sign() > 0 && v.Cmp(bigOrder) < 0; ok != (err == nil) {
			t.Fatalf("parseScalar(%x): err = %v", b, err)
		}
		if err == nil && !bytes.Equal(scalarBytes(k), b) {
			t.Fatal("re-encoding differs")
		}
	})
}

// TestNoVariableTimeArithmetic: no non-test file of the package imports
// math/big (variable time); scalars go through bigmod in group.go.
func TestNoVariableTimeArithmetic(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "math/big" {
				t.Errorf("%s imports math/big", name)
			}
		}
	}
}

// The inversion is the costliest scalar operation: Fermat (constant time)
// against math/big's ModInverse (variable time), for docs/benchmarks.md.
func BenchmarkInvN(b *testing.B) {
	k := hashToScalar(digest([]byte("bench")))
	for b.Loop() {
		invN(k)
	}
}

func BenchmarkInvNMathBig(b *testing.B) {
	k := new(big.Int).SetBytes(digest([]byte("bench")))
	for b.Loop() {
		new(big.Int).ModInverse(k, bigOrder)
	}
}

func BenchmarkReduceNonZero(b *testing.B) {
	in := repeat(0xa5, 48)
	for b.Loop() {
		reduceNonZero(in)
	}
}

// TestLinG: a·G + b·Q from the generator's table equals lin's two full
// multiplications, for edge and random scalars.
func TestLinG(t *testing.T) {
	q, err := mulG(reduceNonZero([]byte("a point")))
	if err != nil {
		t.Fatal(err)
	}
	one := reduceNonZero(nil)                            // 1
	nMinusOne := negN(one)                               // n−1
	rnd := reduceNonZero(bytes.Repeat([]byte{0xa5}, 48)) // a wide value
	for i, c := range [][2]*scalar{{one, one}, {nMinusOne, one}, {one, nMinusOne}, {rnd, nMinusOne}, {rnd, rnd}} {
		want, err1 := lin(c[0], generator(), c[1], q)
		got, err2 := linG(c[0], c[1], q)
		if err1 != nil || err2 != nil || !equal(got, want) {
			t.Fatalf("case %d: linG %v, lin %v, equal %v", i, err2, err1, err1 == nil && err2 == nil && equal(got, want))
		}
	}
	// The identity is refused, as by lin: 1·G + 1·(−G).
	if _, err := linG(one, one, nistec.NewP256Point().Negate(generator())); !errors.Is(err, ErrInvalidPoint) {
		t.Fatalf("identity: %v", err)
	}
}
