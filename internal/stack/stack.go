// Package stack assembles a wscad from a store and the WSCD services: the PIN
// server (with its sealer), the R2PS dispatcher and the HTTP server. The
// command, the demo and the tests build the same stack through it, so what
// is tested is what runs.
package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/r2ps/dispatch"
	"github.com/wsca/wsca/server"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wsca"
	"github.com/wsca/wsca/wscd"
)

// DefaultTaskContexts are the contexts where signing needs a sign: task.
var DefaultTaskContexts = []string{"signing"}

// Options are a wscad's settings beyond its store and device. Zero values
// take each package's defaults.
type Options struct {
	Addr            string
	Roles           server.Roles // zero: both roles
	TLSCert, TLSKey string
	AdminToken      []byte
	PIN             pin.Policy
	Profile         pin.Profile
	MaxAge          time.Duration
	SessionDuration time.Duration
	MaxSession      time.Duration
	// TaskContexts nil means DefaultTaskContexts; an empty slice, none.
	TaskContexts []string
	// Compat enables the go-r2ps-service profile (default off).
	Compat dispatch.Compat
	// ResponseKey says where the R2PS response-signing key lives.
	ResponseKey dispatch.ResponseKey
	// KeyQuota is the number of keys a unit may hold (0: the default).
	KeyQuota        int
	Registry        *prometheus.Registry // nil: a new one
	Logger          *slog.Logger
	Version         string
	ShutdownTimeout time.Duration
	ReadyTimeout    time.Duration
	// R2PSMaxConcurrent bounds the /r2ps requests served at once (0: the
	// server's default).
	R2PSMaxConcurrent int
}

// Stack is an assembled wscad.
type Stack struct {
	Store *store.Store
	// Services: Keys, ServerKeys and Units.
	*wscd.Services
	PIN    *pin.Server
	R2PS   *dispatch.Dispatcher
	Server *server.Server
}

// Build assembles the stack over st and w. It derives the sealing key
// (one device call) and loads or makes the server keys.
func Build(ctx context.Context, st *store.Store, w *wscd.Services, o Options) (*Stack, error) {
	if st == nil || w == nil {
		return nil, errors.New("stack: store and WSCD services are required")
	}
	if o.Roles == (server.Roles{}) {
		o.Roles = server.Roles{WSCD: true, WSCA: true}
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.TaskContexts == nil {
		o.TaskContexts = DefaultTaskContexts
	}
	sealer, err := w.ServerKeys.Sealer(ctx)
	if err != nil {
		return nil, fmt.Errorf("stack: sealing key: %w", err)
	}
	pins, err := pin.New(ctx, pin.Config{Store: st, Sealer: sealer, Policy: o.PIN, Profile: o.Profile, Logger: o.Logger, Registerer: o.Registry})
	if err != nil {
		return nil, err
	}
	pseudonyms, err := wsca.NewPseudonyms(wsca.PseudonymsConfig{Store: st, Sealer: sealer, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	disp, err := dispatch.New(ctx, dispatch.Config{
		Keys: w.Keys, ServerKeys: w.ServerKeys, PIN: pins, Store: st, WSCD: o.Roles.WSCD, Compat: o.Compat,
		WSCA: o.Roles.WSCA, Units: w.Units, Pseudonyms: pseudonyms, Assurance: w.Keys.Device().Info().Assurance,
		MaxAge: o.MaxAge, SessionDuration: o.SessionDuration, MaxSession: o.MaxSession,
		TaskContexts: o.TaskContexts, KeyQuota: o.KeyQuota, ResponseKey: o.ResponseKey, Registerer: o.Registry, Logger: o.Logger,
	})
	if err != nil {
		return nil, err
	}
	srv, err := server.New(server.Config{
		Addr: o.Addr, TLSCert: o.TLSCert, TLSKey: o.TLSKey, Roles: o.Roles, Keys: w.Keys, Units: w.Units,
		Logger: o.Logger, Registry: o.Registry, Version: o.Version, AdminToken: o.AdminToken, R2PS: disp, PIN: pins,
		ShutdownTimeout: o.ShutdownTimeout, ReadyTimeout: o.ReadyTimeout, R2PSMaxConcurrent: o.R2PSMaxConcurrent,
	})
	if err != nil {
		return nil, err
	}
	return &Stack{Store: st, Services: w, PIN: pins, R2PS: disp, Server: srv}, nil
}
