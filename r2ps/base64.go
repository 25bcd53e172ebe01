package r2ps

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// Bytes is a binary member of a JWS payload. It marshals as standard base64
// with padding (RFC 4648 §4), as §4.2 requires, and unmarshals only that
// canonical form: no URL alphabet, no missing padding, no line breaks, no
// non-zero trailing bits. JSON null unmarshals to nil. Its underlying type is
// []byte, so values convert and assign both ways.
type Bytes []byte

// MarshalJSON encodes b as a standard, padded base64 string (null for nil).
func (b Bytes) MarshalJSON() ([]byte, error) {
	if b == nil {
		return []byte("null"), nil
	}
	out := make([]byte, 0, base64.StdEncoding.EncodedLen(len(b))+2)
	out = append(out, '"')
	out = base64.StdEncoding.AppendEncode(out, b)
	return append(out, '"'), nil
}

// UnmarshalJSON decodes a standard, padded base64 string.
func (b *Bytes) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*b = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return errors.New("binary member is not a string")
	}
	v, err := decodeStd(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// decodeStd decodes standard base64 with padding, strictly (§4.2).
func decodeStd(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("line break in base64")
	}
	v, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("not standard padded base64")
	}
	return v, nil
}

// b64url encodes JOSE members and compact parts: base64url without padding
// (RFC 7515 §2).
func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// decodeB64URL decodes a JOSE member or compact part, strictly.
func decodeB64URL(s []byte) ([]byte, error) {
	out := make([]byte, base64.RawURLEncoding.DecodedLen(len(s)))
	n, err := decodeB64URLInto(out, s)
	if err != nil {
		return nil, err
	}
	return out[:n], nil
}

// decodeB64URLInto decodes s into dst, which must hold
// base64.RawURLEncoding.DecodedLen(len(s)) bytes, strictly, and returns the
// number of bytes written. (encoding/base64 skips line breaks, so they are
// refused first.)
func decodeB64URLInto(dst, s []byte) (int, error) {
	if bytes.ContainsAny(s, "\r\n") {
		return 0, errors.New("line break in base64url")
	}
	n, err := base64.RawURLEncoding.Strict().Decode(dst, s)
	if err != nil {
		return 0, errors.New("not unpadded base64url")
	}
	return n, nil
}

// decodeLenient decodes the binary values of the compat profile
// (docs/protocol.md §8): standard or URL alphabet, padded or not. It still
// refuses a mix of the two alphabets, wrong padding, line breaks and
// non-canonical trailing bits, so each byte string has one encoding per
// flavour.
func decodeLenient(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("line break in base64")
	}
	std := strings.ContainsAny(s, "+/")
	url := strings.ContainsAny(s, "-_")
	if std && url {
		return nil, errors.New("base64 mixes the standard and URL alphabets")
	}
	enc := base64.StdEncoding
	if url {
		enc = base64.URLEncoding
	}
	if !strings.HasSuffix(s, "=") {
		enc = enc.WithPadding(base64.NoPadding)
	}
	v, err := enc.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("invalid base64")
	}
	return v, nil
}

// encodeCompat is the one encoding the compat profile emits: base64url with
// padding, as go-r2ps-service does (Go's base64.URLEncoding).
func encodeCompat(b []byte) string { return base64.URLEncoding.EncodeToString(b) }
