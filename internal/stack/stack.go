// Package stack assembles a wscad from a store and the WSCD services: the PIN
// server (with its sealer), the R2PS dispatcher and the HTTP server. The
// command, the demo and the tests build the same stack through it, so what
// is tested is what runs.
package stack

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/evidence"
	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/r2ps/dispatch"
	"github.com/wsca/wsca/server"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wsca"
	"github.com/wsca/wsca/wsca/statuslists"
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
	// SharePeer pins the other role's share key (its kid) for split roles
	// (docs/wsca.md, "Split roles"): a WSCD-only or WSCA-only instance
	// shares only with that key; without it, with whatever key the store
	// holds. An instance of both roles shares nothing without it.
	SharePeer device.KID
	// Compat enables the go-r2ps-service profile (default off).
	Compat dispatch.Compat
	// ResponseKey says where the R2PS response-signing key lives.
	ResponseKey dispatch.ResponseKey
	// KeyQuota is the number of keys a unit may hold (0: the default).
	KeyQuota int
	// SECDSAMaxFailures locks a unit's SECDSA binding after that many PIN
	// failures (0: the default); SECDSA is served in the wscd role when
	// the device makes derive-only keys.
	SECDSAMaxFailures int
	// OPRFInHSM gives every new PIN record an OPRF key on the wscd
	// role's device (pin.Config.OPRFDevice; docs/protocol.md, "HSM-bound
	// OPRF key"); RefuseSoftwareOPRF then refuses logins under records
	// whose OPRF key is still derived in software.
	OPRFInHSM          bool
	RefuseSoftwareOPRF bool
	Registry           *prometheus.Registry // nil: a new one
	Logger             *slog.Logger
	Version            string
	ShutdownTimeout    time.Duration
	ReadyTimeout       time.Duration
	// R2PSMaxConcurrent bounds the /r2ps requests served at once (0: the
	// server's default).
	R2PSMaxConcurrent int
	// CORSOrigins: server.Config.CORSOrigins.
	CORSOrigins []string
	// PublicURL is the public base URL of this deployment's WSCA role: the
	// status lists' URIs start with it. Empty: http:// + Addr.
	PublicURL string
	// Attest configures attestations (the wsca role).
	Attest AttestOptions
	// StatusLists configures the Token Status Lists (the wsca role).
	StatusLists StatusListOptions
	// EvidenceOrigin names the evidence log (its checkpoints' origin and
	// key name); empty: DefaultEvidenceOrigin of PublicURL or Addr.
	EvidenceOrigin string
	// EvidenceInterval is the most often a checkpoint is signed (0: the
	// evidence package's default).
	EvidenceInterval time.Duration
}

// DefaultEvidenceOrigin is the log's name when none is configured: the
// host (and port) of the public URL, or of the listen address, and
// "/evidence".
func DefaultEvidenceOrigin(publicURL, addr string) string {
	host := ""
	if u, err := url.Parse(publicURL); err == nil && publicURL != "" {
		host = u.Host
	}
	if host == "" {
		host = addr
		if strings.HasPrefix(host, ":") || host == "" {
			host = "localhost" + host
		}
	}
	return host + "/evidence"
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
	// UnitLimit attestations (key attestations and WIAs) per UnitWindow
	// for one unit; zero: statuslists.DefaultUnitLimit per
	// DefaultUnitWindow.
	UnitLimit  int
	UnitWindow time.Duration
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
	Publisher      *statuslists.Publisher
	// Evidence is the evidence log: every instance records events; one
	// with the WSCD's device sequences and signs (Background).
	Evidence *evidence.Log
	// SECDSA is the SECDSA service of the wscd role (nil: not served).
	SECDSA *wscd.SECDSA

	share    *wscd.Share
	wscaOnly bool
	log      *slog.Logger
	// keyMACsDone: the backfill of key records' MACs ran to its end once.
	keyMACsDone bool
}

// Background runs the stack's background work (status list publication)
// until ctx ends.
func (s *Stack) Background(ctx context.Context) error {
	if !s.wscaOnly {
		go s.shareLoop(ctx)
	}
	evDone := make(chan struct{})
	go func() { defer close(evDone); s.Evidence.Run(ctx) }()
	defer func() { <-evDone }()
	if s.Publisher == nil {
		<-ctx.Done()
		return nil
	}
	if err := s.Publisher.Run(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// shareInterval is how often a WSCD instance looks for a WSCA's share key
// and, once there is one, MACs the client keys enrolled before and
// publishes its device's assurance.
const shareInterval = 30 * time.Second

// shareLoop keeps a WSCD instance's share with WSCA instances up to date:
// client keys enrolled before the share key existed get their share MAC,
// and the device's configured assurance is published under it. Its first
// round (and each after, until one succeeds) first gives the key records
// made before they had a MAC theirs (BackfillKeyMACs).
func (s *Stack) shareLoop(ctx context.Context) {
	t := time.NewTicker(shareInterval)
	defer t.Stop()
	for {
		if !s.keyMACsDone {
			s.keyMACsDone = s.BackfillKeyMACs(ctx) == nil
		}
		s.ShareNow(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// BackfillKeyMACs gives each active key record made before records had a
// MAC (schema 0014) one, after the device proves it (wscd.Keys.BackfillMACs;
// a row it does not prove is logged and gets none). It does nothing on a
// WSCA-only instance; an error means an outage stopped it.
func (s *Stack) BackfillKeyMACs(ctx context.Context) error {
	if s.wscaOnly {
		return nil
	}
	n, err := s.Keys.BackfillMACs(ctx, s.Store)
	if err != nil {
		s.log.ErrorContext(ctx, "key records: MAC backfill stopped", "keys", n, "err", err)
		return err
	}
	if n > 0 {
		s.log.InfoContext(ctx, "key records: MACs given after the device proved them", "keys", n)
	}
	return nil
}

// ShareNow runs one round of shareLoop (a WSCD instance): it returns once
// the backfill and the assurance are written, or there is no share key.
func (s *Stack) ShareNow(ctx context.Context) {
	if s.wscaOnly {
		return
	}
	sealer, err := s.ServerKeys.Sealer(ctx)
	if err != nil {
		return
	}
	log := s.log
	if n, err := s.share.Backfill(ctx, s.Store, sealer); err != nil {
		log.ErrorContext(ctx, "share: client keys", "err", err)
	} else if n > 0 {
		log.InfoContext(ctx, "share: client keys MACed for the WSCA role", "keys", n)
	}
	if n, err := s.share.BackfillKeys(ctx, s.Store, sealer); err != nil {
		log.ErrorContext(ctx, "share: wallet keys", "err", err)
	} else if n > 0 {
		log.InfoContext(ctx, "share: wallet keys MACed for the WSCA role", "keys", n)
	}
	if err := s.share.PublishAssurance(ctx, s.Store, s.Keys.Device().Info()); err != nil {
		log.ErrorContext(ctx, "share: device assurance", "err", err)
	}
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
	// Split roles (docs/wsca.md): a WSCA-only instance has a device of its
	// own (server keys under wscd.WSCAPrefix) and reads the WSCD's sessions
	// and client keys under the share key; a WSCD seals them for it.
	wscaOnly := w.ServerKeys.Prefix() != ""
	if wscaOnly && (o.Roles.WSCD || !o.Roles.WSCA) {
		return nil, errors.New("stack: server keys with a prefix are a WSCA-only instance's")
	}
	peer := wscd.WSCAPrefix
	if wscaOnly {
		peer = ""
	}
	// Both sides make their share key at start, so the other finds it; its
	// kid is what the other role's --share-peer-key names.
	ownShare, err := w.ServerKeys.Key(ctx, wscd.PurposeShare)
	if err != nil {
		return nil, fmt.Errorf("stack: share key: %w", err)
	}
	var share *wscd.Share
	switch {
	case o.Roles.WSCD && o.Roles.WSCA && o.SharePeer == "":
		// Both roles here: nothing to share unless WSCA-only instances
		// are configured (their key pinned).
		share = wscd.NoShare(w.ServerKeys)
	default:
		share = wscd.NewShare(w.ServerKeys, peer, o.SharePeer)
		if o.SharePeer == "" {
			logger(o.Logger).WarnContext(ctx, "split roles without --share-peer-key: this role shares with whatever key the database holds "+
				"under the other role's name, so a database writer can read what is shared (docs/wsca.md, \"Split roles\")",
				"own_share_key", ownShare.KID)
		}
	}
	logger(o.Logger).InfoContext(ctx, "share key of this role (the other role's --share-peer-key)", "kid", ownShare.KID)
	origin := o.EvidenceOrigin
	if origin == "" {
		origin = DefaultEvidenceOrigin(o.PublicURL, o.Addr)
	}
	ecfg := evidence.Config{Store: st, Keys: w.ServerKeys, Origin: origin, Interval: o.EvidenceInterval, Logger: o.Logger, Registerer: o.Registry}
	if wscaOnly {
		// Its device is not the WSCD's: it records and serves, the WSCD
		// instances sequence and sign with their checkpoint key.
		ecfg.Keys = nil
	}
	ev, err := evidence.New(ctx, ecfg)
	if err != nil {
		return nil, err
	}
	w.Keys.SetEvidence(ev)
	w.Units.SetEvidence(ev)
	pcfg := pin.Config{Store: st, Sealer: sealer, Policy: o.PIN, Profile: o.Profile, Logger: o.Logger, Registerer: o.Registry, Evidence: ev,
		Share: func(ctx context.Context) (pin.Sealer, error) {
			sl, err := share.Sealer(ctx)
			if sl == nil {
				return nil, err
			}
			return sl, nil
		}}
	view := st
	if wscaOnly {
		view = st.ShareView()
		pcfg.Store, pcfg.Sealer, pcfg.Share, pcfg.SessionsOnly = view, lazyShare{share}, nil, true
	} else {
		w.Units.SetShare(share)
		w.Keys.SetShare(share)
	}
	if o.RefuseSoftwareOPRF && !o.OPRFInHSM {
		return nil, errors.New("stack: refusing software OPRF keys needs OPRF keys in the HSM")
	}
	if o.OPRFInHSM && !wscaOnly {
		dev, ok := w.Keys.Device().(pin.OPRFDevice)
		if !ok {
			return nil, errors.New("stack: OPRF keys in the HSM: the device cannot make derive-only keys")
		}
		pcfg.OPRFDevice, pcfg.RefuseSoftwareOPRF = dev, o.RefuseSoftwareOPRF
	}
	pins, err := pin.New(ctx, pcfg)
	if err != nil {
		return nil, err
	}
	w.Keys.SetHeldBlobs(pins.HeldBlobs)
	pseudonyms, err := wsca.NewPseudonyms(wsca.PseudonymsConfig{Store: st, Sealer: sealer, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	var (
		ak      *wsca.AttestationKey
		pub     *statuslists.Publisher
		attests *wsca.Attestations
	)
	if o.Roles.WSCA {
		ac := wsca.AttestationsConfig{Store: st, KeyMAC: sealer, Backend: w.Keys.Device().Info().Backend}
		if wscaOnly {
			// Key records are read with their share MAC and checked under
			// the share key; the device is the one the WSCD published.
			ac.Store, ac.KeyMAC, ac.Backend = view, lazyShare{share}, ""
			ac.Published = func(ctx context.Context) (device.Assurance, error) { return share.ReadAssurance(ctx, st) }
			ac.PublishedBackend = func(ctx context.Context) (string, error) { return share.ReadBackend(ctx, st) }
		}
		if ak, pub, attests, err = buildAttestations(ctx, st, w, sealer, o, ac); err != nil {
			return nil, err
		}
	}
	var statuses interface{ Notify() }
	if pub != nil {
		statuses = pub
	}
	dcfg := dispatch.Config{
		Attestations: attests, Statuses: statuses,
		Keys: w.Keys, ServerKeys: w.ServerKeys, PIN: pins, Store: view, WSCD: o.Roles.WSCD, Compat: o.Compat,
		WSCA: o.Roles.WSCA, Units: w.Units, Pseudonyms: pseudonyms, Assurance: w.Keys.Device().Info().Assurance, Share: share,
		MaxAge: o.MaxAge, SessionDuration: o.SessionDuration, MaxSession: o.MaxSession,
		TaskContexts: o.TaskContexts, KeyQuota: o.KeyQuota, ResponseKey: o.ResponseKey, Registerer: o.Registry, Logger: o.Logger,
		Evidence: ev,
	}
	var sd *wscd.SECDSA
	if _, ok := w.Keys.Device().(device.DeriveOnlyGenerator); ok && o.Roles.WSCD && !wscaOnly {
		sd, err = wscd.NewSECDSA(ctx, wscd.SECDSAConfig{Device: w.Keys.Device(), ServerKeys: w.ServerKeys, Store: st,
			MaxFailures: o.SECDSAMaxFailures, Logger: o.Logger})
		if err != nil {
			return nil, err
		}
		sd.SetEvidence(ev)
		dcfg.SECDSA = sd
	}
	if wscaOnly {
		// No wallet keys here; client keys are checked under the share
		// key; the assurance attested is the one the WSCD published.
		dcfg.Keys, dcfg.Share, dcfg.ClientKeyMAC = nil, nil, lazyShare{share}
		dcfg.Published = func(ctx context.Context) (device.Assurance, error) { return share.ReadAssurance(ctx, st) }
		dcfg.Assurance = device.AssuranceNotCertified
	}
	disp, err := dispatch.New(ctx, dcfg)
	if err != nil {
		return nil, err
	}
	scfg := server.Config{
		Addr: o.Addr, TLSCert: o.TLSCert, TLSKey: o.TLSKey, Roles: o.Roles, Keys: w.Keys, Units: w.Units,
		Logger: o.Logger, Registry: o.Registry, Version: o.Version, AdminToken: o.AdminToken, R2PS: disp, PIN: pins,
		ShutdownTimeout: o.ShutdownTimeout, ReadyTimeout: o.ReadyTimeout, R2PSMaxConcurrent: o.R2PSMaxConcurrent,
		CORSOrigins: o.CORSOrigins, Statuses: statuses, Evidence: ev.Handler(), EvidenceEntries: ev.EntryHandler(),
	}
	if pub != nil {
		scfg.StatusLists, scfg.AttestationKeys, scfg.DevCARoot = pub.Handler(), ak.KeySet, ak.DevRoot
	}
	srv, err := server.New(scfg)
	if err != nil {
		return nil, err
	}
	return &Stack{Store: st, Services: w, PIN: pins, R2PS: disp, Server: srv,
		Attestations: attests, AttestationKey: ak, Publisher: pub, Evidence: ev, SECDSA: sd, share: share, wscaOnly: wscaOnly, log: logger(o.Logger)}, nil
}

// lazyShare is the share sealer as a pin.Sealer and wscd.MACer on a
// WSCA-only instance, where the WSCD's share key may appear after the
// start: until then nothing opens and no MAC matches.
type lazyShare struct{ s *wscd.Share }

// errNoShare: no WSCD share key in the store yet.
var errNoShare = errors.New("stack: no share key with the WSCD yet")

func (l lazyShare) sealer() (*wscd.Sealer, error) {
	sl, err := l.s.Sealer(context.Background())
	if err == nil && sl == nil {
		err = errNoShare
	}
	return sl, err
}

func (l lazyShare) Seal(plaintext, ad []byte) ([]byte, error) {
	sl, err := l.sealer()
	if err != nil {
		return nil, err
	}
	return sl.Seal(plaintext, ad)
}

func (l lazyShare) Open(sealed, ad []byte) ([]byte, error) {
	sl, err := l.sealer()
	if err != nil {
		return nil, err
	}
	return sl.Open(sealed, ad)
}

// MAC is the share key's MAC or, while there is no share key, fresh
// random bytes: no stored MAC matches them, not even an empty one (an
// empty MAC would equal an empty one in hmac.Equal).
func (l lazyShare) MAC(domain string, parts ...[]byte) []byte {
	sl, err := l.sealer()
	if err != nil {
		b := make([]byte, sha256.Size)
		rand.Read(b) // never fails (crypto/rand)
		return b
	}
	return sl.MAC(domain, parts...)
}

// buildAttestations loads the attestation key and assembles the status
// list publisher and the attestation service of the wsca role.
// ac gives the attestations' store, the key records' MAC key and the
// wallet-key device's backend; on a WSCA-only instance also the
// assurance and backend as the WSCD published them (its own device's say
// nothing of the wallet keys).
func buildAttestations(ctx context.Context, st *store.Store, w *wscd.Services, sealer *wscd.Sealer, o Options,
	ac wsca.AttestationsConfig) (*wsca.AttestationKey, *statuslists.Publisher, *wsca.Attestations, error) {
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
	pub, err := statuslists.New(st, statuslists.Config{
		BaseURI: strings.TrimRight(base, "/"), ShardSize: sl.ShardSize, Pool: sl.Pool, Lifetime: sl.Lifetime, TTL: sl.TTL,
		Debounce: sl.Debounce, Signer: ak.Signer, Chain: ak.Chain, IndexKey: indexKey, Logger: o.Logger,
		UnitLimit: sl.UnitLimit, UnitWindow: sl.UnitWindow,
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
	ac.Statuses, ac.Issuer, ac.KeyStorage, ac.UserAuthentication = pub, ak.Issuer, assurance, ua
	ac.Certification, ac.Wallet = o.Attest.Certification, wallet
	ac.KeyAttestationLifetime, ac.WalletAttestationLifetime = o.Attest.KeyAttestationLifetime, o.Attest.WalletAttestationLifetime
	ac.Logger = o.Logger
	attests, err := wsca.NewAttestations(ac)
	if err != nil {
		return nil, nil, nil, err
	}
	return ak, pub, attests, nil
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
