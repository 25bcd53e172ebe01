package secdsa

import (
	"encoding/binary"
	"fmt"
)

// A structure is encoded as its label, one 0x00 byte, then each field as a
// 4-byte big-endian length followed by the field's bytes (docs/secdsa.md,
// "Framing"). Decoders accept exactly the fields a label defines, each of
// its exact length where the length is fixed, and nothing after the last.

// Labels (domain separation). Every hash input and every encoded structure
// starts with one of them.
const (
	labelInstruction = "wsca-secdsa-v1 instruction"      // SECDSA-signed message M
	labelChallenge   = "wsca-secdsa-v1 challenge"        // NCH-signed challenge digest c (also GCM AAD)
	labelScalar      = "wsca-secdsa-v1 challenge scalar" // HKDF info prefix for d_i
	labelH1          = "wsca-secdsa-v1 challenge H1"     // H1 = SHA-256(label‖0‖d1‖d2)
	labelKey         = "wsca-secdsa-v1 instruction key"  // HKDF info for the GCM key
	labelPlaintext   = "wsca-secdsa-v1 plaintext"
	labelEnvelope    = "wsca-secdsa-v1 encrypted signed instruction"
	labelDLEQBlind   = "wsca-secdsa-v1 dleq blinding"
	labelDLEQAct     = "wsca-secdsa-v1 dleq activation"
	labelActRequest  = "wsca-secdsa-v1 activation request"
	labelActResponse = "wsca-secdsa-v1 activation response"
	labelICert       = "wsca-secdsa-v1 internal certificate"
	labelTRecord     = "wsca-secdsa-v1 transaction record"
)

// maxField bounds every variable-length field (instruction, additional
// data, result, account id): 64 KiB.
const maxField = 1 << 16

// frame builds label‖0x00‖(len‖field)*.
func frame(label string, fields ...[]byte) []byte {
	n := len(label) + 1
	for _, f := range fields {
		n += 4 + len(f)
	}
	b := make([]byte, 0, n)
	b = append(b, label...)
	b = append(b, 0)
	for _, f := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// unframe splits b into the fields of label. sizes gives each field's exact
// length, or -1 for a variable field of at most maxField bytes.
func unframe(b []byte, label string, sizes ...int) ([][]byte, error) {
	if len(b) < len(label)+1 || string(b[:len(label)]) != label || b[len(label)] != 0 {
		return nil, fmt.Errorf("%w: not a %q", ErrMalformed, label)
	}
	b = b[len(label)+1:]
	out := make([][]byte, len(sizes))
	for i, want := range sizes {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: %s: field %d truncated", ErrMalformed, label, i)
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		if want >= 0 && n != uint32(want) || want < 0 && n > maxField || uint64(n) > uint64(len(b)) {
			return nil, fmt.Errorf("%w: %s: field %d length", ErrMalformed, label, i)
		}
		out[i] = b[:n:n]
		b = b[n:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %s: trailing data", ErrMalformed, label)
	}
	return out, nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func clone(b []byte) []byte { return append([]byte(nil), b...) }
