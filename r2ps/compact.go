package r2ps

import "bytes"

// MaxHeaderSize bounds the encoded protected header of every JWE and JWS
// accepted, before it is decoded. The largest header of this profile is a
// 1FA header with kid, apu and apv at their 256-byte limit and an epk:
// about 1.5 KiB encoded, 3.2 KiB if a sender escaped every character of the
// kid as \uXXXX. A compat JWS header with an embedded jwk is under 1 KiB.
// 4 KiB admits all of them and keeps the header's JSON under 3 KiB, so
// routing a message costs microseconds whatever its size.
const MaxHeaderSize = 4 << 10

// Kind is the serialisation of a request body.
type Kind uint8

// The kinds [Classify] tells apart.
const (
	KindNone Kind = iota // neither: malformed
	KindJWE              // five parts: a compact JWE, the strict profile (§4.1)
	KindJWS              // three parts: a compact JWS, the compat profile (docs/protocol.md §8)
)

// String returns "JWE", "JWS" or "none".
func (k Kind) String() string {
	switch k {
	case KindJWE:
		return "JWE"
	case KindJWS:
		return "JWS"
	}
	return "none"
}

// Classify tells a compact JWE from a compact JWS by counting the dots,
// without allocating and without decoding anything, so that a server can
// route a body (and refuse a malformed one) for the cost of one scan. It
// refuses with [ErrTooLarge] a body over [MaxMessageSize] or whose first
// part, the protected header, is over [MaxHeaderSize], and with
// [ErrMalformed] any other number of parts. Which of the two it is says
// nothing of whether it parses: [ParseJWE] and [VerifyJWS] decide that.
func Classify(body []byte) (Kind, error) {
	if len(body) > MaxMessageSize {
		return KindNone, errorf(ErrTooLarge, "%d bytes", len(body))
	}
	var k Kind
	switch n := bytes.Count(body, []byte{'.'}); n {
	case 4:
		k = KindJWE
	case 2:
		k = KindJWS
	default:
		return KindNone, errorf(ErrMalformed, "%d parts, want 5 (JWE) or 3 (JWS)", n+1)
	}
	if i := bytes.IndexByte(body, '.'); i > MaxHeaderSize {
		return KindNone, errorf(ErrTooLarge, "protected header of %d bytes, limit %d", i, MaxHeaderSize)
	}
	return k, nil
}

// splitCompact splits a compact serialisation (RFC 7515 §7.1, RFC 7516
// §7.1) into exactly len(parts) parts, which alias compact. It counts the
// dots first, so a body of many parts costs one scan and no allocation, and
// it refuses a protected header (the first part) over MaxHeaderSize before
// anything decodes it.
func splitCompact(compact []byte, parts [][]byte, what string) error {
	if len(compact) > MaxMessageSize {
		return errorf(ErrTooLarge, "%d bytes", len(compact))
	}
	if n := bytes.Count(compact, []byte{'.'}); n != len(parts)-1 {
		return errorf(ErrMalformed, "compact %s has %d parts, want %d", what, n+1, len(parts))
	}
	last := len(parts) - 1
	for i := range last {
		j := bytes.IndexByte(compact, '.')
		parts[i], compact = compact[:j], compact[j+1:]
	}
	parts[last] = compact
	if len(parts[0]) > MaxHeaderSize {
		return errorf(ErrTooLarge, "%s protected header of %d bytes, limit %d", what, len(parts[0]), MaxHeaderSize)
	}
	return nil
}
