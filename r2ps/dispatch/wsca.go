package dispatch

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wsca"
	"github.com/wsca/wsca/wscd"
)

// amr lists the factors that authorised an authenticated request: the
// client signing key always, the PIN in a 2FA request (every one runs in a
// session opened with the PIN).
func (r *request) amr() []string {
	if r.mode == r2ps.Mode2FA {
		return []string{r2ps.AMRPossession, r2ps.AMRPIN}
	}
	return []string{r2ps.AMRPossession}
}

// wscaOperation runs the WSCA service types (docs/protocol.md §7).
func (d *Dispatcher) wscaOperation(ctx context.Context, r *request) result {
	if r.mode == r2ps.Mode2FA {
		if err := d.checkTask(r); err != nil {
			return result{err: err}
		}
	}
	switch r.req.Type {
	case r2ps.TypeKeyAttestation, r2ps.TypeWalletAttestation, r2ps.TypeProofOfAssociation, r2ps.TypeWKA, r2ps.TypeWIA:
		return d.attestation(ctx, r)
	case r2ps.TypePseudonymPut:
		var req r2ps.PseudonymPutRequest
		if err := r2ps.DecodeData(r.req.Data, &req); err != nil {
			return result{err: err}
		}
		created, err := d.cfg.Pseudonyms.Put(ctx, r.unit, req.Slot, req.Value)
		if err != nil {
			return result{err: err}
		}
		return result{data: r2ps.PseudonymPutResponse{Success: true, Created: created, AMR: r.amr()}}

	case r2ps.TypePseudonymGet:
		var req r2ps.PseudonymRequest
		if err := r2ps.DecodeData(r.req.Data, &req); err != nil {
			return result{err: err}
		}
		v, err := d.cfg.Pseudonyms.Get(ctx, r.unit, req.Slot)
		if err != nil {
			return result{err: err}
		}
		return result{data: r2ps.PseudonymGetResponse{Success: true, Value: v, AMR: r.amr()}}

	case r2ps.TypePseudonymList:
		var req r2ps.EmptyRequest
		if err := r2ps.DecodeData(r.req.Data, &req); err != nil {
			return result{err: err}
		}
		slots, err := d.cfg.Pseudonyms.List(ctx, r.unit)
		if err != nil {
			return result{err: err}
		}
		out := r2ps.PseudonymListResponse{Success: true, Slots: []r2ps.PseudonymSlot{}, AMR: r.amr()}
		for _, s := range slots {
			out.Slots = append(out.Slots, r2ps.PseudonymSlot{Slot: s.Name, CreatedAt: s.CreatedAt.Unix(), UpdatedAt: s.UpdatedAt.Unix()})
		}
		return result{data: out}

	case r2ps.TypePseudonymDelete:
		var req r2ps.PseudonymRequest
		if err := r2ps.DecodeData(r.req.Data, &req); err != nil {
			return result{err: err}
		}
		if err := d.cfg.Pseudonyms.Delete(ctx, r.unit, req.Slot); err != nil {
			return result{err: err}
		}
		return result{data: r2ps.DoneResponse{Success: true, AMR: r.amr()}}

	case r2ps.TypeUnitInfo:
		var req r2ps.EmptyRequest
		if err := r2ps.DecodeData(r.req.Data, &req); err != nil {
			return result{err: err}
		}
		return d.unitInfo(ctx, r)

	case r2ps.TypeUnitSuspend:
		var req r2ps.EmptyRequest
		if err := r2ps.DecodeData(r.req.Data, &req); err != nil {
			return result{err: err}
		}
		if err := d.cfg.Units.SetStateBy(ctx, r.unit, store.UnitSuspended, store.ByHolder); err != nil {
			return result{err: err}
		}
		d.statusesChanged()
		d.logger(ctx).InfoContext(ctx, "unit suspended by its holder", "unit", r.unit)
		return result{data: r2ps.DoneResponse{Success: true, AMR: r.amr()}}

	case r2ps.TypeUnitUnsuspend:
		var req r2ps.EmptyRequest
		if err := r2ps.DecodeData(r.req.Data, &req); err != nil {
			return result{err: err}
		}
		if err := d.cfg.Units.SetStateBy(ctx, r.unit, store.UnitActive, store.ByHolder); err != nil {
			return result{err: err}
		}
		d.statusesChanged()
		// The session served its one purpose.
		if err := d.cfg.PIN.End(ctx, r.session.ID); err != nil {
			d.logger(ctx).ErrorContext(ctx, "ending the unsuspend session", "unit", r.unit, "err", err)
		}
		d.logger(ctx).InfoContext(ctx, "unit unsuspended by its holder", "unit", r.unit)
		return result{data: r2ps.DoneResponse{Success: true, AMR: r.amr()}}

	case r2ps.TypeUnitRevoke:
		var req r2ps.UnitRevokeRequest
		if err := r2ps.DecodeData(r.req.Data, &req); err != nil {
			return result{err: err}
		}
		if req.Confirm != r.unit {
			return result{err: &r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "confirm must be the unit's id"}}
		}
		if err := d.cfg.Units.SetStateBy(ctx, r.unit, store.UnitRevoked, store.ByHolder); err != nil {
			return result{err: err}
		}
		d.statusesChanged()
		d.logger(ctx).InfoContext(ctx, "unit revoked by its holder", "unit", r.unit, "reason", req.Reason)
		return result{data: r2ps.DoneResponse{Success: true, AMR: r.amr()}}
	}
	return result{err: r2ps.ErrUnsupportedType}
}

// statusesChanged tells the status list publisher, if any.
func (d *Dispatcher) statusesChanged() {
	if d.cfg.Statuses != nil {
		d.cfg.Statuses.Notify()
	}
}

// attestation runs the attestation types: only the unit's own keys are
// attested, and a foreign or unknown kid fails the request.
func (d *Dispatcher) attestation(ctx context.Context, r *request) result {
	a := d.cfg.Attestations
	switch r.req.Type {
	case r2ps.TypeKeyAttestation:
		var req r2ps.KeyAttestationRequest
		if err := r2ps.DecodeData(r.req.Data, &req); err != nil {
			return result{err: err}
		}
		jwt, err := a.KeyAttestation(ctx, r.unit, req.KIDs, req.Nonce)
		if err != nil {
			return result{err: err}
		}
		return result{data: r2ps.KeyAttestationResponse{Success: true, KeyAttestation: jwt, AMR: r.amr()}}
	case r2ps.TypeWalletAttestation:
		var req r2ps.WalletAttestationRequest
		if err := r2ps.DecodeData(r.req.Data, &req); err != nil {
			return result{err: err}
		}
		jwt, err := a.WalletAttestation(ctx, r.unit, req.KID)
		if err != nil {
			return result{err: err}
		}
		return result{data: r2ps.WalletAttestationResponse{Success: true, WalletAttestation: jwt, AMR: r.amr()}}
	case r2ps.TypeProofOfAssociation:
		var req r2ps.ProofOfAssociationRequest
		if err := r2ps.DecodeData(r.req.Data, &req); err != nil {
			return result{err: err}
		}
		jwt, err := a.ProofOfAssociation(ctx, r.unit, req.KIDs, req.Audience, req.Nonce)
		if err != nil {
			return result{err: err}
		}
		return result{data: r2ps.ProofOfAssociationResponse{Success: true, Proof: jwt, AMR: r.amr()}}
	case r2ps.TypeWKA, r2ps.TypeWIA:
		var req r2ps.ETSIAttestationRequest
		if err := r2ps.DecodeData(r.req.Data, &req); err != nil {
			return result{err: err}
		}
		if r.req.Type == r2ps.TypeWKA {
			jwt, err := a.KeyAttestation(ctx, r.unit, req.KeysToAttest, req.Nonce)
			if err != nil {
				return result{err: err}
			}
			return result{data: r2ps.WKAResponse{Success: true, WKA: jwt, AMR: r.amr()}}
		}
		// go-r2ps-service binds the WIA to the first key named.
		jwt, err := a.WalletAttestation(ctx, r.unit, req.KeysToAttest[0])
		if err != nil {
			return result{err: err}
		}
		return result{data: r2ps.WIAResponse{Success: true, WIA: jwt, AMR: r.amr()}}
	}
	return result{err: r2ps.ErrUnsupportedType}
}

// unitInfo answers wallet_unit_info from the store and the configured
// assurance of the device: nothing is claimed that was not configured.
func (d *Dispatcher) unitInfo(ctx context.Context, r *request) result {
	u, err := d.cfg.Units.Get(ctx, r.unit)
	if err != nil {
		return result{err: err}
	}
	assurance := d.cfg.Assurance
	if d.cfg.Published != nil {
		if assurance, err = d.cfg.Published(ctx); err != nil {
			return result{err: storeErr(err)}
		}
	}
	out := r2ps.UnitInfoResponse{
		Success: true, Unit: u.ID, State: string(u.State), CreatedAt: u.CreatedAt.Unix(),
		Capabilities: d.capabilities(assurance), AMR: r.amr(),
	}
	if ck, err := d.cfg.Store.GetUnitClientKey(ctx, r.unit, store.UsageSign); err == nil {
		out.ActivatedAt = ck.CreatedAt.Unix()
	} else if !errors.Is(err, store.ErrNotFound) {
		return result{err: storeErr(err)}
	}
	if d.cfg.Store != nil {
		n, err := d.cfg.Store.CountKeys(ctx, r.unit)
		if err != nil {
			return result{err: storeErr(err)}
		}
		out.Keys = n
	}
	return result{data: out}
}

// capabilities describes what this instance's device gives keys, from its
// configured assurance.
func (d *Dispatcher) capabilities(a device.Assurance) r2ps.Capabilities {
	c := r2ps.Capabilities{
		KeyStorage: []string{}, UserAuthentication: []string{},
		DeviceAssurance: string(a), Curves: []string{r2ps.CurveP256},
	}
	if a.Certified() {
		c.KeyStorage = []string{string(a)}
		c.UserAuthentication = []string{string(a)}
	}
	c.Types = d.served
	return c
}

// servedTypes lists, sorted, the types this dispatcher serves (its roles
// and configuration are fixed at New).
func (d *Dispatcher) servedTypes() []string {
	var out []string
	for _, t := range slices.Sorted(maps.Keys(policies)) {
		if _, err := d.policyFor(t); err == nil {
			out = append(out, t)
		}
	}
	return out
}

// wscaCode maps the WSCA services' errors to R2PS codes.
func wscaCode(err error) (string, bool) {
	switch {
	case errors.Is(err, wsca.ErrInvalidInput), errors.Is(err, wsca.ErrNotFound), errors.Is(err, wsca.ErrForeignKey):
		return r2ps.CodeIllegalRequestData, true
	case errors.Is(err, wsca.ErrQuota), errors.Is(err, wsca.ErrUnitState), errors.Is(err, wscd.ErrOperatorSuspended):
		return r2ps.CodeAccessDenied, true
	case errors.Is(err, wsca.ErrUnavailable):
		return r2ps.CodeTryLater, true
	}
	return "", false
}
