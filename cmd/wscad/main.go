// Command wscad is the wsca server: the WSCD role (HSM key operations, PIN
// sessions) and the WSCA role (attestations, status), in one process or
// several on a shared store.
//
// With no flags it runs on embedded defaults in ./wsca-data: a SQLite store
// and a SoftHSM token if SoftHSM is installed, else the software keystore.
// Every flag can also be set as WSCA_<FLAG> in the environment or in a
// --config file; see README.md.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsca/wsca/attest"
	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/config"
	"github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/r2ps/dispatch"
	"github.com/wsca/wsca/server"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wsca"
	"github.com/wsca/wsca/wsca/statuslists"
	"github.com/wsca/wsca/wscd"
)

// version is set at build time: the Makefile's build passes
// -ldflags "-X main.version=$(git describe --tags --always --dirty)".
// Empty, config.Version falls back to the build info, then "dev".
var version string

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

// minAdminToken is the shortest admin token accepted, in bytes.
const minAdminToken = 32

type options struct {
	state           config.State
	showVersion     bool
	configFile      string
	listen          string
	role            string
	tlsCert         string
	tlsKey          string
	logFormat       string
	logLevel        string
	shutdownTimeout time.Duration
	readyTimeout    time.Duration
	adminListen     string
	adminTokenFile  string
	metricsListen   string
	pprofListen     string
	pinMaxAttempts  int
	pinDelays       string
	opaqueContext   string
	sessionDuration time.Duration
	maxSession      time.Duration
	taskContexts    string
	iatMaxAge       time.Duration
	r2psConcurrent  int
	corsOrigins     originsFlag
	compat          dispatch.Compat
	responseKey     dispatch.ResponseKey
	secdsaMax       int
	oprfHSM         bool
	acceptSoftOPRF  bool
	keyQuota        int
	publicURL       string
	evidenceOrigin  string
	attestChain     string
	attestDevCA     bool
	attestKeyName   string
	wallet          wsca.WalletSolution
	statusShard     int
	statusTTL       time.Duration
	attestLimit     int
	sharePeer       string
}

// enumFlag is a flag whose value a parse function reads (for example
// dispatch.ParseCompat), so a bad value from the command line, the
// environment or a config file stops the start.
type enumFlag[T fmt.Stringer] struct {
	p     *T
	parse func(string) (T, error)
}

func (f enumFlag[T]) String() string {
	if f.p == nil {
		return ""
	}
	return (*f.p).String()
}

func (f enumFlag[T]) Set(s string) error {
	v, err := f.parse(s)
	if err != nil {
		return err
	}
	*f.p = v
	return nil
}

// originsFlag is a repeatable flag of origins; a value may list several,
// comma-separated (as WSCA_CORS_ORIGIN does).
type originsFlag []string

func (f *originsFlag) String() string {
	if f == nil {
		return ""
	}
	return strings.Join(*f, ",")
}

func (f *originsFlag) Set(s string) error {
	for _, o := range strings.Split(s, ",") {
		if o = strings.TrimSpace(o); o != "" {
			*f = append(*f, o)
		}
	}
	return nil
}

// errVersion stops parsing: --version was given.
var errVersion = errors.New("version requested")

func parse(args []string, stderr io.Writer, lookup func(string) (string, bool)) (*options, error) {
	var o options
	fs := flag.NewFlagSet("wscad", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.state.Bind(fs)
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	fs.StringVar(&o.configFile, "config", "", "`file` of WSCA_NAME=value lines (flags and environment take precedence)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "listen `address` of the public API (R2PS, health, readiness)")
	fs.StringVar(&o.role, "role", "all", "roles to run: wscd, wsca or all (a wsca-only instance's device is its own token: never give it the wallet keys' token)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate `file` (PEM); with --tls-key serves HTTPS")
	fs.StringVar(&o.tlsKey, "tls-key", "", "TLS private key `file` (PEM)")
	fs.StringVar(&o.logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "how long to drain requests on shutdown")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", server.DefaultReadyTimeout, "bound on the store and device checks of /readyz")
	fs.StringVar(&o.adminListen, "admin-listen", "", "listen `address` of the admin API and its /metrics (off when empty); needs --admin-token-file")
	fs.StringVar(&o.adminTokenFile, "admin-token-file", "", "`file` holding the admin API bearer token (mode 0600 or stricter, at least 32 bytes)")
	fs.StringVar(&o.metricsListen, "metrics-listen", "", "listen `address` for Prometheus /metrics without a token (off when empty; bind it to a monitoring network)")
	fs.StringVar(&o.pprofListen, "pprof-listen", "", "loopback listen `address` for Go's /debug/pprof profiles (off when empty; for performance work only)")
	fs.IntVar(&o.pinMaxAttempts, "pin-max-attempts", pin.DefaultMaxAttempts, "PIN failures before a unit is locked until an operator unlocks it")
	fs.StringVar(&o.pinDelays, "pin-delays", "", "escalating waits after PIN failures, e.g. 3:1m,4:5m (failures:wait)")
	fs.StringVar(&o.opaqueContext, "opaque-context", "", "OPAQUE context string (empty: the SIROS-compatible default)")
	fs.DurationVar(&o.sessionDuration, "session-duration", dispatch.DefaultSessionDuration, "default PIN session length")
	fs.DurationVar(&o.maxSession, "max-session", dispatch.DefaultMaxSession, "longest PIN session a client may ask for")
	fs.StringVar(&o.taskContexts, "task-contexts", "signing", "comma-separated contexts where sign_ecdsa needs a session bound to sign: task (SCAL2)")
	fs.DurationVar(&o.iatMaxAge, "iat-max-age", dispatch.DefaultMaxAge, "oldest request (iat) accepted; nonces are kept this long")
	fs.IntVar(&o.r2psConcurrent, "r2ps-max-concurrent", 0, "R2PS requests served at once; more wait up to 1s, unread, then get 503 TRY_LATER (0: max(16, 2×GOMAXPROCS))")
	fs.Var(&o.corsOrigins, "cors-origin", "`origin` (https://wallet.example) whose pages may call /r2ps and the server and attestation keys from a browser; repeatable or comma-separated; none by default, never the admin API")
	fs.Var(enumFlag[dispatch.ResponseKey]{&o.responseKey, dispatch.ParseResponseKey}, "response-key", "where the R2PS response-signing key lives: sealed (in memory, sealed in the store by the HSM; the default) or hsm (on the HSM: one more HSM signature per request)")
	fs.Var(enumFlag[dispatch.Compat]{&o.compat, dispatch.ParseCompat}, "compat", "`mode` for go-r2ps-service clients (docs/protocol.md §8): off (the default), jwe (2FA in their session-key JWE) or bearer (also their bare 2FA JWS: weaker)")
	fs.IntVar(&o.keyQuota, "key-quota", dispatch.DefaultKeyQuota, "keys a wallet unit may hold")
	fs.StringVar(&o.evidenceOrigin, "evidence-origin", "", "`name` of the evidence log: its checkpoints' origin and key name (empty: HOST/evidence of --public-url, else of --listen)")
	fs.IntVar(&o.secdsaMax, "secdsa-max-failures", wscd.DefaultSECDSAMaxFailures, "SECDSA PIN failures after which a unit's SECDSA binding locks (docs/secdsa.md)")
	fs.BoolVar(&o.oprfHSM, "oprf-hsm", true, "give every new PIN record its own derive-only OPRF key on the device, so a copy of the database and of the server's memory allows no offline PIN search (docs/protocol.md, \"HSM-bound OPRF key\")")
	fs.BoolVar(&o.acceptSoftOPRF, "accept-software-oprf", true, "accept logins under PIN records whose OPRF key is derived in software (made before --oprf-hsm; they move to the HSM at their next PIN change); false needs --oprf-hsm")
	fs.StringVar(&o.publicURL, "public-url", "", "public base `URL` of this deployment's WSCA role (status list URIs start with it; https, http only on loopback; empty: http://LISTEN, then a loopback address)")
	fs.StringVar(&o.attestChain, "attest-chain", "", "PEM `file` certifying the attestation key: leaf first, no trust anchor (empty: a development CA, if --attest-dev-ca)")
	fs.BoolVar(&o.attestDevCA, "attest-dev-ca", true, "without --attest-chain, certify the attestation key by a development CA kept in the store (development only)")
	fs.StringVar(&o.attestKeyName, "attest-key-name", wsca.DefaultAttestationKeyName, "`name` of the attestation key on the device (a rotation names a new one)")
	fs.StringVar(&o.wallet.Subject, "wallet-subject", stack.DefaultWallet.Subject, "sub of wallet instance attestations: the wallet solution's client_id")
	fs.StringVar(&o.wallet.Issuer, "wallet-iss", "", "iss of wallet instance attestations (empty: none, as in EUDI TS3 v1.5; some validators still require it)")
	fs.StringVar(&o.wallet.Name, "wallet-name", stack.DefaultWallet.Name, "wallet_name of wallet instance attestations")
	fs.StringVar(&o.wallet.Link, "wallet-link", stack.DefaultWallet.Link, "wallet_link (`URL`) of wallet instance attestations")
	fs.StringVar(&o.wallet.Version, "wallet-version", stack.DefaultWallet.Version, "wallet_version of wallet instance attestations")
	fs.IntVar(&o.statusShard, "status-shard-size", stack.DefaultShardSize, "entries of each Token Status List (at least 10000)")
	fs.DurationVar(&o.statusTTL, "status-ttl", stack.DefaultStatusTTL, "ttl of the status lists (and their HTTP max-age)")
	fs.StringVar(&o.sharePeer, "share-peer-key", "", "`kid` of the other role's share key, for split roles (logged at its start as \"share key of this role\"): share only with that key; without it a wscd- or wsca-only instance shares with whatever key the database holds, and an instance of both roles shares nothing (docs/wsca.md, \"Split roles\")")
	fs.IntVar(&o.attestLimit, "attest-limit", statuslists.DefaultUnitLimit, "attestations (key attestations and WIAs together) one wallet unit may get per 24 h; more are refused (ACCESS_DENIED)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.showVersion {
		return &o, errVersion
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unknown command %q: wscad takes flags only (wscad -h lists them)", fs.Arg(0))
	}
	if o.configFile == "" {
		if v, ok := lookup(config.EnvName("config")); ok {
			o.configFile = v
		}
	}
	var file map[string]string
	if o.configFile != "" {
		var err error
		if file, err = config.ReadFile(o.configFile); err != nil {
			return nil, err
		}
	}
	if err := config.Apply(fs, lookup, file); err != nil {
		return nil, err
	}
	if o.r2psConcurrent < 0 {
		return nil, fmt.Errorf("--r2ps-max-concurrent %d: want 0 (the default) or more", o.r2psConcurrent)
	}
	for _, origin := range o.corsOrigins {
		if err := server.ValidateOrigin(origin); err != nil {
			return nil, fmt.Errorf("--cors-origin: %w", err)
		}
	}
	return &o, nil
}

// settings are the options checked and converted: everything that can be
// wrong in the configuration is found before anything is created or
// opened.
type settings struct {
	roles       server.Roles
	log         *slog.Logger
	policy      pin.Policy
	profile     pin.Profile
	tasks       []string
	adminToken  []byte
	attestChain []byte
}

// check validates every option. It reads the admin token and the TLS key
// pair, and the PIN file a pkcs11 URI names, but creates and opens nothing.
func (o *options) check(stderr io.Writer) (*settings, error) {
	var s settings
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	s.log, err = config.Logger(stderr, o.logFormat, o.logLevel)
	add(err)
	s.roles, err = server.ParseRoles(o.role)
	add(err)
	if o.sharePeer != "" {
		if _, err := device.ParseKID(o.sharePeer); err != nil {
			add(fmt.Errorf("--share-peer-key %q: want the kid the other role logs (32 lowercase hex digits)", o.sharePeer))
		}
	}
	add(o.state.Check())
	delays, err := pin.ParseDelays(o.pinDelays)
	if err != nil {
		add(fmt.Errorf("--pin-delays: %w", err))
	} else {
		s.policy = pin.Policy{MaxAttempts: o.pinMaxAttempts, Delays: delays}
		add(s.policy.Check())
	}
	s.profile = pin.Profile{Context: o.opaqueContext}
	if _, err := s.profile.Configuration(); err != nil {
		add(fmt.Errorf("--opaque-context: %w", err))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"shutdown-timeout", o.shutdownTimeout}, {"ready-timeout", o.readyTimeout},
		{"session-duration", o.sessionDuration}, {"max-session", o.maxSession}, {"iat-max-age", o.iatMaxAge},
	} {
		if d.v <= 0 {
			add(fmt.Errorf("--%s must be positive, not %v", d.name, d.v))
		}
	}
	if o.statusShard < 10_000 {
		add(fmt.Errorf("--status-shard-size must be at least 10000, not %d", o.statusShard))
	}
	if o.attestLimit < 1 {
		add(fmt.Errorf("--attest-limit must be at least 1, not %d", o.attestLimit))
	}
	if o.statusTTL <= 0 {
		add(fmt.Errorf("--status-ttl must be positive, not %v", o.statusTTL))
	}
	if o.attestChain != "" {
		if s.attestChain, err = os.ReadFile(o.attestChain); err != nil {
			add(fmt.Errorf("--attest-chain: %w", err))
		} else if _, err := attest.ParseChainPEM(s.attestChain); err != nil {
			add(fmt.Errorf("--attest-chain: %w", err))
		}
	}
	if o.publicURL != "" {
		u, err := url.Parse(o.publicURL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			add(fmt.Errorf("--public-url %q: want an https URL", o.publicURL))
		case u.Scheme == "http" && !isLoopback(u.Hostname()):
			// Status references must be https (draft -21 §6.1, HAIP); plain
			// http only for a loopback development server.
			add(fmt.Errorf("--public-url %q: status lists must be served over https (http only on loopback)", o.publicURL))
		}
	}
	if o.keyQuota < 1 {
		add(fmt.Errorf("--key-quota must be at least 1, not %d", o.keyQuota))
	}
	if o.secdsaMax < 1 {
		add(fmt.Errorf("--secdsa-max-failures must be at least 1, not %d", o.secdsaMax))
	}
	if !o.acceptSoftOPRF && !o.oprfHSM {
		add(errors.New("--accept-software-oprf=false needs --oprf-hsm"))
	}
	if o.sessionDuration > o.maxSession {
		add(fmt.Errorf("--session-duration %v exceeds --max-session %v", o.sessionDuration, o.maxSession))
	}
	for _, c := range strings.Split(o.taskContexts, ",") {
		if c = strings.TrimSpace(c); c != "" {
			s.tasks = append(s.tasks, c)
		}
	}
	for _, a := range []struct{ name, v string }{{"listen", o.listen}, {"admin-listen", o.adminListen}, {"metrics-listen", o.metricsListen}, {"pprof-listen", o.pprofListen}} {
		if a.v == "" && a.name != "listen" {
			continue
		}
		host, _, err := net.SplitHostPort(a.v)
		if err != nil {
			add(fmt.Errorf("--%s: %w", a.name, err))
			continue
		}
		// Profiles show the process's code paths and memory: never beyond
		// this machine.
		if ip := net.ParseIP(host); a.name == "pprof-listen" && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			add(fmt.Errorf("--pprof-listen %s: must be a loopback address (127.0.0.1, ::1 or localhost)", a.v))
		}
	}
	switch {
	case (o.tlsCert == "") != (o.tlsKey == ""):
		add(errors.New("--tls-cert and --tls-key go together"))
	case o.tlsCert != "":
		if _, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey); err != nil {
			add(fmt.Errorf("TLS key pair: %w", err))
		}
	}
	switch {
	case o.adminListen != "" && o.adminTokenFile == "":
		add(errors.New("--admin-listen needs --admin-token-file"))
	case o.adminTokenFile != "":
		s.adminToken, err = readToken(o.adminTokenFile)
		add(err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &s, nil
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	o, err := parse(args, stderr, lookup)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errVersion):
		fmt.Fprintln(stdout, "wscad", config.Version(version))
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "wscad: error: %v\n", err)
		return 2
	}
	s, err := o.check(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "wscad: error: %v\n", err)
		return 2
	}
	if err := serve(ctx, o, s); err != nil {
		s.log.Error("wscad stopped", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, o *options, s *settings) error {
	log := s.log
	ver := config.Version(version)
	res, err := o.state.Resolve()
	if err != nil {
		return err
	}
	if s.roles == (server.Roles{WSCA: true}) {
		// A WSCA-only instance (docs/wsca.md): its device is its own (the
		// attestation key, its protocol keys, its share key), never the
		// wallet keys' token.
		res.ServerKeyPrefix = wscd.WSCAPrefix
	}
	msg := "wscad starting"
	if res.Defaults != "" {
		msg += " on " + res.Defaults
	}
	log.Info(msg, "version", ver, "roles", s.roles.String(), "listen", o.listen, "compat", o.compat.String(), "key_quota", o.keyQuota, "response_key", o.responseKey.String())
	if o.compat == dispatch.CompatBearer {
		log.Warn("--compat=bearer: go-r2ps-service 2FA requests are served as bare JWS, without proof of the OPAQUE session key; a session id is then a bearer secret and answers are not encrypted (docs/protocol.md §8): serve it only over TLS to clients that cannot send the 2FA JWE")
	}
	reg := prometheus.NewRegistry()
	st, err := config.Open(ctx, res, log, reg)
	if err != nil {
		return err
	}
	defer st.Close()
	info := st.Device.Info()
	log.Info("device open", "backend", info.Backend, "assurance", info.Assurance, "device", info.Description)
	log.Info("store open", "backend", st.Store.Backend())
	switch {
	case info.SoftwareOnly():
		log.Warn("the device is software: keys are not protected by an HSM; use it for development only")
	case !info.Assurance.Certified():
		log.Warn("the device's assurance is not declared: nothing it backs claims certified key storage (declare it with --device-assurance or x-wsca-assurance in the URI)")
	}
	stk, err := stack.Build(ctx, st.Store, st.WSCD, stack.Options{
		Addr: o.listen, Roles: s.roles, TLSCert: o.tlsCert, TLSKey: o.tlsKey, AdminToken: s.adminToken,
		PIN: s.policy, Profile: s.profile,
		MaxAge: o.iatMaxAge, SessionDuration: o.sessionDuration, MaxSession: o.maxSession,
		// A non-nil slice: an empty --task-contexts means none, not the default.
		TaskContexts: append([]string{}, s.tasks...),
		Compat:       o.compat, KeyQuota: o.keyQuota, ResponseKey: o.responseKey, SECDSAMaxFailures: o.secdsaMax,
		OPRFInHSM: o.oprfHSM, RefuseSoftwareOPRF: !o.acceptSoftOPRF, SharePeer: device.KID(o.sharePeer),
		Registry: reg, Logger: log, Version: ver,
		ShutdownTimeout: o.shutdownTimeout, ReadyTimeout: o.readyTimeout, R2PSMaxConcurrent: o.r2psConcurrent,
		CORSOrigins: o.corsOrigins, PublicURL: o.publicURL, EvidenceOrigin: o.evidenceOrigin,
		Attest: stack.AttestOptions{
			ChainPEM: s.attestChain, NoDevCA: !o.attestDevCA, KeyName: o.attestKeyName, Wallet: o.wallet,
		},
		StatusLists: stack.StatusListOptions{ShardSize: o.statusShard, TTL: o.statusTTL, UnitLimit: o.attestLimit, UnitWindow: statuslists.DefaultUnitWindow},
	})
	if err != nil {
		return err
	}
	srv := stk.Server
	scheme := "http"
	if o.tlsCert != "" {
		scheme = "https"
	}
	// Every listener is bound before any serves, so a taken port stops the
	// start rather than a running instance.
	type listener struct {
		name, path string
		ln         net.Listener
		serve      func(context.Context, net.Listener) error
	}
	ln, err := srv.Listen()
	if err != nil {
		return err
	}
	lns := []listener{{"public API", "", ln, srv.Serve}}
	closeAll := func() {
		for _, l := range lns {
			l.ln.Close()
		}
	}
	for _, extra := range []struct {
		name, addr, path string
		serve            func(context.Context, net.Listener) error
	}{
		{"admin API", o.adminListen, server.AdminPrefix, srv.ServeAdmin},
		{"metrics", o.metricsListen, "/metrics", srv.ServeMetrics},
		{"pprof", o.pprofListen, "/debug/pprof/", servePprof},
	} {
		if extra.addr == "" {
			continue
		}
		l, err := net.Listen("tcp", extra.addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("%s listener: %w", extra.name, err)
		}
		lns = append(lns, listener{extra.name, extra.path, l, extra.serve})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(lns)+2)
	for _, l := range lns {
		sch := scheme
		if l.name == "metrics" || l.name == "pprof" {
			sch = "http" // no TLS: bind them to a monitoring network, or loopback
		}
		log.Info(l.name+" listening", "url", sch+"://"+l.ln.Addr().String()+l.path)
		go func() { errc <- l.serve(ctx, l.ln) }()
	}
	go func() { errc <- purge(ctx, st.Store, stk.PIN, log) }()
	go func() { errc <- stk.Background(ctx) }()
	// The first listener to stop (on a signal: all of them) stops the others.
	var first error
	for range len(lns) + 2 {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
		cancel()
	}
	if first != nil {
		return first
	}
	log.Info("wscad stopped")
	return nil
}

// servePprof serves Go's runtime profiles (net/http/pprof) on ln until
// ctx ends; --pprof-listen binds it to loopback only.
func servePprof(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		hs.Close()
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("pprof listener: %w", err)
	}
	return nil
}

// purge deletes expired sessions, nonces, codes and pending registrations
// every minute until ctx ends, and destroys the HSM OPRF keys they (or
// PIN changes) retired. Every instance may run it: deletes of expired
// rows are idempotent, and so is destroying a key.
func purge(ctx context.Context, st *store.Store, pins *pin.Server, log *slog.Logger) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if n, err := st.Purge(ctx, time.Now()); err != nil && ctx.Err() == nil {
				log.Warn("purge of expired state failed", "err", err)
			} else if n > 0 {
				log.Debug("purged expired state", "rows", n)
			}
			pins.DestroyRetiredOPRFKeys(ctx, "")
		}
	}
}

// readToken reads the admin token file: one line of at least minAdminToken
// bytes, in a file neither group nor others can read (the token is a
// credential for every unit's state). The token never appears in errors.
func readToken(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("admin token: %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("admin token: %s has mode %04o, readable by group or others; chmod 600 it", path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	tok := []byte(strings.TrimRight(string(b), "\r\n"))
	clear(b)
	if len(tok) < minAdminToken {
		return nil, fmt.Errorf("admin token: %s holds %d bytes, need at least %d (e.g. openssl rand -hex 32)", path, len(tok), minAdminToken)
	}
	if strings.ContainsAny(string(tok), "\r\n") {
		return nil, fmt.Errorf("admin token: %s holds more than one line", path)
	}
	return tok, nil
}
