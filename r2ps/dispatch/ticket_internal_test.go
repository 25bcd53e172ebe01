package dispatch

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/wsca/wsca/r2ps"
)

// TestTicketBinding: the CSK a ticket carries comes back with its
// thumbprint, and is the only key a request in the session may name;
// anything else in a binding is refused.
func TestTicketBinding(t *testing.T) {
	csk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b, err := ticketBinding(&csk.PublicKey)
	if err != nil || len(b) != ticketBindingLen {
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
	for name, bad := range map[string][]byte{
		"empty":         nil,
		"other version": append([]byte{2}, b[1:]...),
		"short":         b[:len(b)-1],
		"long":          append(bytes.Clone(b), 0),
		"uncompressed":  append([]byte{ticketBindingV1}, mustBytes(t, &csk.PublicKey)...),
		"not a point":   append([]byte{ticketBindingV1, 4}, make([]byte, 32)...),
	} {
		if _, err := parseTicketCSK(bad); err == nil {
			t.Errorf("%s binding accepted", name)
		}
	}
}

func mustBytes(t *testing.T, pub *ecdsa.PublicKey) []byte {
	t.Helper()
	b, err := pub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
