package secdsa

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"
	"testing"
)

// detReader is a deterministic byte stream: SHA-256(seed‖counter)… (tests only).
type detReader struct {
	seed []byte
	ctr  uint64
	buf  []byte
}

func newDetReader(seed string) *detReader { return &detReader{seed: []byte(seed)} }

func (r *detReader) Read(p []byte) (int, error) {
	for len(r.buf) < len(p) {
		r.ctr++
		r.buf = append(r.buf, digest(r.seed, binary.BigEndian.AppendUint64(nil, r.ctr))...)
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// fixedDevice is a DeviceKey whose ECDSA nonces are k_1, k_2, … derived from
// a label (tests only: fixed vectors need a reproducible device).
type fixedDevice struct {
	d      *scalar
	pub    *ecdsa.PublicKey
	nonces []*scalar
}

func newFixedDevice(t testing.TB, d *scalar, nonces ...*scalar) *fixedDevice {
	t.Helper()
	u, err := mulG(d)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), encodePoint(u))
	if err != nil {
		t.Fatal(err)
	}
	return &fixedDevice{d: d, pub: pub, nonces: nonces}
}

func (f *fixedDevice) Public() *ecdsa.PublicKey { return f.pub }

func (f *fixedDevice) SignDigest(dg []byte) ([]byte, error) {
	k := reduceNonZero(digest([]byte("fixedDevice nonce"), dg, scalarBytes(f.d), make([]byte, 16))) // after the listed ones
	if len(f.nonces) > 0 {
		k, f.nonces = f.nonces[0], f.nonces[1:]
	}
	rp, err := mulG(k)
	if err != nil {
		return nil, err
	}
	r := rOf(rp)
	s := mulN(invN(k), addN(hashToScalar(dg), mulN(r, f.d)))
	return append(scalarBytes(r), scalarBytes(s)...), nil
}

// labelScalar is int(SHA-256(label)) mod n, as in reference §4.2.
func labelScalarOf(label string) *scalar { return hashToScalar(digest([]byte(label))) }

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// provider is a software stand-in for the provider: the unit's aU, a
// counting DeriveFunc and the record key.
type provider struct {
	aU     *ecdh.PrivateKey
	gp     []byte
	calls  atomic.Int64
	signer *ecdsa.PrivateKey
}

func newProvider(t testing.TB, aU, signer *scalar) *provider {
	t.Helper()
	k, err := ecdh.P256().NewPrivateKey(scalarBytes(aU))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalarBytes(signer))
	if err != nil {
		t.Fatal(err)
	}
	return &provider{aU: k, gp: k.PublicKey().Bytes(), signer: s}
}

func (p *provider) derive(peer []byte) ([]byte, error) {
	p.calls.Add(1)
	return SoftwareDerive(p.aU)(peer)
}

// unit is an activated wallet unit.
type unit struct {
	binder PINBinder
	dev    DeviceKey
	ic     *InternalCert
	prov   *provider
}

var testNonce = []byte("activation-nonce-0123456789")

// activate runs Protocol 4 through the marshalled messages.
func activate(t testing.TB, rnd *detReader, binder PINBinder, dev DeviceKey, prov *provider, account string) *unit {
	t.Helper()
	req, st, err := BeginActivation(rnd, binder, dev, []byte("12345"), []byte(account), testNonce)
	if err != nil {
		t.Fatal(err)
	}
	req, err = ParseActivationRequest(req.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := Activate(req, []byte(account), testNonce, prov.gp, prov.derive)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = ParseActivationResponse(resp.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	yp, err := st.Finish(resp)
	if err != nil {
		t.Fatal(err)
	}
	ic, err := IssueInternalCert(req.AccountID, req.U, resp.GPrime, yp, 1767225600, prov.signer)
	if err != nil {
		t.Fatal(err)
	}
	ic, err = ParseInternalCert(ic.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Accept(ic, &prov.signer.PublicKey); err != nil {
		t.Fatal(err)
	}
	return &unit{binder: binder, dev: dev, ic: ic, prov: prov}
}

func softUnit(t testing.TB) *unit {
	t.Helper()
	binder, err := NewSoftwarePINBinder([]byte("12345678901234567890123456789012"))
	if err != nil {
		t.Fatal(err)
	}
	dev, err := NewSoftwareDeviceKey()
	if err != nil {
		t.Fatal(err)
	}
	prov := newProvider(t, labelScalarOf("test-aU"), labelScalarOf("test-provider"))
	return activate(t, newDetReader("activation"), binder, dev, prov, "unit-1")
}

// scalarOf decodes a 32-byte test scalar in [1, n-1].
func scalarOf(t testing.TB, b []byte) *scalar {
	t.Helper()
	k, err := parseScalar(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
