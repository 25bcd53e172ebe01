package dispatch

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// cak is the key a 1FA response is encrypted to, with its thumbprint.
type cak struct {
	pub *ecdh.PublicKey
	kid string
}

func hexLower(b []byte) string { return hex.EncodeToString(b) }

// cakFromJWK validates a client agreement key sent as a JWK.
func cakFromJWK(j *jose.JSONWebKey) (*cak, error) {
	if j == nil || !j.Valid() || !j.IsPublic() {
		return nil, fmt.Errorf("%w: cak must be a public P-256 JWK", r2ps.ErrMalformed)
	}
	pub, ok := j.Key.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: cak must be a P-256 key", r2ps.ErrMalformed)
	}
	b, err := pub.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: cak: %v", r2ps.ErrMalformed, err)
	}
	p, err := device.ParsePoint(b)
	if err != nil {
		return nil, fmt.Errorf("%w: cak: %v", r2ps.ErrMalformed, err)
	}
	return &cak{pub: p, kid: r2ps.Thumbprint(pub)}, nil
}

// registeredCAK returns the unit's agreement key from the store.
func (d *Dispatcher) registeredCAK(ctx context.Context, unit string) *cak {
	ck, err := d.cfg.Store.GetUnitClientKey(ctx, unit, store.UsageAgree)
	if err != nil {
		return nil
	}
	p, err := device.ParsePoint(ck.PublicKey)
	if err != nil {
		return nil
	}
	return &cak{pub: p, kid: ck.KID}
}

// dispatch1FA runs a 1FA request and says which key to answer to.
func (d *Dispatcher) dispatch1FA(ctx context.Context, c caller) (result, *cak) {
	if err := modeError(c.req.Type, r2ps.Mode1FA); err != nil {
		return result{err: err}, d.registeredCAK(ctx, c.unit)
	}
	var tr r2ps.TFARequest
	if err := r2ps.DecodeData(c.req.Data, &tr); err != nil {
		return result{err: err}, d.registeredCAK(ctx, c.unit)
	}
	if tr.Protocol != r2ps.ProtocolOPAQUE {
		return result{err: &r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "only the opaque protocol is served"}}, d.registeredCAK(ctx, c.unit)
	}
	switch c.req.Type {
	case r2ps.Type2FARegistration:
		to, err := cakFromJWK(tr.CAK)
		if err != nil {
			// No key to answer to: the caller refuses in the clear.
			return result{err: err}, nil
		}
		return d.register(ctx, c, tr, to), to
	case r2ps.TypeCreateSession:
		return d.createSession(ctx, c, tr), d.registeredCAK(ctx, c.unit)
	}
	return result{err: r2ps.ErrUnsupportedType}, d.registeredCAK(ctx, c.unit)
}

// register runs 2fa_registration (§4.3.4.2): evaluate answers the OPAQUE
// registration request; finalize spends the activation code and binds the
// self-signed CSK, the CAK (to; nil for compat clients) and the record to
// the unit in one transaction.
func (d *Dispatcher) register(ctx context.Context, c caller, tr r2ps.TFARequest, to *cak) result {
	requester := "csk:" + c.cskKID
	switch tr.State {
	case r2ps.StateEvaluate:
		if len(tr.Authorization) != 0 {
			return result{err: &r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "authorization belongs in finalize"}}
		}
		resp, err := d.cfg.PIN.RegistrationResponse(ctx, c.unit, c.context, requester, tr.PData)
		if err != nil {
			return result{err: err}
		}
		return result{data: r2ps.TFAResponse{Success: true, PData: resp}}
	case r2ps.StateFinalize:
		if len(tr.Authorization) == 0 || tr.AuthorizationType != "" && tr.AuthorizationType != r2ps.AuthorizationTypeOTP {
			return result{err: &r2ps.Error{Code: r2ps.CodeUnauthorized, Msg: "an activation code is required"}}
		}
		rec, err := d.cfg.PIN.FinishRegistration(ctx, c.unit, c.context, requester, tr.PData)
		if err != nil {
			return result{err: err}
		}
		cskBytes, err := c.csk.Bytes()
		if err != nil {
			return result{err: fmt.Errorf("%w: csk", r2ps.ErrMalformed)}
		}
		e := store.Enrolment{
			CodeHash: wscd.HashActivationCode(string(tr.Authorization)), UnitID: c.unit, Context: c.context,
			SigningKey: store.ClientKey{KID: c.cskKID, UnitID: c.unit, Usage: store.UsageSign, PublicKey: cskBytes},
			Record:     rec, Now: d.cfg.Now(),
		}
		if to != nil {
			e.AgreementKey = store.ClientKey{KID: to.kid, UnitID: c.unit, Usage: store.UsageAgree, PublicKey: to.pub.Bytes()}
		}
		purpose, err := d.cfg.Store.Enrol(ctx, e)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrUnitNotFound) {
			return result{err: &r2ps.Error{Code: r2ps.CodeUnauthorized, Msg: "activation code not valid", Err: err}}
		}
		if errors.Is(err, store.ErrExists) {
			return result{err: &r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "client key already registered", Err: err}}
		}
		if err != nil {
			return result{err: err}
		}
		d.log.InfoContext(ctx, "wallet unit enrolled", "unit", c.unit, "context", c.context, "purpose", purpose)
		return result{data: r2ps.TFAResponse{Success: true}}
	}
	return result{err: &r2ps.Error{Code: r2ps.CodeIllegalState, Msg: "unknown state"}}
}

// createSession runs create_session with OPAQUE (§4.3.4.1, §4.3.5.1.1).
func (d *Dispatcher) createSession(ctx context.Context, c caller, tr r2ps.TFARequest) result {
	if u, err := d.cfg.Keys.Unit(ctx, c.unit); err != nil || u.State != store.UnitActive {
		return result{err: wscd.ErrUnitNotActive}
	}
	switch tr.State {
	case r2ps.StateEvaluate:
		opts, err := d.sessionOptions(tr)
		if err != nil {
			return result{err: err}
		}
		id, ke2, err := d.cfg.PIN.LoginStart(ctx, c.unit, c.context, tr.PData, opts)
		if err != nil {
			return result{err: err}
		}
		return result{data: r2ps.TFAResponse{Success: true, SessionID: id, PData: ke2}}
	case r2ps.StateFinalize:
		se, err := d.cfg.PIN.LoginFinish(ctx, tr.SessionID, c.unit, c.context, tr.PData)
		if err != nil {
			return result{err: err}
		}
		return result{data: r2ps.TFAResponse{Success: true, SessionID: se.ID, Task: se.Task, SessionExpirationTime: se.ExpiresAt.Unix()}}
	}
	return result{err: &r2ps.Error{Code: r2ps.CodeIllegalState, Msg: "unknown state"}}
}

// sessionOptions turns the requested task and duration into login options:
// a 2fa_update session allows one PIN change; a sign: session one signature
// per listed hash.
func (d *Dispatcher) sessionOptions(tr r2ps.TFARequest) (pin.LoginOptions, error) {
	dur := d.cfg.SessionDuration
	if tr.SessionDuration < 0 {
		return pin.LoginOptions{}, fmt.Errorf("%w: negative session_duration", r2ps.ErrMalformed)
	}
	if tr.SessionDuration > 0 {
		dur = min(time.Duration(tr.SessionDuration)*time.Second, d.cfg.MaxSession)
	}
	opts := pin.LoginOptions{Task: tr.Task, Uses: store.Unlimited, TTL: dur}
	switch {
	case tr.Task == "":
	case tr.Task == r2ps.Task2FAUpdate:
		opts.Uses = 1
	case len(tr.Task) > len(r2ps.TaskSignPrefix) && tr.Task[:len(r2ps.TaskSignPrefix)] == r2ps.TaskSignPrefix:
		n, err := checkSignTask(tr.Task[len(r2ps.TaskSignPrefix):])
		if err != nil {
			return pin.LoginOptions{}, err
		}
		opts.Uses = n
	default:
		return pin.LoginOptions{}, &r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "unknown task"}
	}
	return opts, nil
}

// checkSignTask checks "<hex>,<hex>…" (lowercase SHA-256 hashes, at most 64)
// and returns how many there are.
func checkSignTask(list string) (int, error) {
	bad := &r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "a sign task lists lowercase hex SHA-256 hashes"}
	n := 0
	for _, h := range splitComma(list) {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 32 || hexLower(b) != h {
			return 0, bad
		}
		n++
	}
	if n == 0 || n > 64 {
		return 0, bad
	}
	return n, nil
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

// update runs 2fa_update (§4.3.4.3) in a session bound to that task: the
// registration exchange again, under the session, and the session ends
// when the new record is stored.
func (d *Dispatcher) update(ctx context.Context, c caller, tr r2ps.TFARequest) result {
	if tr.Protocol != r2ps.ProtocolOPAQUE {
		return result{err: &r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "only the opaque protocol is served"}}
	}
	requester := "session:" + hexLower(sessionHash(c.session.ID))
	switch tr.State {
	case r2ps.StateEvaluate:
		resp, err := d.cfg.PIN.RegistrationResponse(ctx, c.unit, c.context, requester, tr.PData)
		if err != nil {
			return result{err: err}
		}
		return result{data: r2ps.TFAResponse{Success: true, PData: resp}}
	case r2ps.StateFinalize:
		rec, err := d.cfg.PIN.FinishRegistration(ctx, c.unit, c.context, requester, tr.PData)
		if err != nil {
			return result{err: err}
		}
		if err := d.cfg.PIN.Use(ctx, c.session.ID); err != nil {
			return result{err: err}
		}
		if err := d.cfg.Store.ReplacePINRecord(ctx, c.unit, c.context, rec, d.cfg.Now()); err != nil {
			return result{err: err}
		}
		if err := d.cfg.PIN.End(ctx, c.session.ID); err != nil {
			d.log.WarnContext(ctx, "ending the PIN-change session failed", "unit", c.unit, "err", err)
		}
		d.log.InfoContext(ctx, "PIN changed", "unit", c.unit, "context", c.context)
		return result{data: r2ps.TFAResponse{Success: true}}
	}
	return result{err: &r2ps.Error{Code: r2ps.CodeIllegalState, Msg: "unknown state"}}
}
