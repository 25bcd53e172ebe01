package ecp256_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/wsca/wsca/ecp256"
	"github.com/wsca/wsca/internal/wycheproof"
)

// TestWycheproofECDSA runs both Wycheproof P-256/SHA-256 files through the
// project's verify helpers. "acceptable" cases do not occur in these files;
// if a new file brings them, they must be decided here, so they fail.
func TestWycheproofECDSA(t *testing.T) {
	for _, tc := range []struct {
		file   string
		verify func(*ecdsa.PublicKey, []byte, []byte) bool
	}{
		{"ecdsa_secp256r1_sha256_p1363_test.json", ecp256.VerifyRaw},
		{"ecdsa_secp256r1_sha256_test.json", ecp256.VerifyDER},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var n int
			for _, g := range wycheproof.ECDSA(t, tc.file) {
				if g.SHA != "SHA-256" {
					t.Fatalf("unexpected hash %s", g.SHA)
				}
				pub, err := ecp256.ParsePublicKey(g.PublicKey.Uncompressed)
				if err != nil {
					t.Fatalf("group key: %v", err)
				}
				for _, v := range g.Tests {
					n++
					digest := sha256.Sum256(v.Msg)
					got := tc.verify(pub, digest[:], v.Sig)
					switch v.Result {
					case wycheproof.Valid:
						if !got {
							t.Errorf("tcId %d (%s): valid signature rejected", v.TcID, v.Comment)
						}
					case wycheproof.Invalid:
						if got {
							t.Errorf("tcId %d (%s): invalid signature accepted", v.TcID, v.Comment)
						}
					default:
						t.Errorf("tcId %d: result %q not decided", v.TcID, v.Result)
					}
				}
			}
			t.Logf("%d vectors", n)
		})
	}
}

// TestWycheproofDERToRaw checks that the DER decoder takes exactly the
// encodings the verifier takes, and that its output verifies as raw.
func TestWycheproofDERToRaw(t *testing.T) {
	for _, g := range wycheproof.ECDSA(t, "ecdsa_secp256r1_sha256_test.json") {
		pub, err := ecp256.ParsePublicKey(g.PublicKey.Uncompressed)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range g.Tests {
			digest := sha256.Sum256(v.Msg)
			raw, err := ecp256.DERToRaw(v.Sig)
			if v.Result == wycheproof.Valid {
				if err != nil {
					t.Errorf("tcId %d: DERToRaw rejected a valid signature: %v", v.TcID, err)
					continue
				}
				if !ecp256.VerifyRaw(pub, digest[:], raw) {
					t.Errorf("tcId %d: converted signature does not verify", v.TcID)
				}
				back, err := ecp256.RawToDER(raw)
				if err != nil || !bytes.Equal(back, v.Sig) {
					t.Errorf("tcId %d: RawToDER does not give back the DER", v.TcID)
				}
				continue
			}
			if err == nil && ecp256.VerifyRaw(pub, digest[:], raw) {
				t.Errorf("tcId %d (%s): invalid DER signature converted to a valid raw one", v.TcID, v.Comment)
			}
			if err != nil && !errors.Is(err, ecp256.ErrInvalidSignature) {
				t.Errorf("tcId %d: untyped error %v", v.TcID, err)
			}
		}
	}
}

func TestRawToDERRejects(t *testing.T) {
	for _, in := range [][]byte{nil, make([]byte, 63), make([]byte, 64), make([]byte, 65)} {
		if _, err := ecp256.RawToDER(in); !errors.Is(err, ecp256.ErrInvalidSignature) {
			t.Errorf("RawToDER(%d bytes) = %v", len(in), err)
		}
	}
}

func FuzzDERToRaw(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	d := sha256.Sum256([]byte("seed"))
	sig, _ := ecdsa.SignASN1(rand.Reader, k, d[:])
	f.Add(sig)
	f.Add([]byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})
	f.Fuzz(func(t *testing.T, der []byte) {
		raw, err := ecp256.DERToRaw(der)
		if err != nil {
			if !errors.Is(err, ecp256.ErrInvalidSignature) {
				t.Fatal(err)
			}
			return
		}
		back, err := ecp256.RawToDER(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, der) {
			t.Fatalf("DER %x accepted but is not canonical (%x)", der, back)
		}
	})
}
