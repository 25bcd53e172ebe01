package client

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wsca/wsca/ecp256"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/secdsa"
)

// The wallet side of SECDSA over R2PS (docs/secdsa.md, "Wire"): four 1FA
// types signed by the client signing key (CSK), which is also the SECDSA
// device key U. The PIN never leaves the phone: it feeds the PIN binder,
// and the server checks it with one HSM derive per instruction.

// ErrSECDSARecord: the server's answer to an instruction does not come
// with a transaction record that verifies for that very instruction.
var ErrSECDSARecord = errors.New("client: secdsa: the server's transaction record does not verify")

// SECDSAKeys are the phone's SECDSA keys.
type SECDSAKeys struct {
	// Binder turns the PIN into the PIN key (the phone's secure hardware;
	// secdsa.SoftwarePINBinder stands in for it).
	Binder secdsa.PINBinder
	// Device is the possession key U. It must be the client's signing
	// key, which the server requires; nil uses the client's SigningKey.
	Device secdsa.DeviceKey
}

// device returns the device key, checked to be the CSK.
func (c *Client) secdsaDevice(k SECDSAKeys) (secdsa.DeviceKey, error) {
	if k.Binder == nil {
		return nil, errors.New("client: secdsa: no PIN binder")
	}
	if k.Device == nil {
		return secdsa.SoftwareDeviceKeyFrom(c.cfg.SigningKey)
	}
	if !k.Device.Public().Equal(&c.cfg.SigningKey.PublicKey) {
		return nil, errors.New("client: secdsa: the device key is not the client signing key")
	}
	return k.Device, nil
}

// SECDSABinding is what activation leaves with the wallet: the unit's
// Internal Certificate and the provider key that signs it and every
// transaction record. Both are public; a verifier needs them.
type SECDSABinding struct {
	Cert     *secdsa.InternalCert
	Provider *ecdsa.PublicKey
}

// SECDSANonce asks for a provider activation nonce; accountID is the
// account the activation request must name (the unit id).
func (c *Client) SECDSANonce(ctx context.Context) (nonce, accountID []byte, err error) {
	var out r2ps.SECDSANonceResponse
	if err := c.call1FA(ctx, r2ps.TypeSECDSANonce, r2ps.EmptyRequest{}, &out, false); err != nil {
		return nil, nil, err
	}
	return out.Nonce, out.AccountID, nil
}

// activation is a begun activation: the request and its blinding state.
type activation struct {
	req   *secdsa.ActivationRequest
	state *secdsa.ActivationState
}

func (c *Client) beginActivation(ctx context.Context, keys SECDSAKeys, pin []byte) (*activation, error) {
	dev, err := c.secdsaDevice(keys)
	if err != nil {
		return nil, err
	}
	nonce, account, err := c.SECDSANonce(ctx)
	if err != nil {
		return nil, err
	}
	req, state, err := secdsa.BeginActivation(rand.Reader, keys.Binder, dev, pin, account, nonce)
	if err != nil {
		return nil, fmt.Errorf("client: secdsa: %w", err)
	}
	return &activation{req: req, state: state}, nil
}

// finishActivation unblinds the provider's response, sends Y' and checks
// the Internal Certificate it gets back. pinned, if set, must be the
// provider key the server names.
func (c *Client) finishActivation(ctx context.Context, a *activation, response []byte, pinned *ecdsa.PublicKey) (*SECDSABinding, error) {
	resp, err := secdsa.ParseActivationResponse(response)
	if err != nil {
		return nil, fmt.Errorf("client: secdsa: %w", err)
	}
	yp, err := a.state.Finish(resp)
	if err != nil {
		return nil, fmt.Errorf("client: secdsa: %w", err)
	}
	var fr r2ps.SECDSAFinishResponse
	if err := c.call1FA(ctx, r2ps.TypeSECDSAActivateFinish, r2ps.SECDSAFinishRequest{YPrime: yp}, &fr, false); err != nil {
		return nil, err
	}
	return acceptFinish(a.state, fr, pinned)
}

// acceptFinish checks the Internal Certificate of secdsa_activate_finish
// against the activation (and the provider key against pinned, if set).
func acceptFinish(state *secdsa.ActivationState, fr r2ps.SECDSAFinishResponse, pinned *ecdsa.PublicKey) (*SECDSABinding, error) {
	ic, err := secdsa.ParseInternalCert(fr.Cert)
	if err != nil {
		return nil, fmt.Errorf("client: secdsa: internal certificate: %w", err)
	}
	prov, err := ecp256.ParsePublicKey(fr.ProviderKey)
	if err != nil {
		return nil, fmt.Errorf("client: secdsa: provider key: %w", err)
	}
	if pinned != nil && !pinned.Equal(prov) {
		return nil, errors.New("client: secdsa: the server names another provider key")
	}
	if err := state.Accept(ic, prov); err != nil {
		return nil, fmt.Errorf("client: secdsa: %w", err)
	}
	return &SECDSABinding{Cert: ic, Provider: prov}, nil
}

// SECDSAActivate binds the PIN to the unit (Protocol 4): a nonce, the
// blinded request (secdsa_activate_begin), Y' (secdsa_activate_finish),
// and the Internal Certificate checked against the activation. The
// provider key is the server's word: compare it with one from a trusted
// channel where there is one (a verifier of records pins it).
func (c *Client) SECDSAActivate(ctx context.Context, keys SECDSAKeys, pin []byte) (*SECDSABinding, error) {
	a, err := c.beginActivation(ctx, keys, pin)
	if err != nil {
		return nil, err
	}
	var ar r2ps.SECDSAActivateResponse
	if err := c.call1FA(ctx, r2ps.TypeSECDSAActivateBegin, r2ps.SECDSAActivateRequest{Request: a.req.Marshal()}, &ar, false); err != nil {
		return nil, err
	}
	return c.finishActivation(ctx, a, ar.Response, nil)
}

// SECDSAOutcome is an executed instruction: the provider's result, the
// secret result (ECDH) that travels only in the encrypted response, and
// the transaction record, verified.
type SECDSAOutcome struct {
	Result r2ps.SECDSAResult
	Secret []byte
	Record *secdsa.TRecord
}

// SECDSAInstruction signs op with SECDSA under pin and serial number sn
// (GenESInstruction; sn strictly above every earlier one of the unit) and
// has the server execute it. additional is the text the user consented to
// (it goes into the record with the instruction). The answer's record is
// checked with secdsa.VerifyTRecord and must hold this sn, instruction,
// additional data and result (else ErrSECDSARecord).
//
// A wrong PIN is an *Error with r2ps.CodeUnauthorized (counted by the
// server), a replayed sn or a locked binding r2ps.CodeAccessDenied. An
// instruction that was authenticated but failed to execute returns its
// outcome (with its record) and an *Error with the result's code.
func (c *Client) SECDSAInstruction(ctx context.Context, b *SECDSABinding, keys SECDSAKeys, pin []byte, sn uint64, op r2ps.SECDSAOp, additional []byte) (*SECDSAOutcome, error) {
	if b == nil || b.Cert == nil || b.Provider == nil {
		return nil, errors.New("client: secdsa: no binding (activate first)")
	}
	dev, err := c.secdsaDevice(keys)
	if err != nil {
		return nil, err
	}
	ins, err := op.Marshal()
	if err != nil {
		return nil, err
	}
	x, err := secdsa.GenESInstruction(rand.Reader, b.Cert, keys.Binder, dev, pin, sn, ins, additional)
	if err != nil {
		return nil, fmt.Errorf("client: secdsa: %w", err)
	}
	var resp r2ps.SECDSAInstructionResponse
	if err := c.call1FA(ctx, r2ps.TypeSECDSAInstruction, r2ps.SECDSAInstructionRequest{Instruction: x.Marshal()}, &resp, false); err != nil {
		return nil, err
	}
	return checkSECDSAAnswer(b, sn, op.Op, ins, additional, resp)
}

// checkSECDSAAnswer checks an instruction's answer: a record that
// verifies under the binding and holds the instruction as sent and the
// answer's result, which must be the op's.
func checkSECDSAAnswer(b *SECDSABinding, sn uint64, op string, ins, additional []byte, resp r2ps.SECDSAInstructionResponse) (*SECDSAOutcome, error) {
	tr, err := secdsa.ParseTRecord(resp.Record)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSECDSARecord, err)
	}
	if err := secdsa.VerifyTRecord(b.Cert, b.Provider, tr); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSECDSARecord, err)
	}
	if tr.SN != sn || !bytes.Equal(tr.Instruction, ins) || !bytes.Equal(tr.Additional, additional) || !bytes.Equal(tr.Result, resp.Result) {
		return nil, fmt.Errorf("%w: it records another instruction or result", ErrSECDSARecord)
	}
	out := &SECDSAOutcome{Secret: resp.Secret, Record: tr}
	if err := json.Unmarshal(resp.Result, &out.Result); err != nil || out.Result.Op != op {
		return nil, fmt.Errorf("%w: the result is not the instruction's", ErrSECDSARecord)
	}
	if len(out.Secret) > 0 && op != r2ps.SECDSAOpECDH {
		return nil, errors.New("client: secdsa: a secret result for an op that has none")
	}
	if op == r2ps.SECDSAOpECDH && out.Result.OK && len(out.Secret) != 32 {
		return nil, errors.New("client: secdsa: the shared secret is not 32 bytes")
	}
	if !out.Result.OK {
		code := out.Result.Error
		if !r2ps.IsCode(code) {
			code = r2ps.CodeServerError
		}
		return out, &Error{Code: code, Status: statusOK}
	}
	return out, nil
}

// SECDSAChangePIN changes the PIN: an activation request under newPIN
// (with a fresh nonce) carried by a pin_change instruction under oldPIN
// with serial number sn, then secdsa_activate_finish. It returns the new
// binding (the old one no longer works) and the instruction's outcome.
// The provider key must stay the same.
func (c *Client) SECDSAChangePIN(ctx context.Context, b *SECDSABinding, keys SECDSAKeys, oldPIN, newPIN []byte, sn uint64) (*SECDSABinding, *SECDSAOutcome, error) {
	if b == nil || b.Provider == nil {
		return nil, nil, errors.New("client: secdsa: no binding (activate first)")
	}
	a, err := c.beginActivation(ctx, keys, newPIN)
	if err != nil {
		return nil, nil, err
	}
	out, err := c.SECDSAInstruction(ctx, b, keys, oldPIN, sn, r2ps.SECDSAOp{Op: r2ps.SECDSAOpPINChange, Activation: a.req.Marshal()}, nil)
	if err != nil {
		return nil, out, err
	}
	nb, err := c.finishActivation(ctx, a, out.Result.Response, b.Provider)
	return nb, out, err
}
