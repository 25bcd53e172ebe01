package r2ps

import (
	"errors"
	"testing"
)

// TestParseSECDSAOp: each op takes exactly its members; unknown ops and
// members, duplicates and a hash that is not 32 bytes are refused.
func TestParseSECDSAOp(t *testing.T) {
	h := `"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="`
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{"op":"p256_generate"}`, true},
		{`{"op":"p256_generate","kid":"k"}`, false},
		{`{"op":"sign_ecdsa","kid":"k","hash":` + h + `}`, true},
		{`{"op":"sign_ecdsa","kid":"k"}`, false},
		{`{"op":"sign_ecdsa","hash":` + h + `}`, false},
		{`{"op":"sign_ecdsa","kid":"k","hash":"AAAA"}`, false},
		{`{"op":"sign_ecdsa","kid":"k","hash":` + h + `,"peer":"AAAA"}`, false},
		{`{"op":"agree_ecdh","kid":"k","peer":"BAAA"}`, true},
		{`{"op":"agree_ecdh","kid":"k"}`, false},
		{`{"op":"delete_key","kid":"k"}`, true},
		{`{"op":"delete_key"}`, false},
		{`{"op":"pin_change","activation":"AAAA"}`, true},
		{`{"op":"pin_change"}`, false},
		{`{"op":"pin_change","activation":"AAAA","kid":"k"}`, false},
		{`{"op":"format_disk"}`, false},
		{`{"op":"p256_generate","extra":1}`, false},
		{`{"op":"p256_generate","op":"delete_key"}`, false},
		{`[]`, false},
		{``, false},
	} {
		_, err := ParseSECDSAOp([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.in, err)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: untyped error %v", tc.in, err)
		}
	}
	op := SECDSAOp{Op: SECDSAOpSign, KID: "k", Hash: make([]byte, 32)}
	b, err := op.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ParseSECDSAOp(b); err != nil || got.KID != "k" || len(got.Hash) != 32 {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
}

// FuzzParseSECDSAOp: the instruction decoder never panics, refuses with
// ErrMalformed or ErrTooLarge, and what it accepts re-encodes and decodes
// to the same op.
func FuzzParseSECDSAOp(f *testing.F) {
	f.Add([]byte(`{"op":"p256_generate"}`))
	f.Add([]byte(`{"op":"sign_ecdsa","kid":"k","hash":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`))
	f.Add([]byte(`{"op":"pin_change","activation":"AAAA"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		op, err := ParseSECDSAOp(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		b, err := op.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseSECDSAOp(b)
		if err != nil || again.Op != op.Op || again.KID != op.KID {
			t.Fatalf("accepted op does not round-trip: %v", err)
		}
	})
}
