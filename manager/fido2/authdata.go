package fido2

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/fxamacker/cbor/v2"
)

// Bounds on what the plugin parses. A CTAP2 response, an attestation
// object or a host's JSON answer larger than maxMessage is refused before
// it is decoded.
const (
	maxMessage      = 64 << 10
	maxClientData   = 8 << 10
	maxCredentialID = 1023 // WebAuthn §5.8.3
	maxCOSEKey      = 1 << 10
)

// authenticatorData flags (WebAuthn §6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagBE = 0x08
	flagAT = 0x40
	flagED = 0x80
)

// COSE values (RFC 9052, RFC 9053) for ES256 on P-256.
const (
	coseKtyEC2   = 2
	coseAlgES256 = -7
	coseCrvP256  = 1
)

// codec holds the CBOR modes: canonical CTAP2 encoding (RFC 8949 §4.2.3
// "length-first" ordering, as CTAP2 §8 requires) and a bounded, strict
// decoding (no duplicate keys, no indefinite lengths, no tags, small
// nesting and counts).
type codec struct {
	enc cbor.EncMode
	dec cbor.DecMode
}

func newCodec() codec {
	enc, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		panic(err) // fixed options: a failure is a programming error
	}
	dec, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  8,
		MaxArrayElements: 64,
		MaxMapPairs:      64,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return codec{enc: enc, dec: dec}
}

// authData is a parsed authenticatorData (WebAuthn §6.1).
type authData struct {
	rpIDHash  []byte
	flags     byte
	signCount uint32
	// With attested credential data (flag AT) only:
	credentialID []byte
	coseKey      []byte
	public       *ecdsa.PublicKey
}

// parseAuthData parses b; attested says whether attested credential data
// must be present (registration) or absent (assertion). The credential
// public key must be an ES256 P-256 COSE_Key.
func (c codec) parseAuthData(b []byte, attested bool) (*authData, error) {
	if len(b) < 37 {
		return nil, fmt.Errorf("%w: authenticator data of %d bytes", ErrMalformed, len(b))
	}
	if len(b) > maxMessage {
		return nil, fmt.Errorf("%w: authenticator data too large", ErrMalformed)
	}
	a := &authData{rpIDHash: b[:32], flags: b[32], signCount: binary.BigEndian.Uint32(b[33:37])}
	rest := b[37:]
	if (a.flags&flagAT != 0) != attested {
		return nil, fmt.Errorf("%w: attested credential data present: %v, expected: %v", ErrMalformed, a.flags&flagAT != 0, attested)
	}
	if attested {
		if len(rest) < 18 {
			return nil, fmt.Errorf("%w: attested credential data truncated", ErrMalformed)
		}
		n := int(binary.BigEndian.Uint16(rest[16:18]))
		rest = rest[18:]
		if n == 0 || n > maxCredentialID || len(rest) < n {
			return nil, fmt.Errorf("%w: credential id of %d bytes", ErrMalformed, n)
		}
		a.credentialID, rest = rest[:n], rest[n:]
		var raw cbor.RawMessage
		after, err := c.dec.UnmarshalFirst(rest, &raw)
		if err != nil {
			return nil, fmt.Errorf("%w: credential public key: %v", ErrMalformed, err)
		}
		a.coseKey = rest[:len(rest)-len(after)]
		if a.public, err = c.parseCOSEKey(a.coseKey); err != nil {
			return nil, err
		}
		rest = after
	}
	if a.flags&flagED != 0 {
		var ext map[string]cbor.RawMessage
		after, err := c.dec.UnmarshalFirst(rest, &ext)
		if err != nil {
			return nil, fmt.Errorf("%w: extensions: %v", ErrMalformed, err)
		}
		rest = after
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the authenticator data", ErrMalformed, len(rest))
	}
	return a, nil
}

// coseKey is an EC2 COSE_Key (RFC 9053 §7.1.1).
type coseKey struct {
	Kty int    `cbor:"1,keyasint"`
	Alg int    `cbor:"3,keyasint"`
	Crv int    `cbor:"-1,keyasint"`
	X   []byte `cbor:"-2,keyasint"`
	Y   []byte `cbor:"-3,keyasint"`
}

// parseCOSEKey accepts ES256 keys on P-256 only, and only points on the
// curve.
func (c codec) parseCOSEKey(b []byte) (*ecdsa.PublicKey, error) {
	if len(b) > maxCOSEKey {
		return nil, fmt.Errorf("%w: COSE key too large", ErrMalformed)
	}
	var k coseKey
	if err := c.dec.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("%w: COSE key: %v", ErrMalformed, err)
	}
	if k.Kty != coseKtyEC2 || k.Alg != coseAlgES256 || k.Crv != coseCrvP256 {
		return nil, fmt.Errorf("%w: kty %d, alg %d, crv %d", ErrUnsupportedKey, k.Kty, k.Alg, k.Crv)
	}
	if len(k.X) != 32 || len(k.Y) != 32 {
		return nil, fmt.Errorf("%w: coordinates of %d and %d bytes", ErrMalformed, len(k.X), len(k.Y))
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, k.X...), k.Y...))
	if err != nil {
		return nil, fmt.Errorf("%w: the public key is not a P-256 point", ErrMalformed)
	}
	return pub, nil
}

// attestationObject is WebAuthn's attestation object (§6.5.4); the
// statement is kept, not verified.
type attestationObject struct {
	Fmt      string          `cbor:"fmt"`
	AttStmt  cbor.RawMessage `cbor:"attStmt"`
	AuthData []byte          `cbor:"authData"`
}

// parseAttestationObject parses a browser's attestation object. Formats
// "none" and "packed" are accepted; the statement is not verified (the
// key is taken from the authenticator data).
func (c codec) parseAttestationObject(b []byte) (*authData, error) {
	if len(b) > maxMessage {
		return nil, fmt.Errorf("%w: attestation object too large", ErrMalformed)
	}
	var o attestationObject
	if err := c.dec.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("%w: attestation object: %v", ErrMalformed, err)
	}
	return c.checkAttestation(o.Fmt, o.AttStmt, o.AuthData)
}

func (c codec) checkAttestation(format string, stmt cbor.RawMessage, ad []byte) (*authData, error) {
	switch format {
	case "none", "packed":
	default:
		return nil, fmt.Errorf("%w: attestation format %q", ErrMalformed, format)
	}
	var m map[string]cbor.RawMessage
	if err := c.dec.Unmarshal(stmt, &m); err != nil {
		return nil, fmt.Errorf("%w: attestation statement: %v", ErrMalformed, err)
	}
	return c.parseAuthData(ad, true)
}

// derToRaw converts an ASN.1 DER ECDSA signature to raw r‖s (64 bytes).
func derToRaw(der []byte) ([]byte, error) {
	var sig struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil || len(rest) != 0 {
		return nil, errors.New("not a DER ECDSA signature")
	}
	n := elliptic.P256().Params().N
	if sig.R.Sign() <= 0 || sig.S.Sign() <= 0 || sig.R.Cmp(n) >= 0 || sig.S.Cmp(n) >= 0 {
		return nil, errors.New("signature values out of range")
	}
	raw := make([]byte, 64)
	sig.R.FillBytes(raw[:32])
	sig.S.FillBytes(raw[32:])
	return raw, nil
}

// checkAuthData applies the checks common to registration and assertion:
// the RP id hash, user presence, and user verification when required.
func checkAuthData(a *authData, rpIDHash []byte, uvRequired bool) error {
	if !bytes.Equal(a.rpIDHash, rpIDHash) {
		return fmt.Errorf("%w: RP id hash", ErrRejected)
	}
	if a.flags&flagUP == 0 {
		return fmt.Errorf("%w: user not present", ErrRejected)
	}
	if uvRequired && a.flags&flagUV == 0 {
		return fmt.Errorf("%w: user not verified", ErrRejected)
	}
	return nil
}
