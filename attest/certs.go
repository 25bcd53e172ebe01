package attest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Validity periods of the development CA.
const (
	devRootValidity         = 10 * 365 * 24 * time.Hour
	devIntermediateValidity = 5 * 365 * 24 * time.Hour
)

// DevCA is a development certificate authority: a self-signed root (the
// trust anchor verifiers are given) and an intermediate that issues the
// attestation signing certificates. Both are ECDSA P-256 with keys in
// memory; use it for the embedded default and tests, never in production,
// where the chain comes from configuration (ParseChainPEM).
type DevCA struct {
	Root         *x509.Certificate
	Intermediate *x509.Certificate
	rootKey      *ecdsa.PrivateKey
	interKey     *ecdsa.PrivateKey
}

// NewDevCA makes a root and an intermediate named after name, valid from
// now (less a minute, for clock skew).
func NewDevCA(name string, now time.Time) (*DevCA, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: CA name is empty", ErrInput)
	}
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("attest: CA key: %w", err)
	}
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("attest: CA key: %w", err)
	}
	start := now.Add(-time.Minute)
	rootTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name + " Root CA (development)"},
		NotBefore:             start,
		NotAfter:              start.Add(devRootValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	root, err := createCert(rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	interTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name + " Attestation CA (development)"},
		NotBefore:             start,
		NotAfter:              start.Add(devIntermediateValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	inter, err := createCert(interTmpl, root, &interKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	return &DevCA{Root: root, Intermediate: inter, rootKey: rootKey, interKey: interKey}, nil
}

// Issue certifies pub (a P-256 public key, such as an HSM key's Public())
// as an attestation signing key: an end-entity certificate for digital
// signatures, issued by the intermediate, valid from notBefore for
// lifetime. It returns the chain to put in x5c: leaf, intermediate (no
// trust anchor).
func (ca *DevCA) Issue(pub crypto.PublicKey, commonName string, notBefore time.Time, lifetime time.Duration) ([]*x509.Certificate, error) {
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: not a P-256 key", ErrKey)
	}
	if commonName == "" || lifetime <= 0 {
		return nil, fmt.Errorf("%w: leaf needs a name and a lifetime", ErrInput)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(lifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
	leaf, err := createCert(tmpl, ca.Intermediate, ec, ca.interKey)
	if err != nil {
		return nil, err
	}
	return []*x509.Certificate{leaf, ca.Intermediate}, nil
}

// createCert signs tmpl with a random 128-bit serial number.
func createCert(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("attest: serial: %w", err)
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, fmt.Errorf("attest: create certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// maxChainLen bounds the certificates read from x5c or PEM.
const maxChainLen = 8

// ParseChainPEM reads a certificate chain from PEM (configuration): one or
// more CERTIFICATE blocks, leaf first, nothing else but white space.
func ParseChainPEM(data []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: PEM block %q is not a CERTIFICATE", ErrInput, block.Type)
		}
		if len(chain) == maxChainLen {
			return nil, fmt.Errorf("%w: more than %d certificates", ErrInput, maxChainLen)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %d: %v", ErrInput, len(chain), err)
		}
		chain = append(chain, cert)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: data after the last PEM certificate", ErrInput)
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: no PEM certificate", ErrInput)
	}
	return chain, nil
}

// EncodeChainPEM writes certificates as PEM CERTIFICATE blocks.
func EncodeChainPEM(chain []*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range chain {
		// pem.Encode to a bytes.Buffer cannot fail.
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return buf.Bytes()
}

// selfSigned reports whether c is signed by its own key or names itself
// as its issuer: what a trust anchor looks like.
func selfSigned(c *x509.Certificate) bool {
	if bytes.Equal(c.RawIssuer, c.RawSubject) {
		return true
	}
	return c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// isAnchor reports whether c is one of roots: the same certificate, or the
// same subject with the same key (a re-issued root).
func isAnchor(c *x509.Certificate, roots []*x509.Certificate) bool {
	for _, r := range roots {
		if bytes.Equal(c.Raw, r.Raw) || bytes.Equal(c.RawSubject, r.RawSubject) && bytes.Equal(c.RawSubjectPublicKeyInfo, r.RawSubjectPublicKeyInfo) {
			return true
		}
	}
	return false
}

// checkShape applies the HAIP §4.5.1 rules that need no trust anchor: a
// non-empty chain, not too long, a leaf that is not self-signed, no
// self-signed certificate (a trust anchor) anywhere, and a P-256 signing
// key in the leaf. An issuer checks its own chain with it.
func checkShape(chain []*x509.Certificate) (*ecdsa.PublicKey, error) {
	if len(chain) == 0 {
		return nil, ErrNoX5C
	}
	if len(chain) > maxChainLen {
		return nil, fmt.Errorf("%w: more than %d certificates", ErrChain, maxChainLen)
	}
	if selfSigned(chain[0]) {
		return nil, ErrSelfSigned
	}
	for i, c := range chain[1:] {
		if selfSigned(c) {
			return nil, fmt.Errorf("%w: certificate %d is self-signed", ErrAnchorInChain, i+1)
		}
	}
	leaf := chain[0]
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: leaf key is not P-256", ErrChain)
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return nil, fmt.Errorf("%w: leaf not for digital signatures", ErrChain)
	}
	if leaf.IsCA {
		return nil, fmt.Errorf("%w: leaf is a CA", ErrChain)
	}
	return pub, nil
}

// CheckChain checks an x5c chain (leaf first) under HAIP §4.5.1 against
// the trust anchors roots at time now: checkShape's rules, no anchor in
// the chain, each certificate issued by the next, and a path from the leaf
// to one of roots valid at now (RFC 5280, any extended key usage). It
// returns the leaf's key.
func CheckChain(chain []*x509.Certificate, roots []*x509.Certificate, now time.Time) (*ecdsa.PublicKey, error) {
	if len(roots) == 0 {
		return nil, fmt.Errorf("%w: no trust anchor configured", ErrInput)
	}
	pub, err := checkShape(chain)
	if err != nil {
		return nil, err
	}
	for i, c := range chain {
		if isAnchor(c, roots) {
			return nil, fmt.Errorf("%w: certificate %d", ErrAnchorInChain, i)
		}
	}
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			return nil, fmt.Errorf("%w: certificate %d not issued by certificate %d", ErrChain, i, i+1)
		}
	}
	rootPool := x509.NewCertPool()
	for _, r := range roots {
		rootPool.AddCert(r)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err = chain[0].Verify(x509.VerifyOptions{
		Roots:         rootPool,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return nil, fmt.Errorf("%w: a certificate is expired or not yet valid", ErrChain)
		}
		return nil, fmt.Errorf("%w: no path to a trust anchor", ErrChain)
	}
	return pub, nil
}

// parseX5C decodes an x5c header (RFC 7515 §4.1.6: standard base64 DER,
// leaf first).
func parseX5C(x5c []string) ([]*x509.Certificate, error) {
	if len(x5c) == 0 {
		return nil, ErrNoX5C
	}
	if len(x5c) > maxChainLen {
		return nil, fmt.Errorf("%w: more than %d certificates", ErrChain, maxChainLen)
	}
	chain := make([]*x509.Certificate, 0, len(x5c))
	for i, s := range x5c {
		der, err := stdB64.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: x5c[%d] is not base64", ErrMalformed, i)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: x5c[%d] is not a certificate", ErrChain, i)
		}
		chain = append(chain, c)
	}
	return chain, nil
}

// encodeX5C encodes chain for the x5c header.
func encodeX5C(chain []*x509.Certificate) []string {
	out := make([]string, len(chain))
	for i, c := range chain {
		out[i] = stdB64.EncodeToString(c.Raw)
	}
	return out
}
