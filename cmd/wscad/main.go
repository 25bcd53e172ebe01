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
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsca/wsca/internal/config"
	"github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/r2ps/dispatch"
	"github.com/wsca/wsca/server"
	"github.com/wsca/wsca/store"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr, os.LookupEnv))
}

type options struct {
	state           config.State
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
	pinMaxAttempts  int
	pinDelays       string
	opaqueContext   string
	sessionDuration time.Duration
	maxSession      time.Duration
	taskContexts    string
	iatMaxAge       time.Duration
	r2psConcurrent  int
}

func parse(args []string, stderr io.Writer, lookup func(string) (string, bool)) (*options, error) {
	var o options
	fs := flag.NewFlagSet("wscad", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.state.Bind(fs)
	fs.StringVar(&o.configFile, "config", "", "`file` of WSCA_NAME=value lines (flags and environment take precedence)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "listen `address`")
	fs.StringVar(&o.role, "role", "all", "roles to run: wscd, wsca or all")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate `file` (PEM); with --tls-key serves HTTPS")
	fs.StringVar(&o.tlsKey, "tls-key", "", "TLS private key `file` (PEM)")
	fs.StringVar(&o.logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "how long to drain requests on shutdown")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", server.DefaultReadyTimeout, "bound on the store and device checks of /readyz")
	fs.StringVar(&o.adminListen, "admin-listen", "", "listen `address` of the admin API (off when empty); needs --admin-token-file")
	fs.StringVar(&o.adminTokenFile, "admin-token-file", "", "`file` holding the admin API bearer token")
	fs.IntVar(&o.pinMaxAttempts, "pin-max-attempts", pin.DefaultMaxAttempts, "PIN failures before a unit is locked until an operator unlocks it")
	fs.StringVar(&o.pinDelays, "pin-delays", "", "escalating waits after PIN failures, e.g. 3:1m,4:5m (failures:wait)")
	fs.StringVar(&o.opaqueContext, "opaque-context", "", "OPAQUE context string (empty: the SIROS-compatible default)")
	fs.DurationVar(&o.sessionDuration, "session-duration", dispatch.DefaultSessionDuration, "default PIN session length")
	fs.DurationVar(&o.maxSession, "max-session", dispatch.DefaultMaxSession, "longest PIN session a client may ask for")
	fs.StringVar(&o.taskContexts, "task-contexts", "signing", "comma-separated contexts where sign_ecdsa needs a session bound to sign: task (SCAL2)")
	fs.DurationVar(&o.iatMaxAge, "iat-max-age", dispatch.DefaultMaxAge, "oldest request (iat) accepted; nonces are kept this long")
	fs.IntVar(&o.r2psConcurrent, "r2ps-max-concurrent", 0, "R2PS requests served at once; more wait up to 1s, unread, then get 503 TRY_LATER (0: max(16, 2×GOMAXPROCS))")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
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
	return &o, nil
}

func run(ctx context.Context, args []string, stderr io.Writer, lookup func(string) (string, bool)) int {
	o, err := parse(args, stderr, lookup)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "wscad: error: %v\n", err)
		return 2
	}
	log, err := config.Logger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "wscad: error: %v\n", err)
		return 2
	}
	if err := serve(ctx, o, log); err != nil {
		log.Error("wscad stopped", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, o *options, log *slog.Logger) error {
	roles, err := server.ParseRoles(o.role)
	if err != nil {
		return err
	}
	res, err := o.state.Resolve()
	if err != nil {
		return err
	}
	if res.Defaults != "" {
		log.Info("wscad starting on "+res.Defaults, "version", version, "roles", roles.String(), "listen", o.listen)
	} else {
		log.Info("wscad starting", "version", version, "roles", roles.String(), "listen", o.listen)
	}
	reg := prometheus.NewRegistry()
	st, err := config.Open(ctx, res, log, reg)
	if err != nil {
		return err
	}
	defer st.Close()
	info := st.Device.Info()
	log.Info("device open", "backend", info.Backend, "software", info.Software, "device", info.Description)
	log.Info("store open", "backend", st.Store.Backend())
	if info.Software {
		log.Warn("the device is software: keys are not protected by an HSM; use it for development only")
	}
	var adminToken []byte
	if o.adminListen != "" {
		if adminToken, err = readToken(o.adminTokenFile); err != nil {
			return err
		}
	}
	delays, err := pin.ParseDelays(o.pinDelays)
	if err != nil {
		return err
	}
	var tasks []string
	for _, c := range strings.Split(o.taskContexts, ",") {
		if c = strings.TrimSpace(c); c != "" {
			tasks = append(tasks, c)
		}
	}
	stk, err := stack.Build(ctx, st.Store, st.Service, stack.Options{
		Addr: o.listen, Roles: roles, TLSCert: o.tlsCert, TLSKey: o.tlsKey, AdminToken: adminToken,
		PIN:     pin.Policy{MaxAttempts: o.pinMaxAttempts, Delays: delays},
		Profile: pin.Profile{Context: o.opaqueContext},
		MaxAge:  o.iatMaxAge, SessionDuration: o.sessionDuration, MaxSession: o.maxSession,
		// A non-nil slice: an empty --task-contexts means none, not the default.
		TaskContexts: append([]string{}, tasks...),
		Registry:     reg, Logger: log, Version: version,
		ShutdownTimeout: o.shutdownTimeout, ReadyTimeout: o.readyTimeout, R2PSMaxConcurrent: o.r2psConcurrent,
	})
	if err != nil {
		return err
	}
	srv := stk.Server
	ln, err := srv.Listen()
	if err != nil {
		return err
	}
	scheme := "http"
	if o.tlsCert != "" {
		scheme = "https"
	}
	log.Info("listening", "url", scheme+"://"+ln.Addr().String())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	running := 2
	go func() { errc <- srv.Serve(ctx, ln) }()
	go func() { errc <- purge(ctx, st.Store, log) }()
	if o.adminListen != "" {
		aln, err := net.Listen("tcp", o.adminListen)
		if err != nil {
			cancel()
			<-errc
			return fmt.Errorf("admin listener: %w", err)
		}
		log.Info("admin API listening", "url", scheme+"://"+aln.Addr().String()+server.AdminPrefix)
		running++
		go func() { errc <- srv.ServeAdmin(ctx, aln) }()
	}
	// The first listener to stop (on a signal: all of them) stops the others.
	var first error
	for range running {
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

// purge deletes expired sessions, nonces, codes and pending registrations
// every minute until ctx ends. Every instance may run it: deletes of
// expired rows are idempotent.
func purge(ctx context.Context, st *store.Store, log *slog.Logger) error {
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
		}
	}
}

// readToken reads the admin token file: one line, at least 16 characters.
func readToken(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("--admin-listen needs --admin-token-file")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	tok := []byte(strings.TrimRight(string(b), "\r\n"))
	if len(tok) < 16 {
		return nil, errors.New("admin token: must be at least 16 characters")
	}
	return tok, nil
}
