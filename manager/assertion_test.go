package manager

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"testing"
)

// assert makes an assertion the way an authenticator does.
func assert(t *testing.T, priv *ecdsa.PrivateKey, typ string, challenge []byte, flags byte) Assertion {
	t.Helper()
	cd := []byte(`{"type":"` + typ + `","challenge":"` + base64.RawURLEncoding.EncodeToString(challenge) + `","origin":"https://wallet.example"}`)
	ad := make([]byte, 37)
	ad[32] = flags
	cdh := sha256.Sum256(cd)
	msg := sha256.Sum256(append(append([]byte(nil), ad...), cdh[:]...))
	r, s, err := ecdsa.Sign(rand.Reader, priv, msg[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return Assertion{CredentialID: []byte{1}, AuthenticatorData: ad, ClientDataJSON: cd, Signature: sig}
}

func TestAssertionVerify(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ch := []byte("challenge-0123456789abcdef012345")
	good := assert(t, priv, "webauthn.get", ch, 0x05)
	if err := good.Verify(&priv.PublicKey, ch); err != nil {
		t.Fatalf("good assertion: %v", err)
	}
	flipped := good
	flipped.AuthenticatorData = append([]byte(nil), good.AuthenticatorData...)
	flipped.AuthenticatorData[33] ^= 1
	for _, tc := range []struct {
		name string
		a    Assertion
		pub  *ecdsa.PublicKey
		ch   []byte
	}{
		{"other key", good, &other.PublicKey, ch},
		{"other challenge", good, &priv.PublicKey, []byte("another")},
		{"create, not get", assert(t, priv, "webauthn.create", ch, 0x05), &priv.PublicKey, ch},
		{"user not present", assert(t, priv, "webauthn.get", ch, 0x04), &priv.PublicKey, ch},
		{"authenticator data changed", flipped, &priv.PublicKey, ch},
		{"short authenticator data", Assertion{AuthenticatorData: good.AuthenticatorData[:36], ClientDataJSON: good.ClientDataJSON, Signature: good.Signature}, &priv.PublicKey, ch},
		{"client data not JSON", Assertion{AuthenticatorData: good.AuthenticatorData, ClientDataJSON: []byte("{"), Signature: good.Signature}, &priv.PublicKey, ch},
		{"no key", good, nil, ch},
	} {
		if err := tc.a.Verify(tc.pub, tc.ch); !errors.Is(err, ErrBadAssertion) {
			t.Errorf("%s: got %v, want ErrBadAssertion", tc.name, err)
		}
	}
}
