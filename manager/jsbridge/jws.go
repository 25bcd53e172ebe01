package jsbridge

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/wsca/wsca/manager"
)

// jwsInput returns the signing input of a compact ES256 JWS over the
// header and payload JSON objects as given, with alg set to ES256 (kid,
// jwk and every other member stay as the caller put them), and its
// SHA-256 digest.
func jwsInput(header, payload []byte) (input string, digest []byte, err error) {
	var h map[string]json.RawMessage
	if err := json.Unmarshal(header, &h); err != nil || h == nil {
		return "", nil, fmt.Errorf("%w: the header is not a JSON object", manager.ErrInvalidInput)
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(payload, &p); err != nil || p == nil {
		return "", nil, fmt.Errorf("%w: the payload is not a JSON object", manager.ErrInvalidInput)
	}
	h["alg"] = json.RawMessage(`"ES256"`)
	hb, err := json.Marshal(h)
	if err != nil {
		return "", nil, fmt.Errorf("%w: header: %v", manager.ErrInvalidInput, err)
	}
	var pb bytes.Buffer
	if err := json.Compact(&pb, payload); err != nil {
		return "", nil, fmt.Errorf("%w: payload: %v", manager.ErrInvalidInput, err)
	}
	enc := base64.RawURLEncoding
	input = enc.EncodeToString(hb) + "." + enc.EncodeToString(pb.Bytes())
	d := sha256.Sum256([]byte(input))
	return input, d[:], nil
}

// jwsCompact appends a raw r‖s signature to a signing input.
func jwsCompact(input string, sig []byte) (string, error) {
	if len(sig) != 64 {
		return "", fmt.Errorf("jsbridge: a raw P-256 signature is 64 bytes, got %d", len(sig))
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
