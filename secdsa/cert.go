package secdsa

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/wsca/wsca/ecp256"
)

// DeriveFunc is the provider's one HSM operation: ECDH with the unit's
// derive-only key aU on peer (a validated 65-byte SEC 1 uncompressed point,
// as PKCS#11 CK_ECDH1_DERIVE_PARAMS.pPublicData takes it), returning the
// x-coordinate of aU·peer (CKM_ECDH1_DERIVE, CKD_NULL, CKA_VALUE of a
// 32-byte generic secret). Shorter outputs are left-padded.
type DeriveFunc func(peer []byte) ([]byte, error)

// SoftwareDerive is a DeriveFunc over an in-memory key (tests, the soft
// device).
func SoftwareDerive(aU *ecdh.PrivateKey) DeriveFunc {
	return func(peer []byte) ([]byte, error) {
		pub, err := ecdh.P256().NewPublicKey(peer)
		if err != nil {
			return nil, fmt.Errorf("secdsa: derive: %w", err)
		}
		return aU.ECDH(pub)
	}
}

// derive calls d on p and checks the answer's length.
func derive(d DeriveFunc, p *point) ([]byte, error) {
	z, err := d(encodePoint(p))
	if err != nil {
		return nil, fmt.Errorf("secdsa: device derive: %w", err)
	}
	if len(z) == 0 || len(z) > ScalarSize {
		return nil, errors.New("secdsa: device derive: output is not a P-256 x-coordinate")
	}
	if len(z) < ScalarSize {
		z = append(make([]byte, ScalarSize-len(z)), z...)
	}
	return z, nil
}

// InternalCert is the Internal Certificate of a wallet unit (reference
// §3.2): the account, the phone's device key U, the blinding key
// G' = aU·G and the blind SECDSA key Y' = aU·Y, signed by the provider.
type InternalCert struct {
	AccountID []byte
	U         []byte // 65 bytes
	GPrime    []byte // 65 bytes
	YPrime    []byte // 65 bytes
	IssuedAt  uint64 // Unix seconds
	Signature []byte // raw r‖s over SHA-256(TBS())
}

func (c *InternalCert) fields() [][]byte {
	return [][]byte{c.AccountID, c.U, c.GPrime, c.YPrime, u64(c.IssuedAt)}
}

// TBS returns the signed bytes.
func (c *InternalCert) TBS() []byte { return frame(labelICert, c.fields()...) }

// ID is SHA-256(TBS()): what a record names its certificate by (over the
// signed part only, since an ECDSA signature is malleable).
func (c *InternalCert) ID() []byte { return digest(c.TBS()) }

// Marshal returns the certificate's encoding: TBS's fields and the signature.
func (c *InternalCert) Marshal() []byte {
	return frame(labelICert, append(c.fields(), c.Signature)...)
}

// ParseInternalCert decodes Marshal's output; its points are validated.
func ParseInternalCert(b []byte) (*InternalCert, error) {
	f, err := unframe(b, labelICert, -1, PointSize, PointSize, PointSize, 8, 64)
	if err != nil {
		return nil, err
	}
	c := &InternalCert{AccountID: clone(f[0]), U: clone(f[1]), GPrime: clone(f[2]), YPrime: clone(f[3]),
		IssuedAt: binary.BigEndian.Uint64(f[4]), Signature: clone(f[5])}
	if len(c.AccountID) == 0 {
		return nil, fmt.Errorf("%w: empty account id", ErrMalformed)
	}
	if _, _, _, err := c.points(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *InternalCert) points() (u, gp, yp *point, err error) {
	if u, err = ParsePoint(c.U); err != nil {
		return nil, nil, nil, fmt.Errorf("internal certificate U: %w", err)
	}
	if gp, err = ParsePoint(c.GPrime); err != nil {
		return nil, nil, nil, fmt.Errorf("internal certificate G': %w", err)
	}
	if yp, err = ParsePoint(c.YPrime); err != nil {
		return nil, nil, nil, fmt.Errorf("internal certificate Y': %w", err)
	}
	return u, gp, yp, nil
}

// VerifyInternalCert checks the provider's signature and the points.
func VerifyInternalCert(c *InternalCert, provider *ecdsa.PublicKey) error {
	if len(c.AccountID) == 0 || len(c.AccountID) > maxField {
		return fmt.Errorf("%w: account id", ErrMalformed)
	}
	if _, _, _, err := c.points(); err != nil {
		return err
	}
	if !ecp256.VerifyRaw(provider, c.ID(), c.Signature) {
		return fmt.Errorf("%w: internal certificate", ErrSignature)
	}
	return nil
}

// IssueInternalCert builds and signs the Internal Certificate (Protocol 4,
// last step). signer is the provider's ECDSA P-256 key (an HSM key in
// production); its DER signature is stored raw.
func IssueInternalCert(accountID, u, gPrime, yPrime []byte, issuedAt uint64, signer crypto.Signer) (*InternalCert, error) {
	c := &InternalCert{AccountID: clone(accountID), U: clone(u), GPrime: clone(gPrime), YPrime: clone(yPrime), IssuedAt: issuedAt}
	if len(c.AccountID) == 0 || len(c.AccountID) > maxField {
		return nil, fmt.Errorf("%w: account id", ErrMalformed)
	}
	if _, _, _, err := c.points(); err != nil {
		return nil, err
	}
	sig, err := providerSign(signer, c.ID())
	if err != nil {
		return nil, err
	}
	c.Signature = sig
	return c, nil
}

func providerSign(signer crypto.Signer, d []byte) ([]byte, error) {
	if len(d) != sha256.Size {
		return nil, errors.New("secdsa: digest length")
	}
	der, err := signer.Sign(rand.Reader, d, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("secdsa: provider signature: %w", err)
	}
	raw, err := ecp256.DERToRaw(der)
	if err != nil {
		return nil, fmt.Errorf("secdsa: provider signature: %w", err)
	}
	return raw, nil
}
