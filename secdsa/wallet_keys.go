package secdsa

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/wsca/wsca/ecp256"
)

// PINBinder is the phone's secure hardware turning a PIN into the PIN key
// P in [1, n-1] (reference §2.3). It is deterministic for a given PIN and
// binder key, gives a well-formed but different P for a wrong PIN, and
// keeps its key (K_P) inside the hardware so that every guess needs the
// phone. The returned bytes are a 32-byte big-endian scalar; the caller
// wipes them.
type PINBinder interface {
	PINKey(pin []byte) ([]byte, error)
}

// DeviceKey is the phone's non-exportable possession key u (the NCH key):
// its public point U, and an ECDSA signature over a caller-supplied 32-byte
// digest with no further hashing (iOS digest-X9.62, Android digest NONE,
// TPM2_Sign). The signature is raw r‖s, 64 bytes.
type DeviceKey interface {
	Public() *ecdsa.PublicKey
	SignDigest(digest []byte) ([]byte, error)
}

// SoftwarePINBinder is the HMAC PIN binder of the 2021 paper (Algorithm 9)
// with its key in memory: for tests, development and platforms without
// secure hardware. x = the first 40 bytes of HMAC(K_P, [i]₁‖PIN‖0x00‖[320]₂)
// for i = 1, 2 (NIST SP 800-108 counter mode), P = 1 + (x mod (n-1)).
type SoftwarePINBinder struct {
	key []byte
}

// NewSoftwarePINBinder returns a binder keyed with a copy of key (at least
// 32 bytes).
func NewSoftwarePINBinder(key []byte) (*SoftwarePINBinder, error) {
	if len(key) < 32 {
		return nil, errors.New("secdsa: PIN binder key shorter than 32 bytes")
	}
	return &SoftwarePINBinder{key: clone(key)}, nil
}

// PINKey implements PINBinder.
func (b *SoftwarePINBinder) PINKey(pin []byte) ([]byte, error) {
	if len(pin) == 0 {
		return nil, errors.New("secdsa: empty PIN")
	}
	const lBits = 8*ScalarSize + 64 // 320
	var x []byte
	for i := byte(1); len(x) < lBits/8; i++ {
		m := hmac.New(sha256.New, b.key)
		m.Write([]byte{i})
		m.Write(pin)
		m.Write([]byte{0})
		m.Write(binary.BigEndian.AppendUint16(nil, lBits))
		x = m.Sum(x)
	}
	p := reduceNonZero(x[:lBits/8])
	clear(x)
	defer wipe(p)
	return scalarBytes(p), nil
}

// SoftwareDeviceKey is a DeviceKey held in memory (tests, development).
type SoftwareDeviceKey struct {
	priv *ecdsa.PrivateKey
}

// NewSoftwareDeviceKey generates a fresh P-256 device key.
func NewSoftwareDeviceKey() (*SoftwareDeviceKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("secdsa: device key: %w", err)
	}
	return &SoftwareDeviceKey{priv: k}, nil
}

// SoftwareDeviceKeyFrom wraps an existing P-256 key.
func SoftwareDeviceKeyFrom(k *ecdsa.PrivateKey) (*SoftwareDeviceKey, error) {
	if k == nil || k.Curve != elliptic.P256() {
		return nil, errors.New("secdsa: device key is not P-256")
	}
	return &SoftwareDeviceKey{priv: k}, nil
}

// Public implements DeviceKey.
func (k *SoftwareDeviceKey) Public() *ecdsa.PublicKey { return &k.priv.PublicKey }

// SignDigest implements DeviceKey.
func (k *SoftwareDeviceKey) SignDigest(digest []byte) ([]byte, error) {
	if len(digest) != sha256.Size {
		return nil, errors.New("secdsa: digest is not 32 bytes")
	}
	der, err := ecdsa.SignASN1(rand.Reader, k.priv, digest)
	if err != nil {
		return nil, fmt.Errorf("secdsa: device signature: %w", err)
	}
	raw, err := ecp256.DERToRaw(der)
	if err != nil {
		return nil, fmt.Errorf("secdsa: device signature: %w", err)
	}
	return raw, nil
}

// splitSign is SECDSA split signing (reference §2.4): e' = P⁻¹·e, the device
// signs e' with u giving (r, s₀), s = P·s₀. (r, s) is an ECDSA signature on
// e under Y = P·U.
func splitSign(dev DeviceKey, p, e *scalar) (r, s *scalar, err error) {
	pInv := invN(p)
	ePrime := mulN(pInv, e)
	wipe(pInv)
	eb := scalarBytes(ePrime)
	wipe(ePrime)
	sig, err := dev.SignDigest(eb)
	clear(eb)
	if err != nil {
		return nil, nil, err
	}
	if len(sig) != 64 {
		return nil, nil, errors.New("secdsa: device signature is not 64 bytes")
	}
	r, err = parseScalar(sig[:32])
	if err != nil {
		return nil, nil, fmt.Errorf("secdsa: device signature r: %w", err)
	}
	s0, err := parseScalar(sig[32:])
	if err != nil {
		return nil, nil, fmt.Errorf("secdsa: device signature s: %w", err)
	}
	s = mulN(p, s0)
	wipe(s0)
	return r, s, nil
}

// devicePoint returns U as a point.
func devicePoint(dev DeviceKey) (*point, error) {
	pub := dev.Public()
	b, err := pub.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: device key: %v", ErrInvalidPoint, err)
	}
	return ParsePoint(b)
}

// verifyDigest checks a raw r‖s ECDSA signature over a 32-byte digest with
// the public point pub.
func verifyDigest(pub *point, digest, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), encodePoint(pub))
	if err != nil {
		return false
	}
	return ecp256.VerifyRaw(k, digest, sig)
}
