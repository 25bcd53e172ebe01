package pkcs11

import (
	"fmt"

	"github.com/wsca/wsca/device"
)

// A wrapped key's blob (device.Key.Wrapped), version 1 or 2:
//
//	offset  size  field
//	0       1     version: 1 a key for signing and ECDH, 2 a derive-only key
//	              (device.DeriveOnlyGenerator), unwrapped without CKA_SIGN
//	1       16    wrapping key id: the CKA_ID of the AES key that wrapped it
//	17      1     mechanism: 1 CKM_AES_KEY_WRAP_PAD (RFC 5649), 2 CKM_AES_KEY_WRAP (RFC 3394)
//	18      n     the private key as C_WrapKey returned it: the token's
//	              PKCS#8 encoding of the key, wrapped; 16 ≤ n ≤ 512, n a multiple of 8
//
// Nothing in it is secret and nothing in it is authenticated except the
// wrapped key itself (by the key wrap's integrity check): the header only
// says which key and mechanism to unwrap with, and an altered header
// fails the unwrap. The blob names no kid and no owner; the device checks
// that the unwrapped key is the kid's, the caller binds the blob to its
// owner. docs/wrapped-keys.md has the whole design.
const (
	blobVersion           = 1
	blobVersionDeriveOnly = 2
	blobHeaderSize        = 1 + wrapIDSize + 1
	// wrapIDSize is the length of a wrapping key's CKA_ID.
	wrapIDSize = 16
	// minWrapped and maxWrapped bound the wrapped part: a key wrap output
	// is at least two 64-bit blocks; a P-256 PKCS#8 key is under 200
	// bytes on every token we know (SoftHSM 2.6.1: 72, wrapped 80).
	minWrapped = 16
	maxWrapped = 512
	// MaxBlobSize is the longest blob this version accepts.
	MaxBlobSize = blobHeaderSize + maxWrapped
)

// WrapMech is a key wrap mechanism a wrapped-mode device can use, named as
// in the URI attribute x-wsca-wrap-mech.
type WrapMech string

const (
	// WrapAESKeyWrapPad is CKM_AES_KEY_WRAP_PAD (RFC 5649), the default.
	WrapAESKeyWrapPad WrapMech = "aes-key-wrap-pad"
	// WrapAESKeyWrap is CKM_AES_KEY_WRAP (RFC 3394); the wrapped encoding
	// must be a multiple of 8 bytes (SoftHSM's P-256 keys are).
	WrapAESKeyWrap WrapMech = "aes-key-wrap"
)

// DefaultWrapLabel is the wrapping key's CKA_LABEL unless x-wsca-wrap-label
// names another.
const DefaultWrapLabel = "wsca-wrap-1"

// DefaultCache is the size of the cache of unwrapped keys unless x-wsca-cache
// sets it.
const DefaultCache = 1024

// MaxCache bounds x-wsca-cache.
const MaxCache = 1 << 20

// mechCode is a mechanism's byte in the blob, and its PKCS#11 number.
var mechCodes = []struct {
	name WrapMech
	code byte
	ckm  uint
}{
	{WrapAESKeyWrapPad, 1, 0x0000210a}, // CKM_AES_KEY_WRAP_PAD
	{WrapAESKeyWrap, 2, 0x00002109},    // CKM_AES_KEY_WRAP
}

// ParseWrapMech validates a mechanism name.
func ParseWrapMech(s string) (WrapMech, error) {
	for _, m := range mechCodes {
		if string(m.name) == s {
			return m.name, nil
		}
	}
	return "", fmt.Errorf("%w: x-wsca-wrap-mech must be %s or %s", ErrURI, WrapAESKeyWrapPad, WrapAESKeyWrap)
}

func (m WrapMech) code() byte {
	for _, c := range mechCodes {
		if c.name == m {
			return c.code
		}
	}
	panic("pkcs11: internal error: unvalidated wrap mechanism")
}

func (m WrapMech) ckm() uint {
	for _, c := range mechCodes {
		if c.name == m {
			return c.ckm
		}
	}
	panic("pkcs11: internal error: unvalidated wrap mechanism")
}

// keyUsage is what a key may do: sign and derive (every key before
// derive-only keys), or derive only.
type keyUsage uint8

const (
	usageSignDerive keyUsage = iota
	usageDerive
)

// blob is a parsed blob; its slices alias the input.
type blob struct {
	wrapID  []byte
	mech    WrapMech
	usage   keyUsage
	wrapped []byte
}

// parseBlob checks a blob's structure. It says nothing of whether the
// blob unwraps, or to which key: only the token can.
func parseBlob(b []byte) (blob, error) {
	if len(b) < blobHeaderSize+minWrapped || len(b) > MaxBlobSize {
		return blob{}, fmt.Errorf("%w: %d bytes", device.ErrInvalidBlob, len(b))
	}
	out := blob{wrapID: b[1 : 1+wrapIDSize], wrapped: b[blobHeaderSize:]}
	switch b[0] {
	case blobVersion:
	case blobVersionDeriveOnly:
		out.usage = usageDerive
	default:
		return blob{}, fmt.Errorf("%w: version %d", device.ErrInvalidBlob, b[0])
	}
	for _, m := range mechCodes {
		if m.code == b[1+wrapIDSize] {
			out.mech = m.name
		}
	}
	if out.mech == "" {
		return blob{}, fmt.Errorf("%w: mechanism %d", device.ErrInvalidBlob, b[1+wrapIDSize])
	}
	if len(out.wrapped)%8 != 0 {
		return blob{}, fmt.Errorf("%w: wrapped key of %d bytes", device.ErrInvalidBlob, len(out.wrapped))
	}
	return out, nil
}

// appendBlob encodes a blob; its version says its usage, which a rewrap
// must keep.
func appendBlob(dst []byte, b blob) []byte {
	if b.usage == usageDerive {
		dst = append(dst, blobVersionDeriveOnly)
	} else {
		dst = append(dst, blobVersion)
	}
	dst = append(dst, b.wrapID...)
	dst = append(dst, b.mech.code())
	return append(dst, b.wrapped...)
}
