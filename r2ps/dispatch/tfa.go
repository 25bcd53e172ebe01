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
	"github.com/wsca/wsca/evidence/event"
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

// registeredCAK returns the unit's agreement key from the store if its MAC
// verifies (a key planted in the database would otherwise read responses).
func (d *Dispatcher) registeredCAK(ctx context.Context, unit string) *cak {
	ck, err := d.cfg.Store.GetUnitClientKey(ctx, unit, store.UsageAgree)
	if err != nil {
		return nil
	}
	return d.checkedCAK(ctx, ck, unit)
}

// checkedCAK returns the agreement key of a row if its MAC verifies.
func (d *Dispatcher) checkedCAK(ctx context.Context, ck store.ClientKey, unit string) *cak {
	if _, err := d.clientKey(ctx, ck, unit, store.UsageAgree, ProfileStrict); err != nil {
		return nil
	}
	p, err := device.ParsePoint(ck.PublicKey)
	if err != nil {
		return nil
	}
	return &cak{pub: p, kid: ck.KID}
}

// register runs 2fa_registration (§4.3.4.2): evaluate answers the OPAQUE
// registration request; finalize spends the activation code and binds the
// self-signed CSK, the CAK (to; nil for compat clients) and the record to
// the unit in one transaction. A compat registration signed by the CSK an
// operator provisioned needs no code, but only sets the unit's first PIN
// in the context: changing it takes a 2fa_update session.
func (d *Dispatcher) register(ctx context.Context, r *request, tr r2ps.TFARequest, to *cak) result {
	requester := "csk:" + r.cskKID
	provisioned := r.profile == ProfileCompat && !r.selfSigned
	if provisioned {
		if _, err := d.cfg.Store.GetPINRecord(ctx, r.unit, r.context); err == nil {
			return result{err: &r2ps.Error{Code: r2ps.CodeIllegalState, Msg: "the unit already has a PIN in this context"}}
		} else if !errors.Is(err, store.ErrNotFound) {
			return result{err: err}
		}
		requester = "provisioned:" + r.unit
	}
	switch tr.State {
	case r2ps.StateEvaluate:
		if len(tr.Authorization) != 0 {
			return result{err: &r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "authorization belongs in finalize"}}
		}
		resp, err := d.cfg.PIN.RegistrationResponse(ctx, r.unit, r.context, requester, tr.PData)
		if err != nil {
			return result{err: err}
		}
		return result{data: r2ps.TFAResponse{Success: true, PData: resp}}
	case r2ps.StateFinalize:
		if provisioned {
			return d.registerProvisioned(ctx, r, tr, requester)
		}
		if len(tr.Authorization) == 0 || tr.AuthorizationType != "" && tr.AuthorizationType != r2ps.AuthorizationTypeOTP {
			return result{err: &r2ps.Error{Code: r2ps.CodeUnauthorized, Msg: "an activation code is required"}}
		}
		rec, err := d.cfg.PIN.FinishRegistration(ctx, r.unit, r.context, requester, tr.PData)
		if err != nil {
			return result{err: err}
		}
		stored := false
		defer func() {
			if !stored { // its HSM OPRF key is named nowhere now
				d.cfg.PIN.DiscardRecord(ctx, r.unit, r.context, rec)
			}
		}()
		cskBytes, err := r.csk.Bytes()
		if err != nil {
			return result{err: fmt.Errorf("%w: csk", r2ps.ErrMalformed)}
		}
		signing := store.ClientKey{KID: r.cskKID, UnitID: r.unit, Usage: store.UsageSign, PublicKey: cskBytes, Profile: r.profile}
		signing.MAC = wscd.ClientKeyMAC(d.sealer, signing)
		if signing.ShareMAC, err = wscd.ShareMAC(ctx, d.cfg.Share, signing); err != nil {
			return result{err: err}
		}
		codeHash, err := d.cfg.ServerKeys.HashActivationCode(ctx, string(tr.Authorization))
		if err != nil {
			return result{err: err}
		}
		e := store.Enrolment{
			CodeHash: codeHash, UnitID: r.unit, Context: r.context,
			SigningKey: signing, Record: rec, Now: d.cfg.Now(),
		}
		if to != nil {
			e.AgreementKey = store.ClientKey{KID: to.kid, UnitID: r.unit, Usage: store.UsageAgree, PublicKey: to.pub.Bytes(), Profile: r.profile}
			e.AgreementKey.MAC = wscd.ClientKeyMAC(d.sealer, e.AgreementKey)
			if e.AgreementKey.ShareMAC, err = wscd.ShareMAC(ctx, d.cfg.Share, e.AgreementKey); err != nil {
				return result{err: err}
			}
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
		stored = true
		// A re-enrolment retired the old record's HSM OPRF key.
		d.cfg.PIN.DestroyRetiredOPRFKeys(ctx, r.unit)
		d.logger(ctx).InfoContext(ctx, "wallet unit enrolled", "unit", r.unit, "context", r.context, "purpose", purpose, "profile", r.profile)
		if d.cfg.Evidence != nil {
			d.cfg.Evidence.Record(ctx, event.Event{Type: event.Enrolled, Time: e.Now, Unit: r.unit, Context: r.context, Data: []byte(purpose)})
		}
		return result{data: r2ps.TFAResponse{Success: true}}
	}
	return result{err: &r2ps.Error{Code: r2ps.CodeIllegalState, Msg: "unknown state"}}
}

// registerProvisioned stores the first PIN record of a compat unit whose
// CSK an operator provisioned.
func (d *Dispatcher) registerProvisioned(ctx context.Context, r *request, tr r2ps.TFARequest, requester string) result {
	rec, err := d.cfg.PIN.FinishRegistration(ctx, r.unit, r.context, requester, tr.PData)
	if err != nil {
		return result{err: err}
	}
	if err := d.cfg.PIN.SetFirstRecord(ctx, r.unit, r.context, rec); err != nil {
		d.cfg.PIN.DiscardRecord(ctx, r.unit, r.context, rec)
		return result{err: err}
	}
	d.logger(ctx).InfoContext(ctx, "PIN registered under a provisioned key", "unit", r.unit, "context", r.context)
	return result{data: r2ps.TFAResponse{Success: true}}
}

// createSession runs create_session with OPAQUE (§4.3.4.1, §4.3.5.1.1).
func (d *Dispatcher) createSession(ctx context.Context, r *request, tr r2ps.TFARequest) result {
	switch tr.State {
	case r2ps.StateEvaluate:
		opts, err := d.sessionOptions(tr)
		if err != nil {
			return result{err: err}
		}
		// A suspended unit opens only the session that lifts the
		// suspension; an active one never opens that session.
		if (r.unitState == store.UnitSuspended) != (tr.Task == r2ps.TaskUnsuspend) {
			return result{err: &r2ps.Error{Code: r2ps.CodeAccessDenied, Msg: "the unit is " + string(r.unitState) + "; task " + tr.Task}}
		}
		if r.profile == ProfileStrict {
			// The session id is a ticket carrying the CSK that opened it
			// (ticket.go).
			if opts.Binding, err = ticketBinding(r.signer); err != nil {
				return result{err: err}
			}
		}
		id, ke2, err := d.cfg.PIN.LoginStart(ctx, r.unit, r.context, tr.PData, opts)
		if err != nil {
			return result{err: err}
		}
		return result{data: r2ps.TFAResponse{Success: true, SessionID: id, PData: ke2}}
	case r2ps.StateFinalize:
		se, err := d.cfg.PIN.LoginFinish(ctx, tr.SessionID, r.unit, r.context, tr.PData)
		if err != nil {
			return result{err: err}
		}
		if (r.unitState == store.UnitSuspended) != (se.Task == r2ps.TaskUnsuspend) {
			if eerr := d.cfg.PIN.End(ctx, se.ID); eerr != nil {
				d.logger(ctx).ErrorContext(ctx, "ending a session of a suspended unit", "unit", r.unit, "err", eerr)
			}
			return result{err: &r2ps.Error{Code: r2ps.CodeAccessDenied, Msg: "the unit is " + string(r.unitState)}}
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
		// Compare in seconds first: a huge value would overflow Duration.
		if tr.SessionDuration >= int64(d.cfg.MaxSession/time.Second) {
			dur = d.cfg.MaxSession
		} else {
			dur = time.Duration(tr.SessionDuration) * time.Second
		}
	}
	opts := pin.LoginOptions{Task: tr.Task, Uses: store.Unlimited, TTL: dur, RequireRecord: true}
	switch {
	case tr.Task == "":
	case tr.Task == r2ps.Task2FAUpdate, tr.Task == r2ps.TaskUnsuspend:
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
// registration exchange again, under the session. Storing the new record
// ends every session and pending login of the unit in the same
// transaction, this one included.
func (d *Dispatcher) update(ctx context.Context, r *request, tr r2ps.TFARequest) result {
	if err := d.checkTask(r); err != nil {
		return result{err: err}
	}
	requester := "session:" + hexLower(sessionHash(r.session.ID))
	switch tr.State {
	case r2ps.StateEvaluate:
		resp, err := d.cfg.PIN.RegistrationResponse(ctx, r.unit, r.context, requester, tr.PData)
		if err != nil {
			return result{err: err}
		}
		return result{data: r2ps.TFAResponse{Success: true, PData: resp}}
	case r2ps.StateFinalize:
		rec, err := d.cfg.PIN.FinishRegistration(ctx, r.unit, r.context, requester, tr.PData)
		if err != nil {
			return result{err: err}
		}
		if err := d.cfg.PIN.Use(ctx, r.session.ID); err != nil {
			d.cfg.PIN.DiscardRecord(ctx, r.unit, r.context, rec)
			return result{err: err}
		}
		if err := d.cfg.Store.ReplacePINRecord(ctx, r.unit, r.context, rec, d.cfg.Now()); err != nil {
			d.cfg.PIN.DiscardRecord(ctx, r.unit, r.context, rec)
			return result{err: err}
		}
		// The old record's HSM OPRF key was retired with it.
		d.cfg.PIN.DestroyRetiredOPRFKeys(ctx, r.unit)
		d.logger(ctx).InfoContext(ctx, "PIN changed; every session of the unit ended", "unit", r.unit, "context", r.context)
		return result{data: r2ps.TFAResponse{Success: true}}
	}
	return result{err: &r2ps.Error{Code: r2ps.CodeIllegalState, Msg: "unknown state"}}
}
