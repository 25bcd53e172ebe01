package r2ps

import (
	"encoding/json"
	"fmt"

	"github.com/wsca/wsca/internal/strictjson"
)

// The SECDSA types (docs/secdsa.md "Wire", docs/protocol.md §7a): SECDSA
// activation and instructions inside R2PS 1FA requests. The envelope gives
// the unit id, confidentiality both ways (the response is sealed to the
// unit's agreement key, so an ECDH result travels encrypted), replay
// protection (nonce, iat) and the client signing key's signature; the
// SECDSA messages inside are the byte-exact encodings of package secdsa.
// The PIN is checked by SECDSA (one HSM derive), not by an OPAQUE session.
const (
	// TypeSECDSANonce asks for a provider activation nonce.
	TypeSECDSANonce = "secdsa_nonce"
	// TypeSECDSAActivateBegin carries the wallet's activation request and
	// answers with the provider's response (Protocol 4).
	TypeSECDSAActivateBegin = "secdsa_activate_begin"
	// TypeSECDSAActivateFinish carries Y' and answers with the Internal
	// Certificate.
	TypeSECDSAActivateFinish = "secdsa_activate_finish"
	// TypeSECDSAInstruction carries an encrypted signed instruction and
	// answers with its result and its transaction record.
	TypeSECDSAInstruction = "secdsa_instruction"
)

// SECDSANonceResponse answers secdsa_nonce: the nonce to put in the
// activation request, and the account id (the unit id) it is bound to.
type SECDSANonceResponse struct {
	Success   bool  `json:"success"`
	Nonce     Bytes `json:"nonce"`
	AccountID Bytes `json:"account_id"`
}

// SECDSAActivateRequest is the data of secdsa_activate_begin.
type SECDSAActivateRequest struct {
	Request Bytes `json:"request"` // secdsa.ActivationRequest.Marshal()
}

// SECDSAActivateResponse answers secdsa_activate_begin.
type SECDSAActivateResponse struct {
	Success  bool  `json:"success"`
	Response Bytes `json:"response"` // secdsa.ActivationResponse.Marshal()
}

// SECDSAFinishRequest is the data of secdsa_activate_finish.
type SECDSAFinishRequest struct {
	YPrime Bytes `json:"y_prime"` // Y' = aU·Y, 65 bytes
}

// SECDSAFinishResponse answers secdsa_activate_finish: the Internal
// Certificate and the provider key that signs it and every record (SEC 1
// uncompressed), which a verifier pins.
type SECDSAFinishResponse struct {
	Success     bool  `json:"success"`
	Cert        Bytes `json:"cert"`         // secdsa.InternalCert.Marshal()
	ProviderKey Bytes `json:"provider_key"` // 65 bytes
}

// SECDSAInstructionRequest is the data of secdsa_instruction.
type SECDSAInstructionRequest struct {
	Instruction Bytes `json:"instruction"` // secdsa.EncSignedInstruction.Marshal()
}

// SECDSAInstructionResponse answers secdsa_instruction. Result is the
// record's result (a SECDSAResult in JSON); Secret is what must not go
// into a public record (an ECDH result); Record is the signed transaction
// record (secdsa.TRecord.Marshal()).
type SECDSAInstructionResponse struct {
	Success bool  `json:"success"`
	Result  Bytes `json:"result"`
	Secret  Bytes `json:"secret,omitempty"`
	Record  Bytes `json:"record"`
}

// SECDSA instruction operations: the op of a SECDSAOp.
const (
	SECDSAOpGenerate  = "p256_generate"
	SECDSAOpSign      = "sign_ecdsa"
	SECDSAOpECDH      = "agree_ecdh"
	SECDSAOpDelete    = "delete_key"
	SECDSAOpPINChange = "pin_change"
)

// SECDSAOp is the instruction I a wallet signs with SECDSA, as JSON (it is
// signed as bytes, so its layout needs no canonical form; the server
// decodes it strictly). The consent text goes into the additional data A.
type SECDSAOp struct {
	Op   string `json:"op"`
	KID  string `json:"kid,omitempty"`
	Hash Bytes  `json:"hash,omitempty"` // sign_ecdsa: the 32-byte digest
	Peer Bytes  `json:"peer,omitempty"` // agree_ecdh: the SEC 1 peer point
	// Activation is pin_change's activation request under the new PIN
	// (secdsa.ActivationRequest.Marshal(), with a nonce from secdsa_nonce).
	Activation Bytes `json:"activation,omitempty"`
}

// maxSECDSAOpValues bounds the JSON values of an instruction.
const maxSECDSAOpValues = 16

// ParseSECDSAOp decodes an instruction strictly (known members only, no
// duplicates) and checks the members its op needs.
func ParseSECDSAOp(b []byte) (SECDSAOp, error) {
	var op SECDSAOp
	if len(b) > MaxMessageSize {
		return op, errorf(ErrTooLarge, "%d bytes", len(b))
	}
	if err := strictjson.Decode(b, &op, maxSECDSAOpValues); err != nil {
		return op, errorf(ErrMalformed, "secdsa instruction: %v", err)
	}
	bad := func(what string) (SECDSAOp, error) {
		return SECDSAOp{}, errorf(ErrMalformed, "secdsa instruction %q: %s", op.Op, what)
	}
	has := func(kid, hash, peer, act bool) bool {
		return (op.KID != "") == kid && (len(op.Hash) > 0) == hash && (len(op.Peer) > 0) == peer && (len(op.Activation) > 0) == act
	}
	switch op.Op {
	case SECDSAOpGenerate:
		if !has(false, false, false, false) {
			return bad("members")
		}
	case SECDSAOpSign:
		if !has(true, true, false, false) || len(op.Hash) != 32 {
			return bad("members")
		}
	case SECDSAOpECDH:
		if !has(true, false, true, false) {
			return bad("members")
		}
	case SECDSAOpDelete:
		if !has(true, false, false, false) {
			return bad("members")
		}
	case SECDSAOpPINChange:
		if !has(false, false, false, true) {
			return bad("members")
		}
	default:
		return bad("unknown op")
	}
	return op, nil
}

// Marshal encodes the instruction.
func (o SECDSAOp) Marshal() ([]byte, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("r2ps: secdsa instruction: %w", err)
	}
	return b, nil
}

// SECDSAResult is the result a transaction record carries (JSON): the
// op, whether it was done, and its public outcome; never a secret.
type SECDSAResult struct {
	Op        string `json:"op"`
	OK        bool   `json:"ok"`
	Error     string `json:"error,omitempty"`      // an R2PS code
	KID       string `json:"kid,omitempty"`        // p256_generate, sign_ecdsa, agree_ecdh, delete_key
	PublicKey Bytes  `json:"public_key,omitempty"` // p256_generate: SEC 1 uncompressed
	Signature Bytes  `json:"signature,omitempty"`  // sign_ecdsa: ASN.1 DER
	// Response is pin_change's activation response
	// (secdsa.ActivationResponse.Marshal()).
	Response Bytes `json:"response,omitempty"`
}
