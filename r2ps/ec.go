package r2ps

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// p256CoordSize is the length of a P-256 coordinate in a JWK, which RFC 7518
// §6.2.1.2 and §6.2.1.3 require in full (leading zeros kept).
const p256CoordSize = 32

// ecJWK is an EC public key as a JWK (RFC 7518 §6.2.1) with only the members
// RFC 7638 §3.2 hashes: any other member, the private "d" first of all, is
// refused by decodeStrict.
type ecJWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// newECJWK encodes a P-256 public key as a JWK.
func newECJWK(pub *ecdh.PublicKey) ecJWK {
	b := pub.Bytes() // 0x04 || X || Y (SEC 1 §2.3.3)
	return ecJWK{
		Kty: "EC",
		Crv: CurveP256,
		X:   b64url(b[1 : 1+p256CoordSize]),
		Y:   b64url(b[1+p256CoordSize:]),
	}
}

// signingJWK is the jwk header member of a JWS (RFC 7515 §4.1.3): the
// RFC 7638 members, and the registered public members RFC 7517 §4 lets a
// key carry (kid, alg, use, key_ops, x5c, x5t, x5t#S256), which clients such
// as panva/jose may add. alg and use, when present, must fit a signing key;
// x5u (a URL) and private members (d) stay refused.
type signingJWK struct {
	Kty     string   `json:"kty"`
	Crv     string   `json:"crv"`
	X       string   `json:"x"`
	Y       string   `json:"y"`
	KID     string   `json:"kid,omitempty"`
	Alg     string   `json:"alg,omitempty"`
	Use     string   `json:"use,omitempty"`
	KeyOps  []string `json:"key_ops,omitempty"`
	X5C     []string `json:"x5c,omitempty"`
	X5T     string   `json:"x5t,omitempty"`
	X5TS256 string   `json:"x5t#S256,omitempty"`
}

// parseSigningJWK validates the jwk of a JWS header.
func parseSigningJWK(raw []byte) (*ecdh.PublicKey, error) {
	var k signingJWK
	if err := decodeStrict(raw, &k, ErrHeader); err != nil {
		return nil, err
	}
	if k.Alg != "" && k.Alg != AlgES256 || k.Use != "" && k.Use != "sig" {
		return nil, errorf(ErrHeader, "jwk is for alg %q use %q, not ES256 signing", k.Alg, k.Use)
	}
	return ecJWK{Kty: k.Kty, Crv: k.Crv, X: k.X, Y: k.Y}.public()
}

// parseECJWK validates a JWK as a P-256 public key: the members, their
// lengths, and with crypto/ecdh that the point is on the curve.
func parseECJWK(raw []byte) (*ecdh.PublicKey, error) {
	var k ecJWK
	if err := decodeStrict(raw, &k, ErrHeader); err != nil {
		return nil, err
	}
	return k.public()
}

func (k ecJWK) public() (*ecdh.PublicKey, error) {
	if k.Kty != "EC" || k.Crv != CurveP256 {
		return nil, errorf(ErrHeader, "key is kty %q crv %q, want EC P-256", k.Kty, k.Crv)
	}
	x, errX := decodeB64URL([]byte(k.X))
	y, errY := decodeB64URL([]byte(k.Y))
	if errX != nil || errY != nil || len(x) != p256CoordSize || len(y) != p256CoordSize {
		return nil, errorf(ErrHeader, "key coordinates are not 32-byte base64url")
	}
	point := append(append([]byte{4}, x...), y...)
	pub, err := ecdh.P256().NewPublicKey(point)
	if err != nil {
		return nil, errorf(ErrHeader, "key is not a P-256 point")
	}
	return pub, nil
}

// toECDSA converts a validated P-256 key.
func toECDSA(pub *ecdh.PublicKey) *ecdsa.PublicKey {
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pub.Bytes())
	if err != nil {
		panic("r2ps: internal error: crypto/ecdh accepted a point crypto/ecdsa refuses")
	}
	return k
}

// p256Public returns the P-256 public key a JWK holds, refusing private keys
// and other key types.
func p256Public(k *jose.JSONWebKey) (*ecdsa.PublicKey, error) {
	if k == nil {
		return nil, errors.New("no key")
	}
	if !k.IsPublic() {
		return nil, errors.New("JWK holds a private key")
	}
	pub, ok := k.Key.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("JWK is %T, want an EC P-256 public key", k.Key)
	}
	if _, err := pub.ECDH(); err != nil {
		return nil, errors.New("JWK is not a valid P-256 point")
	}
	return pub, nil
}

// concatKDF derives the CEK of ECDH-ES (RFC 7518 §4.6.2): the Concat KDF of
// NIST SP 800-56A §5.8.1 with SHA-256. The output is one hash block, so one
// round (counter 1) gives the 256 bits A256GCM needs. OtherInfo is
// AlgorithmID || PartyUInfo || PartyVInfo || SuppPubInfo, the first three
// each a 32-bit big-endian length and the bytes; algID is the enc value in
// direct key agreement, apu and apv are the decoded header values, and
// SuppPubInfo is the key length in bits (RFC 7518 §4.6.2).
func concatKDF(z []byte, algID string, apu, apv []byte) []byte {
	h := sha256.New()
	var buf [4]byte
	put := func(b []byte) {
		binary.BigEndian.PutUint32(buf[:], uint32(len(b)))
		h.Write(buf[:])
		h.Write(b)
	}
	binary.BigEndian.PutUint32(buf[:], 1)
	h.Write(buf[:])
	h.Write(z)
	put([]byte(algID))
	put(apu)
	put(apv)
	binary.BigEndian.PutUint32(buf[:], 8*sha256.Size)
	h.Write(buf[:])
	return h.Sum(nil)
}
