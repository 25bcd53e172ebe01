package dispatch

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"net/http"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/store"
)

// serveCompat answers a go-r2ps-service request: a bare JWS whose payload
// names the unit, context and session (docs/protocol.md §8). It loosens
// encodings, not checks: the JWS must verify with the unit's registered
// CSK (or, for 2fa_registration only, a key in its header), iat and nonce
// are enforced, and 2FA types need a verified session of the same unit and
// context.
func (d *Dispatcher) serveCompat(ctx context.Context, body []byte) Reply {
	var keyUnit string
	var c caller
	payload, hdr, err := r2ps.VerifyJWS(body, r2ps.TypRequest, func(kid string, embedded *jose.JSONWebKey) (*ecdsa.PublicKey, error) {
		if embedded != nil {
			pub, ok := embedded.Key.(*ecdsa.PublicKey)
			if !ok || r2ps.Thumbprint(pub) != kid {
				return nil, r2ps.ErrUnknownKey
			}
			c.embedded = true
			return pub, nil
		}
		// SIROS clients send kid = client_id; ours send the thumbprint.
		ck, err := d.cfg.Store.GetClientKey(ctx, kid)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
			ck, err = d.cfg.Store.GetUnitClientKey(ctx, kid, store.UsageSign)
		}
		if err != nil || ck.Usage != store.UsageSign {
			return nil, r2ps.ErrUnknownKey
		}
		keyUnit = ck.UnitID
		return device.PublicKeyFromBytes(ck.PublicKey)
	})
	if err != nil {
		return d.compatError(ctx, err)
	}
	req, meta, err := r2ps.DecodeCompat(payload)
	if err != nil {
		return d.compatError(ctx, err)
	}
	c.unit, c.context, c.req, c.compat, c.cskKID = meta.ClientID, meta.Context, req, &meta, hdr.KID
	if hdr.JWK != nil {
		c.csk, _ = hdr.JWK.Key.(*ecdsa.PublicKey)
	}
	if !c.embedded && keyUnit != c.unit || c.embedded != (req.Type == r2ps.Type2FARegistration) {
		return d.compatError(ctx, r2ps.ErrUnknownKey)
	}
	if err := d.fresh(ctx, c); err != nil {
		return d.compatError(ctx, err)
	}

	var res result
	switch r2ps.RequiredMode(req.Type) {
	case r2ps.Mode1FA:
		var tr r2ps.TFARequest
		if err := r2ps.DecodeData(req.Data, &tr); err != nil {
			return d.compatError(ctx, err)
		}
		switch req.Type {
		case r2ps.Type2FARegistration:
			var to *cak
			if tr.CAK != nil {
				if to, err = cakFromJWK(tr.CAK); err != nil {
					return d.compatError(ctx, err)
				}
			}
			res = d.register(ctx, c, tr, to)
		case r2ps.TypeCreateSession:
			res = d.createSession(ctx, c, tr)
		default:
			res = result{err: r2ps.ErrUnsupportedType}
		}
	case r2ps.Mode2FA:
		se, err := d.cfg.PIN.Session(ctx, meta.SessionID, c.unit, c.context)
		if err != nil {
			if errors.Is(err, pin.ErrNoSession) {
				err = r2ps.ErrUnknownSession
			}
			return d.compatError(ctx, err)
		}
		c.session = &se
		res = d.dispatch2FA(ctx, c)
	default:
		res = result{err: r2ps.ErrUnsupportedType}
	}
	if res.err != nil {
		return d.compatError(ctx, res.err)
	}
	out, err := r2ps.EncodeCompatResponse(meta, d.cfg.Now(), res.data)
	if err != nil {
		return d.compatError(ctx, err)
	}
	jws, err := r2ps.SignJWS(out, r2ps.TypResponse, d.sskKID, d.cfg.Keys.Signer(ctx, d.ssk), nil)
	if err != nil {
		return d.compatError(ctx, err)
	}
	return Reply{Status: http.StatusOK, ContentType: MediaJOSE, Body: jws}
}

// compatError answers in go-r2ps-service's error shape, with a generic
// message; the cause goes to the log.
func (d *Dispatcher) compatError(ctx context.Context, err error) Reply {
	code := codeOf(err)
	d.log.Log(ctx, logLevel(code), "r2ps compat request refused", "code", code, "err", err)
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
