package ecp256_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/wsca/wsca/ecp256"
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

func TestKID(t *testing.T) {
	uncompressed := append([]byte{4}, append(mustHex(t, rfc6979X), mustHex(t, rfc6979Y)...)...)
	pub, err := ecp256.ParsePublicKey(uncompressed)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := ecp256.KID(pub)
	if err != nil {
		t.Fatal(err)
	}
	// Y is odd, so the compressed point starts with 03.
	sum := sha256.Sum256(append([]byte{3}, mustHex(t, rfc6979X)...))
	if want := hex.EncodeToString(sum[:ecp256.KIDSize]); kid != want {
		t.Fatalf("kid %s, want %s", kid, want)
	}
}

func TestKIDRejects(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, pub := range map[string]*ecdsa.PublicKey{
		"nil":   nil,
		"zero":  {},
		"P-384": &p384.PublicKey,
	} {
		t.Run(name, func(t *testing.T) {
			if kid, err := ecp256.KID(pub); !errors.Is(err, ecp256.ErrInvalidPoint) {
				t.Fatalf("KID = %q, %v; want ErrInvalidPoint", kid, err)
			}
		})
	}
}

func TestParsePoint(t *testing.T) {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	unc := priv.PublicKey().Bytes()
	sk, _ := ecdsa.ParseRawPrivateKey(elliptic.P256(), priv.Bytes())
	comp := elliptic.MarshalCompressed(elliptic.P256(), sk.X, sk.Y)
	offCurve := bytes.Clone(unc)
	offCurve[64] ^= 1
	wrongPrefix := bytes.Clone(unc)
	wrongPrefix[0] = 6 // hybrid encoding
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"uncompressed", unc, true},
		{"compressed", comp, true},
		{"empty", nil, false},
		{"identity", []byte{0}, false},
		{"off curve", offCurve, false},
		{"hybrid", wrongPrefix, false},
		{"truncated", unc[:64], false},
		{"trailing byte", append(bytes.Clone(unc), 0), false},
		{"compressed truncated", comp[:32], false},
		{"x only", unc[1:33], false},
		{"x not on curve", append([]byte{2}, bytes.Repeat([]byte{0xff}, 32)...), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ecp256.ParsePoint(tc.in)
			k, kerr := ecp256.ParsePublicKey(tc.in)
			if !tc.ok {
				if !errors.Is(err, ecp256.ErrInvalidPoint) || !errors.Is(kerr, ecp256.ErrInvalidPoint) {
					t.Fatalf("got %v, %v; want ErrInvalidPoint", err, kerr)
				}
				return
			}
			if err != nil || kerr != nil {
				t.Fatal(err, kerr)
			}
			if !bytes.Equal(p.Bytes(), unc) {
				t.Fatal("point does not round-trip to its uncompressed form")
			}
			if !k.Equal(&sk.PublicKey) {
				t.Fatal("ParsePublicKey gives another key")
			}
		})
	}
}

func FuzzParsePoint(f *testing.F) {
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	f.Add(priv.PublicKey().Bytes())
	f.Add([]byte{2})
	f.Add([]byte{0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ecp256.ParsePoint(b)
		k, kerr := ecp256.ParsePublicKey(b)
		if (err == nil) != (kerr == nil) {
			t.Fatalf("ParsePoint %v, ParsePublicKey %v", err, kerr)
		}
		if err != nil {
			if !errors.Is(err, ecp256.ErrInvalidPoint) || !errors.Is(kerr, ecp256.ErrInvalidPoint) {
				t.Fatalf("untyped error %v, %v", err, kerr)
			}
			return
		}
		// Whatever parses must be a point Go's ECDH accepts as a peer.
		if _, err := ecdh.P256().NewPublicKey(p.Bytes()); err != nil {
			t.Fatal(err)
		}
		if _, err := ecp256.KID(k); err != nil {
			t.Fatal(err)
		}
	})
}
