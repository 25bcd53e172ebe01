package server

import (
	"errors"
	"net/http"

	"github.com/wsca/wsca/wscd"
)

// The admin API's SECDSA operations (docs/secdsa.md, "Operator reset"):
// the reset of a unit's SECDSA binding once its holder was identified,
// e.g. after too many PIN failures locked it. The unit's aU is destroyed
// and the wallet activates again with a new PIN.

func (s *Server) adminSECDSARoutes(mux *http.ServeMux) {
	mux.Handle("POST "+AdminPrefix+"/units/{unit}/secdsa/reset", s.handle(unitRoute(s.adminSECDSAReset)))
}

// secdsaResetRequest confirms the reset: it destroys the unit's aU, for
// good.
type secdsaResetRequest struct {
	Confirm bool `json:"confirm"`
}

// adminSECDSAReset resets a unit's SECDSA binding (wscd.Units.ResetSECDSA);
// {"confirm": true} is required. Every attempt past the body's checks is
// logged with the request id.
func (s *Server) adminSECDSAReset(w http.ResponseWriter, r *http.Request) error {
	var req secdsaResetRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if !req.Confirm {
		return Errorf(http.StatusBadRequest, `resetting a SECDSA binding destroys its key: send {"confirm": true}`, nil)
	}
	unit := r.PathValue("unit")
	err := s.cfg.Units.ResetSECDSA(r.Context(), unit)
	s.log.WarnContext(r.Context(), "admin: secdsa binding reset", "request_id", requestID(r.Context()), "unit", unit, "err", err)
	if err != nil {
		return secdsaAdminErr(err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"unit": unit, "secdsa": "reset"})
	return nil
}

// secdsaAdminErr maps the errors of a SECDSA reset to admin responses.
func secdsaAdminErr(err error) error {
	switch {
	case errors.Is(err, wscd.ErrSECDSANotActivated):
		return Errorf(http.StatusConflict, "the unit has no SECDSA binding or activation", err)
	case errors.Is(err, wscd.ErrNoDevice):
		return Errorf(http.StatusConflict, "this instance has no wallet-key device: reset on a wscd instance", err)
	}
	return adminErr(err)
}
