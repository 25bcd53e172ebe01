package server

import (
	"errors"
	"net/http"

	"github.com/wsca/wsca/wscd"
)

// The admin API's key maintenance (docs/wrapped-keys.md): re-wrapping
// under a new wrapping key, migration of token keys to wrapped storage,
// and the wrapping keys' report and deletion. The device is in wscad, so
// these run here; each call does one batch and returns a cursor, and
// `wsca admin keys …` calls again until done.

func (s *Server) adminKeyRoutes(mux *http.ServeMux) {
	mux.Handle("POST "+AdminPrefix+"/keys/rewrap", s.handle(s.adminRewrap))
	mux.Handle("POST "+AdminPrefix+"/keys/migrate", s.handle(s.adminMigrate))
	mux.Handle("GET "+AdminPrefix+"/wrapping-keys", s.handle(s.adminWrappingKeys))
	mux.Handle("POST "+AdminPrefix+"/wrapping-keys/delete-unused", s.handle(s.adminDeleteUnusedWrappingKeys))
}

// batchRequest is one batch of a re-wrap or migration run: the cursor the
// previous batch returned ("" to start) and at most how many keys to do
// (0: the default).
type batchRequest struct {
	Cursor string `json:"cursor,omitempty"`
	Batch  int    `json:"batch,omitempty"`
}

// keysErr maps key-maintenance errors to admin responses.
func keysErr(err error) error {
	if errors.Is(err, wscd.ErrNotWrapped) {
		return Errorf(http.StatusConflict, "the device does not keep keys wrapped", err)
	}
	return adminErr(err)
}

func (s *Server) adminRewrap(w http.ResponseWriter, r *http.Request) error {
	var req batchRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	res, err := s.cfg.Keys.Rewrap(r.Context(), req.Cursor, req.Batch)
	if err != nil {
		return keysErr(err)
	}
	s.log.InfoContext(r.Context(), "admin: keys re-wrapped", "request_id", requestID(r.Context()),
		"rewrapped", res.Rewrapped, "server_keys", res.ServerKeys, "lost", res.Lost, "refused", res.Refused,
		"remaining", res.Remaining, "done", res.Done)
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) adminMigrate(w http.ResponseWriter, r *http.Request) error {
	var req batchRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	res, err := s.cfg.Keys.Migrate(r.Context(), req.Cursor, req.Batch)
	if err != nil {
		return keysErr(err)
	}
	s.log.InfoContext(r.Context(), "admin: token keys migrated", "request_id", requestID(r.Context()),
		"migrated", res.Migrated, "stay_token", res.StayToken, "lost", res.Lost, "refused", res.Refused,
		"copies_left", res.CopiesLeft, "remaining", res.Remaining, "done", res.Done)
	writeJSON(w, http.StatusOK, res)
	return nil
}

type wrappingKeysResponse struct {
	WrappingKeys []wrappingKeyJSON `json:"wrapping_keys"`
}

type wrappingKeyJSON struct {
	wscd.WrappingKeyUse
	Unused bool `json:"unused"`
}

func wrappingKeysJSON(uses []wscd.WrappingKeyUse) []wrappingKeyJSON {
	out := make([]wrappingKeyJSON, 0, len(uses))
	for _, u := range uses {
		out = append(out, wrappingKeyJSON{u, u.Unused()})
	}
	return out
}

func (s *Server) adminWrappingKeys(w http.ResponseWriter, r *http.Request) error {
	uses, err := s.cfg.Keys.WrappingKeys(r.Context())
	if err != nil {
		return keysErr(err)
	}
	writeJSON(w, http.StatusOK, wrappingKeysResponse{wrappingKeysJSON(uses)})
	return nil
}

// adminDeleteUnusedWrappingKeys deletes the wrapping keys no blob names
// (wscd.Keys.DeleteUnusedWrappingKeys); {"confirm": true} is required.
func (s *Server) adminDeleteUnusedWrappingKeys(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Confirm bool `json:"confirm"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if !req.Confirm {
		return Errorf(http.StatusBadRequest, `deleting wrapping keys is final: send {"confirm": true}`, nil)
	}
	deleted, err := s.cfg.Keys.DeleteUnusedWrappingKeys(r.Context())
	ids := make([]string, 0, len(deleted))
	for _, d := range deleted {
		ids = append(ids, d.ID)
	}
	s.log.WarnContext(r.Context(), "admin: unused wrapping keys deleted", "request_id", requestID(r.Context()),
		"deleted", ids, "err", err)
	if err != nil {
		return keysErr(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": wrappingKeysJSON(deleted)})
	return nil
}
