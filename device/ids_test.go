package device_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/wsca/wsca/device"
)

// RFC 6979 §A.2.5 P-256 public key.
const (
	rfc6979X = "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
	rfc6979Y = "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKIDOf(t *testing.T) {
	uncompressed := append([]byte{4}, append(mustHex(t, rfc6979X), mustHex(t, rfc6979Y)...)...)
	pub, err := device.PublicKeyFromBytes(uncompressed)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := device.KIDOf(pub)
	if err != nil {
		t.Fatal(err)
	}
	// Y is odd, so the compressed point starts with 03.
	sum := sha256.Sum256(append([]byte{3}, mustHex(t, rfc6979X)...))
	if want := hex.EncodeToString(sum[:16]); string(kid) != want {
		t.Fatalf("kid %s, want %s", kid, want)
	}
	if _, err := device.ParseKID(string(kid)); err != nil {
		t.Fatalf("ParseKID(KIDOf()) = %v", err)
	}
	if !bytes.Equal(kid.Bytes(), sum[:16]) {
		t.Fatal("KID.Bytes does not match")
	}
}

func TestParseKID(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"00112233445566778899aabbccddeeff", true},
		{"00112233445566778899AABBCCDDEEFF", false}, // uppercase is another kid
		{"00112233445566778899aabbccddeef", false},
		{"00112233445566778899aabbccddeeff0", false},
		{"", false},
		{"00112233445566778899aabbccddeefg", false},
		{"../../../../../../../etc/passwd0", false},
	} {
		_, err := device.ParseKID(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseKID(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && !errors.Is(err, device.ErrInvalidKID) {
			t.Errorf("ParseKID(%q) error %v is not ErrInvalidKID", tc.in, err)
		}
	}
}

func TestParseOwner(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"unit-1", true},
		{"urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", true},
		{"a.b_c", true},
		{strings.Repeat("a", device.MaxOwnerLen), true},
		{strings.Repeat("a", device.MaxOwnerLen+1), false},
		{"", false},
		{"unit 1", false},
		{"unit/1", false},
		{"ünit", false},
		{"unit\x00", false},
	} {
		_, err := device.ParseOwner(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseOwner(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

// TestParsePoint: the device's point validation is ecp256's (tested
// there) and its errors are the device's.
func TestParsePoint(t *testing.T) {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p, err := device.ParsePoint(priv.PublicKey().Bytes())
	if err != nil || !p.Equal(priv.PublicKey()) {
		t.Fatalf("ParsePoint(valid) = %v", err)
	}
	if _, err := device.ParsePoint([]byte{0}); !errors.Is(err, device.ErrInvalidPoint) {
		t.Fatalf("ParsePoint(identity) = %v, want ErrInvalidPoint", err)
	}
	if _, err := device.PublicKeyFromBytes(nil); !errors.Is(err, device.ErrInvalidPoint) {
		t.Fatalf("PublicKeyFromBytes(nil) = %v, want ErrInvalidPoint", err)
	}
}

func FuzzParseKID(f *testing.F) {
	f.Add("00112233445566778899aabbccddeeff")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := device.ParseKID(s)
		if err != nil {
			return
		}
		if len(k.Bytes()) != device.KIDSize || hex.EncodeToString(k.Bytes()) != s {
			t.Fatalf("kid %q does not round-trip", s)
		}
	})
}

func FuzzParseOwner(f *testing.F) {
	f.Add("unit-1")
	f.Add("urn:uuid:6e8bc430")
	f.Fuzz(func(t *testing.T, s string) {
		o, err := device.ParseOwner(s)
		if err != nil {
			if !errors.Is(err, device.ErrInvalidOwner) {
				t.Fatal(err)
			}
			return
		}
		if string(o) != s || len(s) > device.MaxOwnerLen || strings.ContainsAny(s, "/ \x00") {
			t.Fatalf("owner %q accepted", s)
		}
	})
}
