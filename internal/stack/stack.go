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
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/r2ps/dispatch"
	"github.com/wsca/wsca/server"
	"github.com/wsca/wsca/statuslist/publish"
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
	// PublicURL is the public base URL of this deployment's WSCA role: the
	// status lists' URIs start with it. Empty: http:// + Addr.
	PublicURL string
	// Attest configures attestations (the wsca role).
	Attest AttestOptions
	// StatusLists configures the Token Status Lists (the wsca role).
	StatusLists StatusListOptions
}

// AttestOptions configure the Wallet Provider's attestations.
type AttestOptions struct {
	// ChainPEM certifies the attestation key (leaf first, no trust
	// anchor). Empty: a development CA does, unless NoDevCA.
	ChainPEM []byte
	NoDevCA  bool
	// KeyName is the attestation key's server-key purpose (a rotation
	// names a new one); empty: wsca.DefaultAttestationKeyName.
	KeyName string
	// Wallet describes the wallet solution in wallet instance
	// attestations; empty fields take DefaultWallet's.
	Wallet wsca.WalletSolution
	// Certification is an optional URL describing the certification.
	Certification string
	// UserAuthentication is the configured assurance of the PIN; empty:
	// the device's (neither claims a certified level unless configured).
	UserAuthentication device.Assurance
	// Lifetimes (zero: the wsca package's defaults).
	KeyAttestationLifetime, WalletAttestationLifetime time.Duration
}

// DefaultWallet is the wallet solution a deployment that configures none
// describes.
var DefaultWallet = wsca.WalletSolution{
	Subject: "wsca-wallet", Name: "wsca wallet", Link: "https://github.com/wsca/wsca", Version: "0.0.0",
}

// StatusListOptions configure the Token Status Lists.
type StatusListOptions struct {
	// ShardSize (≥ 10 000) and Pool (lists kept active); zero: defaults.
	ShardSize, Pool int
	// TTL, Lifetime and Debounce of publication; zero: defaults.
	TTL, Lifetime, Debounce time.Duration
}

// Defaults of StatusListOptions.
const (
	DefaultShardSize         = 100_000
	DefaultStatusPool        = 4
	DefaultStatusTTL         = 5 * time.Minute
	DefaultStatusLifetime    = 24 * time.Hour
	DefaultStatusDebounce    = time.Second
	statusListIndexKeyDomain = "wsca-statuslist-index-v1"
)

// Stack is an assembled wscad.
type Stack struct {
	Store *store.Store
	// Services: Keys, ServerKeys and Units.
	*wscd.Services
	PIN    *pin.Server
	R2PS   *dispatch.Dispatcher
	Server *server.Server
	// The wsca role's: nil in a wscd-only stack.
	Attestations   *wsca.Attestations
	AttestationKey *wsca.AttestationKey
	Publisher      *publish.Publisher
}

// Background runs the stack's background work (status list publication)
// until ctx ends.
func (s *Stack) Background(ctx context.Context) error {
	if s.Publisher == nil {
		<-ctx.Done()
		return nil
	}
	if err := s.Publisher.Run(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
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
	var (
		ak      *wsca.AttestationKey
		pub     *publish.Publisher
		attests *wsca.Attestations
	)
	if o.Roles.WSCA {
		if ak, pub, attests, err = buildAttestations(ctx, st, w, sealer, o); err != nil {
			return nil, err
		}
	}
	var statuses interface{ Notify() }
	if pub != nil {
		statuses = pub
	}
	disp, err := dispatch.New(ctx, dispatch.Config{
		Attestations: attests, Statuses: statuses,
		Keys: w.Keys, ServerKeys: w.ServerKeys, PIN: pins, Store: st, WSCD: o.Roles.WSCD, Compat: o.Compat,
		WSCA: o.Roles.WSCA, Units: w.Units, Pseudonyms: pseudonyms, Assurance: w.Keys.Device().Info().Assurance,
		MaxAge: o.MaxAge, SessionDuration: o.SessionDuration, MaxSession: o.MaxSession,
		TaskContexts: o.TaskContexts, KeyQuota: o.KeyQuota, ResponseKey: o.ResponseKey, Registerer: o.Registry, Logger: o.Logger,
	})
	if err != nil {
		return nil, err
	}
	scfg := server.Config{
		Addr: o.Addr, TLSCert: o.TLSCert, TLSKey: o.TLSKey, Roles: o.Roles, Keys: w.Keys, Units: w.Units,
		Logger: o.Logger, Registry: o.Registry, Version: o.Version, AdminToken: o.AdminToken, R2PS: disp, PIN: pins,
		ShutdownTimeout: o.ShutdownTimeout, ReadyTimeout: o.ReadyTimeout, R2PSMaxConcurrent: o.R2PSMaxConcurrent,
		Statuses: statuses,
	}
	if pub != nil {
		scfg.StatusLists, scfg.AttestationKeys, scfg.DevCARoot = pub.Handler(), ak.KeySet, ak.DevRoot
	}
	srv, err := server.New(scfg)
	if err != nil {
		return nil, err
	}
	return &Stack{Store: st, Services: w, PIN: pins, R2PS: disp, Server: srv,
		Attestations: attests, AttestationKey: ak, Publisher: pub}, nil
}

// buildAttestations loads the attestation key and assembles the status
// list publisher and the attestation service of the wsca role.
func buildAttestations(ctx context.Context, st *store.Store, w *wscd.Services, sealer *wscd.Sealer, o Options) (*wsca.AttestationKey, *publish.Publisher, *wsca.Attestations, error) {
	ak, err := wsca.LoadAttestationKey(ctx, wsca.AttestationKeyConfig{
		Keys: w.ServerKeys, Store: st, Name: o.Attest.KeyName, ChainPEM: o.Attest.ChainPEM, DevCA: !o.Attest.NoDevCA, Logger: o.Logger,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	base := o.PublicURL
	if base == "" {
		base = "http://" + o.Addr
	}
	sl := o.StatusLists
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&sl.TTL, DefaultStatusTTL)
	def(&sl.Lifetime, DefaultStatusLifetime)
	def(&sl.Debounce, DefaultStatusDebounce)
	if sl.ShardSize == 0 {
		sl.ShardSize = DefaultShardSize
	}
	if sl.Pool == 0 {
		sl.Pool = DefaultStatusPool
	}
	// The index permutation's key: derived from the HSM-derived sealing
	// key, so every instance has the same one and the database does not.
	indexKey := sealer.MAC(statusListIndexKeyDomain)
	pub, err := publish.New(st, publish.Config{
		BaseURI: strings.TrimRight(base, "/"), ShardSize: sl.ShardSize, Pool: sl.Pool, Lifetime: sl.Lifetime, TTL: sl.TTL,
		Debounce: sl.Debounce, Signer: ak.Signer, Chain: ak.Chain, IndexKey: indexKey, Logger: o.Logger,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	wallet := o.Attest.Wallet
	for _, f := range []struct {
		v *string
		d string
	}{
		{&wallet.Subject, DefaultWallet.Subject}, {&wallet.Name, DefaultWallet.Name},
		{&wallet.Link, DefaultWallet.Link}, {&wallet.Version, DefaultWallet.Version},
	} {
		if *f.v == "" {
			*f.v = f.d
		}
	}
	assurance := w.Keys.Device().Info().Assurance
	ua := o.Attest.UserAuthentication
	if ua == "" {
		ua = assurance
	}
	attests, err := wsca.NewAttestations(wsca.AttestationsConfig{
		Store: st, Statuses: pub, Issuer: ak.Issuer, KeyStorage: assurance, UserAuthentication: ua,
		Certification: o.Attest.Certification, Wallet: wallet,
		KeyAttestationLifetime: o.Attest.KeyAttestationLifetime, WalletAttestationLifetime: o.Attest.WalletAttestationLifetime,
		Logger: o.Logger,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return ak, pub, attests, nil
}
