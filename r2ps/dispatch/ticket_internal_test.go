package dispatch

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"filippo.io/nistec"

	"github.com/wsca/wsca/r2ps"
)

// TestTicketBinding: the CSK a ticket carries comes back with its
// thumbprint, and is the only key a request in the session may name;
// anything else in a binding is refused.
func TestTicketBinding(t *testing.T) {
	csk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b, err := ticketBinding(&csk.PublicKey)
	if err != nil || len(b) != ticketBindingLen || !bytes.Equal(b, mustBytes(t, &csk.PublicKey)) {
		t.Fatalf("binding %x: %v", b, err)
	}
	tc, err := parseTicketCSK(b)
	if err != nil || !tc.pub.Equal(&csk.PublicKey) || tc.kid != r2ps.Thumbprint(&csk.PublicKey) {
		t.Fatalf("parsed %+v: %v", tc, err)
	}
	if pub, err := tc.key(r2ps.Thumbprint(&csk.PublicKey)); err != nil || !pub.Equal(&csk.PublicKey) {
		t.Fatalf("the ticket's CSK: %v", err)
	}
	for _, kid := range []string{r2ps.Thumbprint(&other.PublicKey), "", tc.kid + "x"} {
		if _, err := tc.key(kid); err == nil {
			t.Fatalf("kid %q accepted", kid)
		}
	}
	if _, err := ticketBinding(nil); err == nil {
		t.Fatal("binding without a key")
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := ticketBinding(&p384.PublicKey); err == nil {
		t.Fatal("binding of a P-384 key")
	}
	offCurve := bytes.Clone(b)
	offCurve[len(offCurve)-1] ^= 1
	for name, bad := range map[string][]byte{
		"empty":                nil,
		"other prefix":         append([]byte{5}, b[1:]...),
		"short":                b[:len(b)-1],
		"long":                 append(bytes.Clone(b), 0),
		"off the curve":        offCurve,
		"infinity":             append([]byte{4}, make([]byte, 64)...),
		"compressed, no v1":    mustCompressed(t, &csk.PublicKey),
		"v1 with uncompressed": append([]byte{ticketBindingV1}, b...),
		"v1 other version":     append([]byte{2}, mustCompressed(t, &csk.PublicKey)...),
		"v1 short":             append([]byte{ticketBindingV1}, mustCompressed(t, &csk.PublicKey)[1:]...),
		"v1 not a point":       append([]byte{ticketBindingV1, 2}, bytes.Repeat([]byte{0xff}, 32)...),
	} {
		if _, err := parseTicketCSK(bad); err == nil {
			t.Errorf("%s binding accepted", name)
		}
	}
}

// TestTicketBindingV1: a ticket made before the binding was uncompressed
// (0x01 ‖ compressed point) still gives its CSK.
func TestTicketBindingV1(t *testing.T) {
	csk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tc, err := parseTicketCSK(append([]byte{ticketBindingV1}, mustCompressed(t, &csk.PublicKey)...))
	if err != nil || !tc.pub.Equal(&csk.PublicKey) || tc.kid != r2ps.Thumbprint(&csk.PublicKey) {
		t.Fatalf("parsed %+v: %v", tc, err)
	}
}

// FuzzParseTicketCSK: a binding parses only into a P-256 key whose
// current encoding it is (or whose compressed form follows 0x01).
func FuzzParseTicketCSK(f *testing.F) {
	csk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b, _ := csk.PublicKey.Bytes()
	f.Add(b)
	f.Add(append([]byte{ticketBindingV1}, mustCompressed(f, &csk.PublicKey)...))
	f.Add([]byte{4})
	f.Fuzz(func(t *testing.T, in []byte) {
		tc, err := parseTicketCSK(in)
		if err != nil {
			return
		}
		raw, err := tc.pub.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		comp := mustCompressed(t, tc.pub)
		if !bytes.Equal(in, raw) && !bytes.Equal(in, append([]byte{ticketBindingV1}, comp...)) {
			t.Fatalf("binding %x parsed into %x", in, raw)
		}
		if tc.kid != r2ps.Thumbprint(tc.pub) {
			t.Fatal("thumbprint")
		}
	})
}

func mustCompressed(t testing.TB, pub *ecdsa.PublicKey) []byte {
	t.Helper()
	p, err := nistec.NewP256Point().SetBytes(mustBytes(t, pub))
	if err != nil {
		t.Fatal(err)
	}
	return p.BytesCompressed()
}

func mustBytes(t testing.TB, pub *ecdsa.PublicKey) []byte {
	t.Helper()
	b, err := pub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
