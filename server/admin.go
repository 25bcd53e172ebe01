package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// AdminPrefix is the path prefix of the admin API.
const AdminPrefix = "/admin/v1"

// adminHandler serves the operator API on its own listener, behind a
// bearer token.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+AdminPrefix+"/units", s.handle(s.adminCreateUnit))
	mux.Handle("GET "+AdminPrefix+"/units", s.handle(s.adminListUnits))
	mux.Handle("GET "+AdminPrefix+"/units/{unit}", s.handle(unitRoute(s.adminGetUnit)))
	mux.Handle("POST "+AdminPrefix+"/units/{unit}/codes", s.handle(unitRoute(s.adminIssueCode)))
	mux.Handle("POST "+AdminPrefix+"/units/{unit}/state", s.handle(unitRoute(s.adminSetState)))
	mux.Handle("POST "+AdminPrefix+"/units/{unit}/unlock", s.handle(unitRoute(s.adminUnlock)))
	mux.Handle("DELETE "+AdminPrefix+"/units/{unit}", s.handle(unitRoute(s.adminDestroyUnit)))
	mux.Handle("PUT "+AdminPrefix+"/units/{unit}/client-key", s.handle(unitRoute(s.adminClientKey)))
	if s.cfg.PIN != nil {
		mux.Handle("GET "+AdminPrefix+"/units/{unit}/attempts", s.handle(unitRoute(s.adminAttempts)))
	}
	s.adminKeyRoutes(mux)
	if s.cfg.EvidenceEntries != nil {
		mux.Handle("GET "+AdminPrefix+"/evidence/entries/{index}", s.cfg.EvidenceEntries)
	}
	s.adminSECDSARoutes(mux)
	mux.Handle("GET /metrics", s.metrics)
	return s.middleware(s.requireToken(mux))
}

// requireToken compares the bearer token in constant time (over hashes, so
// the lengths do not leak either).
func (s *Server) requireToken(next http.Handler) http.Handler {
	want := sha256.Sum256(s.cfg.AdminToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		got := sha256.Sum256([]byte(tok))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			s.log.WarnContext(r.Context(), "admin request refused: bad token", "request_id", requestID(r.Context()), "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="wsca-admin"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", requestID(r.Context()))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// unitRoute refuses a {unit} path value that is no unit id
// (device.ParseOwner: what wscd.Units.Create accepts) with a 400 before h
// runs, so no such value reaches the store, whose refusal of it would be
// a 503.
func unitRoute(h HandlerFunc) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if _, err := device.ParseOwner(r.PathValue("unit")); err != nil {
			return Errorf(http.StatusBadRequest, "invalid unit id", err)
		}
		return h(w, r)
	}
}

// decodeJSON reads a small JSON body strictly (decodeStrict); an empty
// body is {}. A body that breaks the rules is a 400.
func decodeJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return Errorf(http.StatusBadRequest, "unreadable body", err)
	}
	if len(body) == 0 {
		return nil
	}
	if err := decodeStrict(body, v); err != nil {
		return Errorf(http.StatusBadRequest, "malformed JSON body", err)
	}
	return nil
}

// adminErr maps key-service errors to admin responses.
func adminErr(err error) error {
	switch {
	case errors.Is(err, wscd.ErrBadClientKey):
		return Errorf(http.StatusBadRequest, "not a P-256 public key (JWK or PEM SPKI)", err)
	case errors.Is(err, wscd.ErrStrictEnrolled):
		return Errorf(http.StatusConflict, "unit enrolled under the strict profile", err)
	case errors.Is(err, wscd.ErrClientKeyInUse):
		return Errorf(http.StatusConflict, "key is another unit's client key", err)
	case errors.Is(err, wscd.ErrUnitRevoked):
		return Errorf(http.StatusConflict, "unit revoked", err)
	case errors.Is(err, wscd.ErrInvalidInput):
		return Errorf(http.StatusBadRequest, "invalid request", err)
	case errors.Is(err, wscd.ErrUnitNotActive):
		return Errorf(http.StatusNotFound, "no such unit", err)
	case errors.Is(err, store.ErrExists):
		return Errorf(http.StatusConflict, "unit exists", err)
	case errors.Is(err, wscd.ErrUnavailable):
		return Errorf(http.StatusServiceUnavailable, "unavailable", err)
	case errors.Is(err, wscd.ErrNoDevice):
		return Errorf(http.StatusConflict, "this instance has no wallet-key device: destroy units on a wscd instance", err)
	}
	return err
}

type codeRequest struct {
	Unit string `json:"unit,omitempty"`
	// Purpose is "activation" (default) or "pin_reset".
	Purpose string `json:"purpose,omitempty"`
	// TTL is the code's lifetime in seconds (default 24 h).
	TTL int64 `json:"ttl,omitempty"`
}

type codeResponse struct {
	Unit      string    `json:"unit"`
	Code      string    `json:"activation_code"`
	Purpose   string    `json:"purpose"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (req codeRequest) check() (store.CodePurpose, time.Duration, error) {
	p := store.CodePurpose(req.Purpose)
	if p == "" {
		p = store.PurposeActivation
	}
	if p != store.PurposeActivation && p != store.PurposePINReset {
		return "", 0, Errorf(http.StatusBadRequest, "purpose must be activation or pin_reset", nil)
	}
	if req.TTL < 0 || req.TTL > int64(30*24*time.Hour/time.Second) {
		return "", 0, Errorf(http.StatusBadRequest, "ttl must be 0..2592000 seconds", nil)
	}
	return p, time.Duration(req.TTL) * time.Second, nil
}

func (s *Server) adminCreateUnit(w http.ResponseWriter, r *http.Request) error {
	var req codeRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	_, ttl, err := req.check()
	if err != nil {
		return err
	}
	if req.Unit == "" {
		req.Unit = wscd.NewUnitID()
	}
	units := s.cfg.Units
	if err := units.Create(r.Context(), req.Unit); err != nil {
		if errors.Is(err, wscd.ErrInvalidInput) && errors.Is(err, store.ErrExists) {
			return Errorf(http.StatusConflict, "unit exists", err)
		}
		return adminErr(err)
	}
	c, err := units.IssueActivationCode(r.Context(), req.Unit, store.PurposeActivation, ttl)
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusCreated, codeResponse{Unit: c.Unit, Code: c.Code, Purpose: string(c.Purpose), ExpiresAt: c.ExpiresAt})
	return nil
}

func (s *Server) adminIssueCode(w http.ResponseWriter, r *http.Request) error {
	var req codeRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	p, ttl, err := req.check()
	if err != nil {
		return err
	}
	c, err := s.cfg.Units.IssueActivationCode(r.Context(), r.PathValue("unit"), p, ttl)
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusCreated, codeResponse{Unit: c.Unit, Code: c.Code, Purpose: string(c.Purpose), ExpiresAt: c.ExpiresAt})
	return nil
}

type unitResponse struct {
	Unit      string    `json:"unit"`
	State     string    `json:"state"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (s *Server) adminGetUnit(w http.ResponseWriter, r *http.Request) error {
	u, err := s.cfg.Units.Get(r.Context(), r.PathValue("unit"))
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, unitResponse{u.ID, string(u.State), u.CreatedAt, u.UpdatedAt})
	return nil
}

func (s *Server) adminListUnits(w http.ResponseWriter, r *http.Request) error {
	units, err := s.cfg.Units.List(r.Context())
	if err != nil {
		return adminErr(err)
	}
	out := make([]unitResponse, 0, len(units))
	for _, u := range units {
		out = append(out, unitResponse{u.ID, string(u.State), u.CreatedAt, u.UpdatedAt})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) adminSetState(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		State string `json:"state"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	st := store.UnitState(req.State)
	switch st {
	case store.UnitActive, store.UnitSuspended, store.UnitRevoked:
	default:
		return Errorf(http.StatusBadRequest, "state must be active, suspended or revoked", nil)
	}
	if err := s.cfg.Units.SetState(r.Context(), r.PathValue("unit"), st); err != nil {
		return adminErr(err)
	}
	s.statusesChanged()
	writeJSON(w, http.StatusOK, map[string]string{"unit": r.PathValue("unit"), "state": req.State})
	return nil
}

// statusesChanged tells the status list publisher, if any.
func (s *Server) statusesChanged() {
	if s.cfg.Statuses != nil {
		s.cfg.Statuses.Notify()
	}
}

// adminDestroyUnit destroys a unit for good: revoked, device keys
// destroyed, records erased (wscd.Units.Destroy).
func (s *Server) adminDestroyUnit(w http.ResponseWriter, r *http.Request) error {
	err := s.cfg.Units.Destroy(r.Context(), r.PathValue("unit"))
	s.statusesChanged() // a destroy that failed part way may have revoked
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"unit": r.PathValue("unit"), "state": string(store.UnitDestroyed)})
	return nil
}

type contextRequest struct {
	Context string `json:"context"`
}

func pinContext(r *http.Request, body *contextRequest) (string, error) {
	c := r.URL.Query().Get("context")
	if body != nil && body.Context != "" {
		c = body.Context
	}
	if c == "" {
		return "", Errorf(http.StatusBadRequest, "context is required", nil)
	}
	// The PIN server's rule for a context (as pin.Server.Attempts checks
	// it): the store would refuse anything else as unavailable.
	if len(c) > store.MaxIDLen || !utf8.ValidString(c) || strings.ContainsFunc(c, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", Errorf(http.StatusBadRequest, "invalid context", nil)
	}
	return c, nil
}

func (s *Server) adminUnlock(w http.ResponseWriter, r *http.Request) error {
	var req contextRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	c, err := pinContext(r, &req)
	if err != nil {
		return err
	}
	if err := s.cfg.Units.UnlockPIN(r.Context(), r.PathValue("unit"), c); err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"unit": r.PathValue("unit"), "context": c, "unlocked": "true"})
	return nil
}

func (s *Server) adminAttempts(w http.ResponseWriter, r *http.Request) error {
	c, err := pinContext(r, nil)
	if err != nil {
		return err
	}
	if _, err := s.cfg.Units.Get(r.Context(), r.PathValue("unit")); err != nil {
		return adminErr(err)
	}
	// The PIN server, not the store's counter alone: a counter that has
	// reached the policy's MaxAttempts is locked before a further attempt
	// sets the stored flag.
	a, err := s.cfg.PIN.Attempts(r.Context(), r.PathValue("unit"), c)
	if errors.Is(err, pin.ErrMalformed) {
		return Errorf(http.StatusBadRequest, "invalid unit or context", err)
	}
	if err != nil {
		return Errorf(http.StatusServiceUnavailable, "unavailable", err)
	}
	out := map[string]any{"unit": r.PathValue("unit"), "context": c, "failures": a.Failures, "locked": a.Locked}
	if !a.NotBefore.IsZero() {
		out["not_before"] = a.NotBefore
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// clientKeyRequest is a client signing key to provision: exactly one of
// a JWK (kty EC, crv P-256) and a PEM "PUBLIC KEY" block.
type clientKeyRequest struct {
	JWK json.RawMessage `json:"jwk,omitempty"`
	PEM string          `json:"pem,omitempty"`
}

type clientKeyResponse struct {
	Unit      string    `json:"unit"`
	KID       string    `json:"kid"`
	Profile   string    `json:"profile"`
	CreatedAt time.Time `json:"created_at"`
}

// adminClientKey binds a go-r2ps-service wallet's signing key to a unit
// under the compat profile (wscd.Units.ProvisionClientKey).
func (s *Server) adminClientKey(w http.ResponseWriter, r *http.Request) error {
	var req clientKeyRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	var raw []byte
	switch {
	case len(req.JWK) > 0 && req.PEM == "":
		raw = req.JWK
	case len(req.JWK) == 0 && req.PEM != "":
		raw = []byte(req.PEM)
	default:
		return Errorf(http.StatusBadRequest, "give exactly one of jwk and pem", nil)
	}
	pub, err := wscd.ParseClientKey(raw)
	if err != nil {
		return adminErr(err)
	}
	ck, err := s.cfg.Units.ProvisionClientKey(r.Context(), r.PathValue("unit"), pub)
	if err != nil {
		return adminErr(err)
	}
	writeJSON(w, http.StatusOK, clientKeyResponse{Unit: ck.UnitID, KID: ck.KID, Profile: ck.Profile, CreatedAt: ck.CreatedAt})
	return nil
}

// ServeAdmin serves the admin API on ln until ctx is cancelled.
func (s *Server) ServeAdmin(ctx context.Context, ln net.Listener) error {
	if len(s.cfg.AdminToken) == 0 {
		ln.Close()
		return fmt.Errorf("server: the admin API needs a token")
	}
	return s.serve(ctx, ln, s.adminHandler())
}
