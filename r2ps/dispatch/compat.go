package dispatch

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/store"
)

// serveCompat answers a go-r2ps-service request: a bare JWS whose payload
// names the unit, context and session (docs/protocol.md §8). It loosens
// encodings, not checks: the JWS must verify with the unit's registered,
// MAC-checked CSK of the compat profile (or, for 2fa_registration only, a
// key in its header), iat and nonce are enforced, and 2FA types need a
// verified session of the same unit and context, which a bare JWS may name
// only when the operator chose CompatBearer.
func (d *Dispatcher) serveCompat(ctx context.Context, body []byte) Reply {
	return d.answerCompat(ctx, body, nil)
}

// serveCompatJWE answers a compat request in go-r2ps-service's 2FA JWE
// (A256KW under a KEK derived from the session key): opening it proves the
// session key; the answer goes back in the same JWE, server to client.
func (d *Dispatcher) serveCompatJWE(ctx context.Context, body []byte) Reply {
	var se pin.Session
	env, err := r2ps.OpenCompat2FA(body, r2ps.ClientToServer, func(id string) ([]byte, error) {
		s, err := d.cfg.PIN.Lookup(ctx, id)
		if errors.Is(err, pin.ErrNoSession) {
			return nil, r2ps.ErrUnknownSession
		}
		if err != nil {
			return nil, err
		}
		se = s
		return s.Key, nil
	})
	if err != nil {
		return d.compatError(ctx, "", err)
	}
	return d.answerCompat(ctx, env.JWS, &se)
}

// answerCompat authenticates and serves a compat request JWS; proven is the
// session whose key opened the envelope around it (nil: a bare JWS).
func (d *Dispatcher) answerCompat(ctx context.Context, body []byte, proven *pin.Session) Reply {
	r, ref := d.authenticateCompat(ctx, body, proven)
	if ref != nil {
		typ := ""
		if r != nil {
			typ = r.req.Type
		}
		return d.compatError(ctx, typ, ref.err)
	}
	res, _ := d.handle(ctx, r)
	if res.err != nil {
		d.failure(ctx, r, res.err)
		return d.compatError(ctx, "", res.err)
	}
	d.metrics.outcome(r.profile, r.req.Type, "OK")
	out, err := r2ps.EncodeCompatResponse(*r.compat, d.cfg.Now(), res.data)
	if err != nil {
		return d.compatError(ctx, r.req.Type, err)
	}
	jws, err := r2ps.SignJWS(out, r2ps.TypResponse, d.sskKID, d.responseSigner(ctx), nil)
	if err != nil {
		return d.compatError(ctx, r.req.Type, err)
	}
	if proven != nil {
		if jws, err = r2ps.SealCompat2FA(jws, proven.Key, proven.ID, r2ps.ServerToClient, nil); err != nil {
			return d.compatError(ctx, r.req.Type, err)
		}
	}
	return Reply{Status: http.StatusOK, ContentType: MediaJOSE, Body: jws}
}

// compatPayload returns the decoded payload of a compact JWS without
// verifying it: the compat payload names the unit whose key verifies it.
// It is decoded strictly and bounded like any other input.
func compatPayload(body []byte) ([]byte, error) {
	i := bytes.IndexByte(body, '.')
	j := bytes.LastIndexByte(body, '.')
	if i < 0 || j <= i {
		return nil, fmt.Errorf("%w: not a compact JWS", r2ps.ErrMalformed)
	}
	seg := bytes.TrimRight(body[i+1:j], "=")
	p := make([]byte, base64.RawURLEncoding.DecodedLen(len(seg)))
	n, err := base64.RawURLEncoding.Decode(p, seg)
	if err != nil {
		return nil, fmt.Errorf("%w: JWS payload is not base64url", r2ps.ErrMalformed)
	}
	return p[:n], nil
}

// authenticateCompat authenticates a compat request through the same
// policy table and admission as the strict profile.
func (d *Dispatcher) authenticateCompat(ctx context.Context, body []byte, proven *pin.Session) (*request, *refusal) {
	payload, err := compatPayload(body)
	if err != nil {
		return nil, refuse(err)
	}
	req, meta, err := r2ps.DecodeCompat(payload)
	if err != nil {
		return nil, refuse(err)
	}
	v := &verifier{d: d, ctx: ctx, unit: meta.ClientID, profile: ProfileCompat}
	_, hdr, err := r2ps.VerifyJWSCompat(body, r2ps.TypRequest, func(kid string, embedded *jose.JSONWebKey) (*ecdsa.PublicKey, error) {
		if embedded != nil || kid != "" && kid != meta.ClientID {
			// A key in the header, or a thumbprint kid.
			return v.key(kid, embedded)
		}
		// go-r2ps-service clients send no kid (pkg/client) or kid =
		// client_id (r2ps-client): the unit's signing key.
		ck, err := d.cfg.Store.GetUnitClientKey(ctx, meta.ClientID, store.UsageSign)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
			return nil, r2ps.ErrUnknownKey
		}
		if err != nil {
			return nil, err
		}
		v.unitState = ck.UnitState
		return d.clientKey(ctx, ck, meta.ClientID, store.UsageSign, ProfileCompat)
	})
	if err != nil {
		return nil, refuse(err)
	}
	r := &request{profile: ProfileCompat, unit: meta.ClientID, context: meta.Context, req: req, compat: &meta,
		cskKID: hdr.KID, selfSigned: v.selfSigned, mode: r2ps.RequiredMode(req.Type)}
	if hdr.JWK != nil {
		r.csk, _ = hdr.JWK.Key.(*ecdsa.PublicKey)
	}
	switch {
	case proven != nil:
		// The envelope proved the session key: the payload must name the
		// same session, unit and context.
		if r.mode != r2ps.Mode2FA || meta.SessionID != "" && meta.SessionID != proven.ID ||
			proven.Unit != r.unit || proven.Context != r.context {
			return r, refuse(r2ps.ErrUnknownSession)
		}
		r.session = proven
	case r.mode == r2ps.Mode2FA:
		if d.cfg.Compat != CompatBearer {
			return r, refuse(&r2ps.Error{Code: r2ps.CodeUnauthorized, Msg: "a 2FA request must prove the session key (the 2FA JWE)"})
		}
		se, err := d.cfg.PIN.Session(ctx, meta.SessionID, r.unit, r.context)
		if errors.Is(err, pin.ErrNoSession) {
			return r, refuse(r2ps.ErrUnknownSession)
		}
		if err != nil {
			return r, refuse(err)
		}
		r.session = &se
	}
	r.unitState = v.unitState
	return r, d.admit(ctx, r, "")
}

// compatError answers in go-r2ps-service's error shape, with a generic
// message; the cause goes to the log.
func (d *Dispatcher) compatError(ctx context.Context, typ string, err error) Reply {
	code := codeOf(err)
	if typ != "" {
		d.metrics.outcome(ProfileCompat, typ, code)
	}
	d.logger(ctx).Log(ctx, logLevel(code), "r2ps compat request refused", "type", typ, "code", code, "err", err)
	return Reply{Status: r2ps.HTTPStatus(code), ContentType: MediaJSON, Body: r2ps.CompatError(code, genericMessage(code))}
}

func genericMessage(code string) string {
	switch code {
	case r2ps.CodeIllegalRequestData:
		return "illegal request data"
	case r2ps.CodeUnauthorized:
		return "unauthorized"
	case r2ps.CodeAccessDenied:
		return "access denied"
	case r2ps.CodeIllegalState:
		return "illegal state"
	case r2ps.CodeUnsupportedRequestType:
		return "unsupported request type"
	case r2ps.CodeTryLater:
		return "try later"
	}
	return "server error"
}
