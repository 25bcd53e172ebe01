package ctap2soft

import (
	"context"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// TestCanonicalInput: the device refuses a request whose CBOR is not
// canonical CTAP2 (here, map keys out of order), so the plugin's tests
// over it check the plugin's encoding.
func TestCanonicalInput(t *testing.T) {
	a := New(Options{})
	params := map[int]any{
		1: make([]byte, 32),
		2: map[string]any{"id": "a.example"},
		3: map[string]any{"id": []byte{1}},
		4: []map[string]any{{"alg": -7, "type": "public-key"}},
	}
	good, err := a.enc.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Ctap2Send(context.Background(), append([]byte{0x01}, good...))
	if err != nil || resp[0] != StatusOK {
		t.Fatalf("canonical request: %x, %v", resp[:1], err)
	}
	// The same map, keys in descending order.
	em, err := cbor.EncOptions{Sort: cbor.SortNone}.EncMode()
	if err != nil {
		t.Fatal(err)
	}
	var bad []byte
	bad = append(bad, 0xa4)
	for _, k := range []int{4, 3, 2, 1} {
		kb, _ := em.Marshal(k)
		vb, _ := a.enc.Marshal(params[k])
		bad = append(append(bad, kb...), vb...)
	}
	resp, err = a.Ctap2Send(context.Background(), append([]byte{0x01}, bad...))
	if err != nil || resp[0] != StatusInvalidCBOR {
		t.Fatalf("non-canonical request: %x, %v", resp, err)
	}
}
