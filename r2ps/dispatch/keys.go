package dispatch

import (
	"context"
	"crypto/sha256"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

func sessionHash(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

// listPageSize is the page of hsm_list_keys when the client names none.
const listPageSize = 256

// accessFor returns the access record of key kid read with the request's
// nonce, nil when none was read for it (the key service then reads it), or
// ErrKeyNotFound when the read found no such key.
func (r *request) accessFor(kid string) (*store.KeyAccess, error) {
	if kid != r.keyFor {
		return nil, nil
	}
	if r.keyMissing {
		return nil, wscd.ErrKeyNotFound
	}
	return r.key, nil
}

// errTask refuses what a session's task (or a context's rule) forbids.
var errTask = &r2ps.Error{Code: r2ps.CodeAccessDenied, Msg: "the session's task does not allow this"}

// demandsTask reports whether signing in a context needs a sign: task.
func (d *Dispatcher) demandsTask(pinContext string) bool {
	return slices.Contains(d.cfg.TaskContexts, pinContext)
}

// checkTask applies the policy's task rule to an authenticated 2FA request
// (docs/protocol.md §6). A key is usable only in the context that made it
// (wscd.Scoped), so the context's rule is also the key's.
func (d *Dispatcher) checkTask(r *request) error {
	task := r.session.Task
	isSign := strings.HasPrefix(task, r2ps.TaskSignPrefix)
	switch r.pol.task {
	case taskUpdate:
		// go-r2ps-service clients cannot ask for a task: in the compat
		// profile a plain session may change the PIN (docs/protocol.md §8).
		if task != r2ps.Task2FAUpdate && !(r.profile == ProfileCompat && task == "") {
			return errTask
		}
	case taskList:
		if task != "" && !isSign {
			return errTask
		}
	case taskUnsuspend:
		if task != r2ps.TaskUnsuspend {
			return errTask
		}
	case taskSign:
		if task != "" && !isSign {
			return errTask
		}
		if d.demandsTask(r.context) && !isSign {
			return &r2ps.Error{Code: r2ps.CodeAccessDenied, Msg: "this key or context needs a sign: task"}
		}
	default:
		if task != "" {
			return errTask
		}
	}
	return nil
}

// keyOperation runs the WSCD service types (docs/protocol.md §6) through
// the key service, which checks that unit and key belong together.
func (d *Dispatcher) keyOperation(ctx context.Context, r *request) result {
	keys := d.cfg.Keys.In(r.context, d.cfg.KeyQuota)
	switch r.req.Type {
	case r2ps.TypeP256Generate:
		var req r2ps.GenerateRequest
		if err := r2ps.DecodeData(r.req.Data, &req); err != nil {
			return result{err: err}
		}
		if err := d.checkTask(r); err != nil {
			return result{err: err}
		}
		if req.Curve != "" && req.Curve != r2ps.CurveP256 {
			return result{err: &r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "only P-256 keys are made"}}
		}
		k, err := keys.Generate(ctx, r.unit)
		if err != nil {
			return result{err: err}
		}
		return result{data: r2ps.GenerateResponse{Success: true, KID: string(k.KID), PublicKey: &jose.JSONWebKey{Key: k.Public, KeyID: string(k.KID)}, AMR: r.amr()}}

	case r2ps.TypeSignECDSA:
		var req r2ps.SignRequest
		if err := r2ps.DecodeData(r.req.Data, &req); err != nil {
			return result{err: err}
		}
		if err := d.checkTask(r); err != nil {
			return result{err: err}
		}
		if task := r.session.Task; task != "" {
			// One signature per listed hash, in any order: the hash must be
			// listed, and its use is recorded once for the session.
			hashes := strings.Split(strings.TrimPrefix(task, r2ps.TaskSignPrefix), ",")
			if !slices.Contains(hashes, hexLower(req.TBSHash)) {
				return result{err: errTask}
			}
			if err := d.cfg.PIN.UseTaskItem(ctx, *r.session, hexLower(req.TBSHash)); err != nil {
				return result{err: err}
			}
		}
		a, err := r.accessFor(req.KID)
		if err != nil {
			return result{err: err}
		}
		raw, err := keys.SignWithAccess(ctx, r.unit, req.KID, a, req.TBSHash)
		if err != nil {
			return result{err: err}
		}
		der, err := device.RawToDER(raw)
		if err != nil {
			return result{err: err}
		}
		return result{data: r2ps.SignResponse{Success: true, Signature: der, AMR: r.amr()}}

	case r2ps.TypeAgreeECDH:
		var req r2ps.ECDHRequest
		if err := r2ps.DecodeData(r.req.Data, &req); err != nil {
			return result{err: err}
		}
		if err := d.checkTask(r); err != nil {
			return result{err: err}
		}
		// The point is validated here, before the key service (and so the
		// HSM) can see it.
		peer, err := req.Point()
		if err != nil {
			return result{err: err}
		}
		a, err := r.accessFor(req.KID)
		if err != nil {
			return result{err: err}
		}
		z, err := keys.ECDHWithAccess(ctx, r.unit, req.KID, a, peer)
		if err != nil {
			return result{err: err}
		}
		return result{data: r2ps.ECDHResponse{Success: true, SharedSecret: z, AMR: r.amr()}}

	case r2ps.TypeListKeys:
		var req r2ps.ListKeysRequest
		if err := r2ps.DecodeData(r.req.Data, &req); err != nil {
			return result{err: err}
		}
		if err := d.checkTask(r); err != nil {
			return result{err: err}
		}
		if len(req.Curve) > 0 && !slices.Contains(req.Curve, r2ps.CurveP256) {
			return result{data: r2ps.ListKeysResponse{Success: true, AMR: r.amr()}}
		}
		recs, err := keys.List(ctx, r.unit)
		if err != nil {
			return result{err: err}
		}
		// Keys are oldest first; a page starts after the kid the client
		// names (none: the first page). The quota bounds what is read.
		start := 0
		if req.After != "" {
			i := slices.IndexFunc(recs, func(k store.Key) bool { return k.KID == req.After })
			if i < 0 {
				return result{err: &r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "after names no key of the unit"}}
			}
			start = i + 1
		}
		limit := req.Limit
		if limit == 0 {
			limit = listPageSize
		}
		recs = recs[start:]
		out := r2ps.ListKeysResponse{Success: true, AMR: r.amr()}
		if len(recs) > limit {
			recs = recs[:limit]
			out.Next = recs[limit-1].KID
		}
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
		if err := r2ps.DecodeData(r.req.Data, &req); err != nil {
			return result{err: err}
		}
		if err := d.checkTask(r); err != nil {
			return result{err: err}
		}
		if err := keys.Destroy(ctx, r.unit, req.KID); err != nil {
			return result{err: err}
		}
		d.statusesChanged() // its attestations are invalid now
		return result{data: r2ps.DeleteKeyResponse{Success: true, AMR: r.amr()}}
	}
	return result{err: r2ps.ErrUnsupportedType}
}
