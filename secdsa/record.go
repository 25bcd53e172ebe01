package secdsa

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/subtle"
	"encoding/binary"
	"fmt"

	"github.com/wsca/wsca/ecp256"
)

// TRecord is a transaction record (reference §2.12, §3.5): everything a
// third party needs, with the Internal Certificate and the provider's key,
// to check that the unit's holder (device key and PIN) signed exactly this
// instruction with this serial number, that the unit's HSM key took part,
// and what the provider says it did. It holds no secret.
type TRecord struct {
	AccountID   []byte
	CertID      []byte // InternalCert.ID(), 32 bytes
	SN          uint64
	Instruction []byte
	Additional  []byte
	R           []byte // 65
	RPrime      []byte // 65
	GPP         []byte // 65, G''
	YPP         []byte // 65, Y''
	Proof       []byte // 64, DLEQ (G', Y') → (G'', Y'')
	E           []byte // 65
	H2          []byte // 32
	SigChal     []byte // 64
	H1          []byte // 32
	Result      []byte // the provider's result of executing the instruction
	Time        uint64 // Unix seconds, the provider's clock
	Signature   []byte // provider's raw r‖s over SHA-256(TBS())
}

func (t *TRecord) fields() [][]byte {
	return [][]byte{t.AccountID, t.CertID, u64(t.SN), t.Instruction, t.Additional, t.R, t.RPrime, t.GPP, t.YPP,
		t.Proof, t.E, t.H2, t.SigChal, t.H1, t.Result, u64(t.Time)}
}

var recordSizes = []int{-1, hashSize, 8, -1, -1, PointSize, PointSize, PointSize, PointSize, ProofSize, PointSize,
	hashSize, 64, hashSize, -1, 8, 64}

// TBS returns the provider-signed bytes.
func (t *TRecord) TBS() []byte { return frame(labelTRecord, t.fields()...) }

// Hash is SHA-256(TBS()), the record's identity (e.g. its evidence-log leaf).
func (t *TRecord) Hash() []byte { return digest(t.TBS()) }

// Marshal encodes the record: TBS's fields and the signature.
func (t *TRecord) Marshal() []byte { return frame(labelTRecord, append(t.fields(), t.Signature)...) }

// ParseTRecord decodes Marshal's output (lengths only; VerifyTRecord checks
// the rest).
func ParseTRecord(b []byte) (*TRecord, error) {
	f, err := unframe(b, labelTRecord, recordSizes...)
	if err != nil {
		return nil, err
	}
	c := func(i int) []byte { return clone(f[i]) }
	return &TRecord{AccountID: c(0), CertID: c(1), SN: binary.BigEndian.Uint64(f[2]), Instruction: c(3), Additional: c(4),
		R: c(5), RPrime: c(6), GPP: c(7), YPP: c(8), Proof: c(9), E: c(10), H2: c(11), SigChal: c(12), H1: c(13),
		Result: c(14), Time: binary.BigEndian.Uint64(f[15]), Signature: c(16)}, nil
}

// NewTRecord builds and signs the record of an executed instruction.
func NewTRecord(ic *InternalCert, ex *Executed, result []byte, at uint64, signer crypto.Signer) (*TRecord, error) {
	if len(result) > maxField {
		return nil, fmt.Errorf("%w: result too long", ErrMalformed)
	}
	x := ex.Envelope
	t := &TRecord{AccountID: clone(ic.AccountID), CertID: ic.ID(), SN: x.SN, Instruction: clone(ex.Instruction),
		Additional: clone(ex.Additional), R: clone(x.R), RPrime: clone(x.RPrime), GPP: clone(ex.GPP), YPP: clone(ex.YPP),
		Proof: clone(ex.Proof), E: clone(x.E), H2: clone(x.H2), SigChal: clone(x.SigChal), H1: clone(ex.H1),
		Result: clone(result), Time: at}
	if t.Result == nil {
		t.Result = []byte{}
	}
	sig, err := providerSign(signer, t.Hash())
	if err != nil {
		return nil, err
	}
	t.Signature = sig
	return t, nil
}

// VerifyTRecord checks a transaction record with no secret (reference
// §3.5): the certificate and the record under the provider's key, that the
// record names the certificate, the blinding proof and R' = e·G” + r·Y”
// (a valid SECDSA signature on the instruction under the certified, never
// revealed Y), the device's challenge signature, and H1 as the HSM's answer
// to that challenge (R' = aU·R).
func VerifyTRecord(ic *InternalCert, provider *ecdsa.PublicKey, t *TRecord) error {
	if err := VerifyInternalCert(ic, provider); err != nil {
		return err
	}
	for i, f := range append(t.fields(), t.Signature) {
		if recordSizes[i] >= 0 && len(f) != recordSizes[i] || recordSizes[i] < 0 && len(f) > maxField {
			return fmt.Errorf("%w: record field %d length", ErrMalformed, i)
		}
	}
	if !ecp256.VerifyRaw(provider, t.Hash(), t.Signature) {
		return fmt.Errorf("%w: transaction record", ErrSignature)
	}
	if !bytes.Equal(t.AccountID, ic.AccountID) || !bytes.Equal(t.CertID, ic.ID()) {
		return ErrAccount
	}
	u, gp, yp, err := ic.points()
	if err != nil {
		return err
	}
	var pts [3]*point
	for i, b := range [][]byte{t.R, t.RPrime, t.E} {
		if pts[i], err = ParsePoint(b); err != nil {
			return err
		}
	}
	if err := checkSignature(gp, yp, t.AccountID, t.SN, t.Instruction, t.Additional, pts[0], pts[1], t.GPP, t.YPP, t.Proof); err != nil {
		return err
	}
	if !verifyDigest(u, challengeDigest(t.AccountID, t.SN, t.E, t.R, t.RPrime, t.H2), t.SigChal) {
		return ErrChallengeSignature
	}
	if subtle.ConstantTimeCompare(digest(t.H1), t.H2) != 1 {
		return fmt.Errorf("%w: H1 does not answer the challenge", ErrProof)
	}
	return nil
}
