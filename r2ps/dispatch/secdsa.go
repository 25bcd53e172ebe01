package dispatch

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/ecp256"
	"github.com/wsca/wsca/evidence/event"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/secdsa"
	"github.com/wsca/wsca/wscd"
)

// secdsaOperation runs the SECDSA types (docs/secdsa.md "Wire"): 1FA
// requests signed by the unit's CSK, which is also the SECDSA device key
// U; the PIN is checked by the SECDSA instruction itself.
func (d *Dispatcher) secdsaOperation(ctx context.Context, r *request) result {
	s := d.cfg.SECDSA
	switch r.req.Type {
	case r2ps.TypeSECDSANonce:
		var req r2ps.EmptyRequest
		if err := r2ps.DecodeData(r.req.Data, &req); err != nil {
			return result{err: err}
		}
		nonce, err := s.Nonce(ctx, r.unit)
		if err != nil {
			return result{err: err}
		}
		return result{data: r2ps.SECDSANonceResponse{Success: true, Nonce: nonce, AccountID: []byte(r.unit)}}

	case r2ps.TypeSECDSAActivateBegin:
		var req r2ps.SECDSAActivateRequest
		if err := r2ps.DecodeData(r.req.Data, &req); err != nil {
			return result{err: err}
		}
		resp, err := s.Activate(ctx, r.unit, r.signer, req.Request)
		if err != nil {
			return result{err: err}
		}
		return result{data: r2ps.SECDSAActivateResponse{Success: true, Response: resp.Marshal()}}

	case r2ps.TypeSECDSAActivateFinish:
		var req r2ps.SECDSAFinishRequest
		if err := r2ps.DecodeData(r.req.Data, &req); err != nil {
			return result{err: err}
		}
		ic, err := s.Finish(ctx, r.unit, r.signer, req.YPrime)
		if err != nil {
			return result{err: err}
		}
		pk, err := s.ProviderKey().Bytes()
		if err != nil {
			return result{err: err}
		}
		// The activation's event: the unit's PIN is bound (first
		// activation or a PIN change).
		d.recordEvent(ctx, event.Event{Type: event.Enrolled, Unit: r.unit, Context: wscd.SECDSAContext, Data: []byte(secdsaActivationEvent)})
		return result{data: r2ps.SECDSAFinishResponse{Success: true, Cert: ic.Marshal(), ProviderKey: pk}}
	}
	var req r2ps.SECDSAInstructionRequest
	if err := r2ps.DecodeData(r.req.Data, &req); err != nil {
		return result{err: err}
	}
	a, err := s.Authenticate(ctx, r.unit, r.signer, req.Instruction)
	if err != nil {
		return result{err: err}
	}
	// Authenticated: whatever happens now is recorded.
	res, secret := d.secdsaExecute(ctx, r, a)
	out, err := json.Marshal(res)
	if err != nil {
		return result{err: err}
	}
	tr, err := s.Record(a, out)
	if err != nil {
		return result{err: err}
	}
	// The record's hash (what the provider signed) is its evidence: a
	// third party holding the record finds the leaf by it.
	d.logger(ctx).InfoContext(ctx, "secdsa instruction executed", "unit", r.unit, "sn", tr.SN, "op", res.Op, "ok", res.OK,
		"record", hexLower(tr.Hash()))
	d.recordEvent(ctx, event.Event{Type: event.SECDSARecord, Unit: r.unit, Context: wscd.SECDSAContext, Data: tr.Hash()})
	return result{data: r2ps.SECDSAInstructionResponse{Success: true, Result: out, Secret: secret, Record: tr.Marshal()}}
}

// secdsaActivationEvent is the data of the enrolled event a SECDSA
// activation records (docs/evidence.md).
const secdsaActivationEvent = "secdsa_activation"

// recordEvent appends e to the evidence log, if there is one; a failure
// is logged and counted there and fails nothing (the change happened).
func (d *Dispatcher) recordEvent(ctx context.Context, e event.Event) {
	if d.cfg.Evidence != nil {
		d.cfg.Evidence.Record(ctx, e)
	}
}

// secdsaExecute runs an authenticated instruction with the unit's keys in
// the SECDSA context and says what happened; a secret result (ECDH) is
// returned apart, for the wallet only.
func (d *Dispatcher) secdsaExecute(ctx context.Context, r *request, a *wscd.Authenticated) (r2ps.SECDSAResult, []byte) {
	op, err := r2ps.ParseSECDSAOp(a.Executed.Instruction)
	res := r2ps.SECDSAResult{Op: op.Op}
	fail := func(err error) (r2ps.SECDSAResult, []byte) {
		res.OK, res.Error = false, codeOf(err)
		d.logger(ctx).InfoContext(ctx, "secdsa instruction failed", "unit", r.unit, "op", op.Op, "err", err)
		return res, nil
	}
	if err != nil {
		return fail(err)
	}
	keys := d.cfg.Keys.In(wscd.SECDSAContext, d.cfg.KeyQuota)
	res.KID = op.KID
	switch op.Op {
	case r2ps.SECDSAOpGenerate:
		k, err := keys.Generate(ctx, r.unit)
		if err != nil {
			return fail(err)
		}
		pub, err := k.Public.Bytes()
		if err != nil {
			return fail(err)
		}
		res.KID, res.PublicKey = string(k.KID), pub
	case r2ps.SECDSAOpSign:
		raw, err := keys.Sign(ctx, r.unit, op.KID, op.Hash)
		if err != nil {
			return fail(err)
		}
		if res.Signature, err = ecp256.RawToDER(raw); err != nil {
			return fail(err)
		}
	case r2ps.SECDSAOpECDH:
		peer, err := device.ParsePoint(op.Peer)
		if err != nil {
			return fail(&r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "peer point", Err: err})
		}
		z, err := keys.ECDH(ctx, r.unit, op.KID, peer)
		if err != nil {
			return fail(err)
		}
		res.OK = true
		return res, z
	case r2ps.SECDSAOpDelete:
		if err := keys.Destroy(ctx, r.unit, op.KID); err != nil {
			return fail(err)
		}
	case r2ps.SECDSAOpPINChange:
		resp, err := d.cfg.SECDSA.PINChange(ctx, a, r.signer, op.Activation)
		if err != nil {
			return fail(err)
		}
		res.Response = resp.Marshal()
	}
	res.OK = true
	return res, nil
}

// secdsaCode maps the SECDSA service's errors to codes.
func secdsaCode(err error) (string, bool) {
	switch {
	case errors.Is(err, wscd.ErrSECDSAAuth):
		return r2ps.CodeUnauthorized, true
	case errors.Is(err, wscd.ErrSECDSALocked):
		return r2ps.CodeAccessDenied, true
	case errors.Is(err, wscd.ErrSECDSANotActivated), errors.Is(err, wscd.ErrSECDSAActivated):
		return r2ps.CodeIllegalState, true
	case errors.Is(err, secdsa.ErrReplay):
		return r2ps.CodeAccessDenied, true
	case errors.Is(err, wscd.ErrSECDSARefused):
		return r2ps.CodeIllegalRequestData, true
	}
	return "", false
}
