package dispatch

import (
	"context"
	"crypto/sha256"
	"slices"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/r2ps"
)

func sessionHash(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

// dispatch2FA runs a request made in a verified session.
func (d *Dispatcher) dispatch2FA(ctx context.Context, c caller) result {
	if err := modeError(c.req.Type, r2ps.Mode2FA); err != nil {
		return result{err: err}
	}
	if c.req.Type == r2ps.Type2FAUpdate {
		if err := d.taskAllows(c, c.req.Type, nil); err != nil {
			return result{err: err}
		}
		var tr r2ps.TFARequest
		if err := r2ps.DecodeData(c.req.Data, &tr); err != nil {
			return result{err: err}
		}
		return d.update(ctx, c, tr)
	}
	if !d.cfg.WSCD {
		return result{err: r2ps.ErrUnsupportedType}
	}
	return d.keyOperation(ctx, c)
}

// keyOperation runs the WSCD service types (docs/protocol.md §6) through
// the key service, which checks that unit and key belong together.
func (d *Dispatcher) keyOperation(ctx context.Context, c caller) result {
	keys := d.cfg.Keys
	switch c.req.Type {
	case r2ps.TypeP256Generate:
		var req r2ps.GenerateRequest
		if err := r2ps.DecodeData(c.req.Data, &req); err != nil {
			return result{err: err}
		}
		if err := d.taskAllows(c, c.req.Type, nil); err != nil {
			return result{err: err}
		}
		if req.Curve != "" && req.Curve != r2ps.CurveP256 {
			return result{err: &r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "only P-256 keys are made"}}
		}
		k, err := keys.Generate(ctx, c.unit)
		if err != nil {
			return result{err: err}
		}
		return result{data: r2ps.GenerateResponse{Success: true, KID: string(k.KID), PublicKey: &jose.JSONWebKey{Key: k.Public, KeyID: string(k.KID)}}}

	case r2ps.TypeSignECDSA:
		var req r2ps.SignRequest
		if err := r2ps.DecodeData(c.req.Data, &req); err != nil {
			return result{err: err}
		}
		if err := d.taskAllows(c, c.req.Type, req.TBSHash); err != nil {
			return result{err: err}
		}
		if c.session.Task != "" {
			// A task-bound session allows one signature per listed hash.
			if err := d.cfg.PIN.Use(ctx, c.session.ID); err != nil {
				return result{err: err}
			}
		}
		raw, err := keys.Sign(ctx, c.unit, req.KID, req.TBSHash)
		if err != nil {
			return result{err: err}
		}
		der, err := device.RawToDER(raw)
		if err != nil {
			return result{err: err}
		}
		return result{data: r2ps.SignResponse{Success: true, Signature: der}}

	case r2ps.TypeAgreeECDH:
		var req r2ps.ECDHRequest
		if err := r2ps.DecodeData(c.req.Data, &req); err != nil {
			return result{err: err}
		}
		if err := d.taskAllows(c, c.req.Type, nil); err != nil {
			return result{err: err}
		}
		// The point is validated here, before the key service (and so the
		// HSM) can see it.
		peer, err := req.Point()
		if err != nil {
			return result{err: err}
		}
		z, err := keys.ECDH(ctx, c.unit, req.KID, peer)
		if err != nil {
			return result{err: err}
		}
		return result{data: r2ps.ECDHResponse{Success: true, SharedSecret: z}}

	case r2ps.TypeListKeys:
		var req r2ps.ListKeysRequest
		if err := r2ps.DecodeData(c.req.Data, &req); err != nil {
			return result{err: err}
		}
		if err := d.taskAllows(c, c.req.Type, nil); err != nil {
			return result{err: err}
		}
		if len(req.Curve) > 0 && !slices.Contains(req.Curve, r2ps.CurveP256) {
			return result{data: r2ps.ListKeysResponse{Success: true}}
		}
		recs, err := keys.List(ctx, c.unit)
		if err != nil {
			return result{err: err}
		}
		out := r2ps.ListKeysResponse{Success: true}
		for _, k := range recs {
			pub, err := device.PublicKeyFromBytes(k.PublicKey)
			if err != nil {
				return result{err: err}
			}
			out.KeyInfo = append(out.KeyInfo, r2ps.KeyInfo{
				KID: k.KID, CurveName: r2ps.CurveP256, CreationTime: k.CreatedAt.Unix(),
				PublicKey: &jose.JSONWebKey{Key: pub, KeyID: k.KID},
			})
		}
		return result{data: out}

	case r2ps.TypeDeleteKey:
		var req r2ps.DeleteKeyRequest
		if err := r2ps.DecodeData(c.req.Data, &req); err != nil {
			return result{err: err}
		}
		if err := d.taskAllows(c, c.req.Type, nil); err != nil {
			return result{err: err}
		}
		if err := keys.Destroy(ctx, c.unit, req.KID); err != nil {
			return result{err: err}
		}
		return result{data: r2ps.DeleteKeyResponse{Success: true}}
	}
	return result{err: r2ps.ErrUnsupportedType}
}
