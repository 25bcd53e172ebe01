package statuslist

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// IndexKeySize is the size of a permutation key.
const IndexKeySize = 32

// feistelRounds is the number of Feistel rounds. Four rounds of a
// pseudorandom function give a strong pseudorandom permutation (Luby and
// Rackoff); ten, as NIST FF1 uses, leave a margin for small domains.
const feistelRounds = 10

// ErrIndexKey means a permutation key that is not [IndexKeySize] bytes.
var ErrIndexKey = errors.New("statuslist: index key must be 32 bytes")

// Permutation is a keyed, format-preserving permutation of [0,N): a
// balanced Feistel network over the smallest even number of bits that
// holds N-1, with HMAC-SHA256 as round function, restricted to [0,N) by
// cycle walking. A list allocates entries by a counter 0, 1, 2, … and
// publishes Index(counter): the indices are distinct and, without the
// key, look like a random sample of [0,N), so tokens issued together do
// not sit next to each other. It is safe for concurrent use.
type Permutation struct {
	key  [IndexKeySize]byte
	n    uint64
	half uint // bits per Feistel half
}

// NewPermutation returns the permutation of [0,n) under key. Give each
// list its own key ([ListIndexKey]).
func NewPermutation(key []byte, n uint64) (*Permutation, error) {
	if len(key) != IndexKeySize {
		return nil, fmt.Errorf("%w: got %d", ErrIndexKey, len(key))
	}
	if n < 2 {
		return nil, fmt.Errorf("%w: domain size %d < 2", ErrIndex, n)
	}
	if n > 1<<62 {
		return nil, fmt.Errorf("%w: domain size %d too large", ErrIndex, n)
	}
	w := uint(bits.Len64(n - 1))
	p := &Permutation{n: n, half: (w + 1) / 2}
	copy(p.key[:], key)
	return p, nil
}

// ListIndexKey derives the permutation key of one list from a master key,
// so that one secret serves every list and each list permutes differently.
func ListIndexKey(master []byte, listID string) ([]byte, error) {
	if len(master) != IndexKeySize {
		return nil, fmt.Errorf("%w: got %d", ErrIndexKey, len(master))
	}
	m := hmac.New(sha256.New, master)
	m.Write([]byte("wsca statuslist index key\x00"))
	m.Write([]byte(listID))
	return m.Sum(nil), nil
}

// N returns the size of the domain.
func (p *Permutation) N() uint64 { return p.n }

// Index returns the image of counter, which must be in [0,N).
func (p *Permutation) Index(counter uint64) (uint64, error) {
	if counter >= p.n {
		return 0, fmt.Errorf("%w: counter %d not in [0,%d)", ErrIndex, counter, p.n)
	}
	m := hmac.New(sha256.New, p.key[:])
	x := counter
	// The network permutes [0, 2^(2·half)) ⊇ [0,N) with 2^(2·half) < 4N, so
	// walking the cycle of x until it re-enters [0,N) takes fewer than four
	// steps on average and always ends: the cycle through counter contains
	// counter itself.
	for {
		x = p.encrypt(m, x)
		if x < p.n {
			return x, nil
		}
	}
}

func (p *Permutation) encrypt(m hashWriter, x uint64) uint64 {
	mask := uint64(1)<<p.half - 1
	l, r := x>>p.half&mask, x&mask
	var in [17]byte
	var sum [sha256.Size]byte
	for round := range feistelRounds {
		in[0] = byte(round)
		binary.BigEndian.PutUint64(in[1:9], p.n)
		binary.BigEndian.PutUint64(in[9:17], r)
		m.Reset()
		m.Write(in[:])
		f := binary.BigEndian.Uint64(m.Sum(sum[:0])[:8]) & mask
		l, r = r, l^f
	}
	return l<<p.half | r
}

// hashWriter is the part of hash.Hash the round function uses.
type hashWriter interface {
	Write([]byte) (int, error)
	Sum([]byte) []byte
	Reset()
}
