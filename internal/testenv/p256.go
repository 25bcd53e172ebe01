package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/wsca/wsca/ecp256"
)

// ForeignP256 returns a fresh P-256 public point (SEC 1 uncompressed) and
// its kid: a key nobody's device holds, as a database writer would plant.
func ForeignP256(t testing.TB) (point []byte, kid string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if point, err = k.PublicKey.Bytes(); err != nil {
		t.Fatal(err)
	}
	if kid, err = ecp256.KID(&k.PublicKey); err != nil {
		t.Fatal(err)
	}
	return point, kid
}
