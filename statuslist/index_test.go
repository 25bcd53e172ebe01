package statuslist_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/wsca/wsca/statuslist"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, statuslist.IndexKeySize) }

// TestPermutationBijection checks every image for small domains (powers of
// two, odd, prime, just above a power of two) and a sample for large ones.
func TestPermutationBijection(t *testing.T) {
	for _, n := range []uint64{2, 3, 4, 5, 7, 8, 17, 100, 255, 256, 257, 1000, 4097, 10000, 65537} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			p, err := statuslist.NewPermutation(testKey(1), n)
			if err != nil {
				t.Fatal(err)
			}
			seen := make([]bool, n)
			identity := true
			for c := range n {
				x, err := p.Index(c)
				if err != nil {
					t.Fatal(err)
				}
				if x >= n {
					t.Fatalf("Index(%d) = %d ≥ %d", c, x, n)
				}
				if seen[x] {
					t.Fatalf("Index(%d) = %d twice", c, x)
				}
				seen[x] = true
				identity = identity && x == c
			}
			if identity && n > 3 {
				t.Fatal("identity permutation")
			}
		})
	}
	// A large domain: the images of a sample are in range and distinct.
	const n = 1_000_003
	p, err := statuslist.NewPermutation(testKey(2), n)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[uint64]bool)
	for c := range uint64(20000) {
		x, err := p.Index(c * 50)
		if err != nil {
			t.Fatal(err)
		}
		if x >= n || seen[x] {
			t.Fatalf("Index(%d) = %d: out of range or repeated", c*50, x)
		}
		seen[x] = true
	}
}

func TestPermutationKeyed(t *testing.T) {
	const n = 10000
	a, _ := statuslist.NewPermutation(testKey(1), n)
	b, _ := statuslist.NewPermutation(testKey(2), n)
	same := 0
	for c := range uint64(1000) {
		x, _ := a.Index(c)
		y, _ := b.Index(c)
		if x == y {
			same++
		}
	}
	// Two independent permutations agree on about 1000/n points.
	if same > 10 {
		t.Fatalf("%d of 1000 images agree under different keys", same)
	}
	k1, err := statuslist.ListIndexKey(testKey(9), "list-a")
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := statuslist.ListIndexKey(testKey(9), "list-b")
	if bytes.Equal(k1, k2) || len(k1) != statuslist.IndexKeySize {
		t.Fatal("list keys are not distinct 32-byte keys")
	}
}

func TestPermutationErrors(t *testing.T) {
	if _, err := statuslist.NewPermutation(testKey(1)[:31], 100); !errors.Is(err, statuslist.ErrIndexKey) {
		t.Errorf("short key: %v", err)
	}
	if _, err := statuslist.NewPermutation(testKey(1), 1); !errors.Is(err, statuslist.ErrIndex) {
		t.Errorf("n = 1: %v", err)
	}
	if _, err := statuslist.ListIndexKey(nil, "x"); !errors.Is(err, statuslist.ErrIndexKey) {
		t.Errorf("no master key: %v", err)
	}
	p, _ := statuslist.NewPermutation(testKey(1), 100)
	if _, err := p.Index(100); !errors.Is(err, statuslist.ErrIndex) {
		t.Errorf("counter = n: %v", err)
	}
}

// arithmeticProgression is the OIDF conformance suite's condition
// VCIEnsureBatchStatusListIndicesAreUnpredictable, ported: indices are
// grouped by list uri; a group of at least three distinct indices fails
// when, sorted, they have one constant non-zero stride.
func arithmeticProgression(refs []statuslist.Reference) (uri string, bad bool) {
	groups := make(map[string][]uint64)
	var order []string
	for _, r := range refs {
		if _, ok := groups[r.URI]; !ok {
			order = append(order, r.URI)
		}
		groups[r.URI] = append(groups[r.URI], r.Index)
	}
	for _, u := range order {
		idx := slices.Compact(slices.Sorted(slices.Values(groups[u])))
		if len(idx) < 3 {
			continue
		}
		stride := idx[1] - idx[0]
		ap := stride != 0
		for i := 2; ap && i < len(idx); i++ {
			ap = idx[i]-idx[i-1] == stride
		}
		if ap {
			return u, true
		}
	}
	return "", false
}

// TestConditionDetectsSequential shows the ported condition fails what a
// plain counter allocates, so that TestBatchIndicesUnpredictable means
// something.
func TestConditionDetectsSequential(t *testing.T) {
	const uri = "https://wsca.example/statuslists/a"
	var refs []statuslist.Reference
	for c := range uint64(5) {
		refs = append(refs, statuslist.Reference{Index: 100 + 3*c, URI: uri})
	}
	if _, bad := arithmeticProgression(refs); !bad {
		t.Fatal("a stride-3 batch passed")
	}
	if _, bad := arithmeticProgression(refs[:2]); bad {
		t.Fatal("two indices were judged")
	}
}

// TestBatchIndicesUnpredictable runs the ported OIDF condition on batches
// of consecutive counters, as a wallet unit's keys get them, for several
// keys, list sizes and batch sizes.
func TestBatchIndicesUnpredictable(t *testing.T) {
	for _, n := range []uint64{10000, 65536, 1_000_000} {
		for k := byte(1); k <= 8; k++ {
			p, err := statuslist.NewPermutation(testKey(k), n)
			if err != nil {
				t.Fatal(err)
			}
			uri := fmt.Sprintf("https://wsca.example/statuslists/%d-%d", n, k)
			for start := uint64(0); start < 200; start += 10 {
				for _, size := range []uint64{3, 5, 10, 50} {
					var refs []statuslist.Reference
					for c := start; c < start+size; c++ {
						x, err := p.Index(c)
						if err != nil {
							t.Fatal(err)
						}
						refs = append(refs, statuslist.Reference{Index: x, URI: uri})
					}
					if _, bad := arithmeticProgression(refs); bad {
						t.Fatalf("n %d key %d: counters [%d,%d) give an arithmetic progression", n, k, start, start+size)
					}
				}
			}
		}
	}
}
