// Package statuslisttest makes the keys and certificates that tests of
// status list issuers and verifiers need.
package statuslisttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

// PKI is a small certificate hierarchy: a root CA, an intermediate CA and
// a status list signing leaf.
type PKI struct {
	// Key is the leaf's private key.
	Key *ecdsa.PrivateKey
	// Chain is leaf, intermediate: what a token carries (no trust anchor).
	Chain []*x509.Certificate
	// Root is the trust anchor; Roots holds only it.
	Root  *x509.Certificate
	Roots *x509.CertPool
}

// NewPKI returns a fresh hierarchy valid from an hour ago for a year.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	now := time.Now()
	rootKey, root := cert(t, "wsca test root", nil, nil, true, now)
	interKey, inter := cert(t, "wsca test intermediate", root, rootKey, true, now)
	leafKey, leaf := cert(t, "wsca test status list signer", inter, interKey, false, now)
	roots := x509.NewCertPool()
	roots.AddCert(root)
	return &PKI{Key: leafKey, Chain: []*x509.Certificate{leaf, inter}, Root: root, Roots: roots}
}

func cert(t testing.TB, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, ca bool, now time.Time) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  ca,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	if ca {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, c
}
