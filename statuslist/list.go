package statuslist

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
)

// Status is the status of a referenced token (draft §7.1).
type Status uint8

// The registered status types. wsca issues lists of 2 bits per entry so
// that a suspension can be expressed.
const (
	Valid     Status = 0x00
	Invalid   Status = 0x01
	Suspended Status = 0x02
)

// String returns the registered name, or the value in hex.
func (s Status) String() string {
	switch s {
	case Valid:
		return "VALID"
	case Invalid:
		return "INVALID"
	case Suspended:
		return "SUSPENDED"
	}
	return fmt.Sprintf("0x%02x", uint8(s))
}

// Errors of the list and its encoding. Callers test them with errors.Is.
var (
	// ErrBits means a bits value other than 1, 2, 4 or 8.
	ErrBits = errors.New("statuslist: bits must be 1, 2, 4 or 8")
	// ErrIndex means an index outside the list.
	ErrIndex = errors.New("statuslist: index out of range")
	// ErrValue means a status that does not fit in the list's bits.
	ErrValue = errors.New("statuslist: status does not fit in bits")
	// ErrEncoding means an lst that is not a valid ZLIB stream, has
	// trailing data or is empty.
	ErrEncoding = errors.New("statuslist: bad list encoding")
	// ErrTooLarge means the list decompresses to more than the caller
	// allows: a zip bomb, or a list longer than declared.
	ErrTooLarge = errors.New("statuslist: decompressed list too large")
)

// List is a status list: Len entries of Bits bits each, packed from the
// least significant bit of each byte (draft §4.1). The zero value is not
// usable; make one with [New] or [Decode]. A List is not safe for
// concurrent mutation.
type List struct {
	bits int
	n    int
	data []byte
}

func validBits(bits int) bool {
	return bits == 1 || bits == 2 || bits == 4 || bits == 8
}

// byteLen is the size of the packed array of n entries.
func byteLen(bits, n int) int { return (n*bits + 7) / 8 }

// New returns a list of n entries of the given bits, all [Valid].
func New(bits, n int) (*List, error) {
	if !validBits(bits) {
		return nil, fmt.Errorf("%w: %d", ErrBits, bits)
	}
	if n < 1 {
		return nil, fmt.Errorf("%w: length %d", ErrIndex, n)
	}
	return &List{bits: bits, n: n, data: make([]byte, byteLen(bits, n))}, nil
}

// FromBytes returns a list over a copy of the packed array b: len(b)*8/bits
// entries.
func FromBytes(bits int, b []byte) (*List, error) {
	if !validBits(bits) {
		return nil, fmt.Errorf("%w: %d", ErrBits, bits)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty list", ErrEncoding)
	}
	return &List{bits: bits, n: len(b) * 8 / bits, data: bytes.Clone(b)}, nil
}

// Bits returns the number of bits per entry.
func (l *List) Bits() int { return l.bits }

// Len returns the number of entries.
func (l *List) Len() int { return l.n }

// Bytes returns a copy of the packed array.
func (l *List) Bytes() []byte { return bytes.Clone(l.data) }

func (l *List) locate(i int) (byteIdx int, shift uint, mask byte, err error) {
	if i < 0 || i >= l.n {
		return 0, 0, 0, fmt.Errorf("%w: %d not in [0,%d)", ErrIndex, i, l.n)
	}
	bit := i * l.bits
	return bit / 8, uint(bit % 8), byte(1<<l.bits - 1), nil
}

// Get returns the status at index i.
func (l *List) Get(i int) (Status, error) {
	b, shift, mask, err := l.locate(i)
	if err != nil {
		return 0, err
	}
	return Status(l.data[b] >> shift & mask), nil
}

// Set sets the status at index i.
func (l *List) Set(i int, s Status) error {
	b, shift, mask, err := l.locate(i)
	if err != nil {
		return err
	}
	if byte(s) > mask {
		return fmt.Errorf("%w: %d in %d bits", ErrValue, s, l.bits)
	}
	l.data[b] = l.data[b]&^(mask<<shift) | byte(s)<<shift
	return nil
}

// Encode returns the packed array compressed with DEFLATE in the ZLIB
// format (RFC 1950) at the best compression level, as lst carries it.
func (l *List) Encode() ([]byte, error) {
	return Compress(l.data)
}

// Compress compresses a packed array as [List.Encode] does.
func Compress(packed []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("statuslist: zlib: %w", err)
	}
	if _, err := w.Write(packed); err != nil {
		return nil, fmt.Errorf("statuslist: zlib: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("statuslist: zlib: %w", err)
	}
	return buf.Bytes(), nil
}

// Decode decompresses lst (ZLIB, checksum verified, no trailing data) into
// a list of the given bits. maxEntries bounds the result: a stream that
// inflates to more than the packed size of maxEntries entries is refused
// with [ErrTooLarge] after reading at most one byte more than that size,
// whatever its compression ratio.
func Decode(bits int, lst []byte, maxEntries int) (*List, error) {
	if !validBits(bits) {
		return nil, fmt.Errorf("%w: %d", ErrBits, bits)
	}
	if maxEntries < 1 {
		return nil, fmt.Errorf("%w: limit %d", ErrTooLarge, maxEntries)
	}
	limit := int64(byteLen(bits, maxEntries))
	src := bytes.NewReader(lst)
	zr, err := zlib.NewReader(src)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncoding, err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncoding, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	// ReadAll stopped at EOF below the limit, so the checksum was read and
	// verified; what remains of src follows the stream.
	if src.Len() != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the zlib stream", ErrEncoding, src.Len())
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty list", ErrEncoding)
	}
	n := len(data) * 8 / bits
	return &List{bits: bits, n: n, data: data}, nil
}
