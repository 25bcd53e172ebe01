// Package server is the HTTP face of wscad: routing, middleware, health,
// readiness and metrics, and the roles (wscd, wsca) that later protocol
// handlers attach to. Only this package imports net/http on the server
// side.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wsca/wsca/attest"
	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/dispatch"
	"github.com/wsca/wsca/wscd"
)

// Defaults for Config fields left zero.
const (
	DefaultShutdownTimeout = 15 * time.Second
	DefaultReadyTimeout    = 2 * time.Second
	MaxBodyBytes           = 1 << 20
	// R2PSQueueWait is how long an R2PS request over the concurrency limit
	// waits for a slot before it is answered 503 TRY_LATER.
	R2PSQueueWait = time.Second
)

// Roles says which services this instance runs. wscd (HSM key operations,
// PIN sessions) and wsca (attestations, status) can run in one process or
// in separate processes on one shared store.
type Roles struct {
	WSCD bool
	WSCA bool
}

// ParseRoles parses "wscd", "wsca", "all" or a comma list.
func ParseRoles(s string) (Roles, error) {
	var r Roles
	for _, p := range strings.Split(s, ",") {
		switch strings.TrimSpace(p) {
		case "wscd":
			r.WSCD = true
		case "wsca":
			r.WSCA = true
		case "all":
			r.WSCD, r.WSCA = true, true
		default:
			return Roles{}, fmt.Errorf("server: unknown role %q (wscd, wsca, all)", p)
		}
	}
	return r, nil
}

func (r Roles) String() string {
	switch {
	case r.WSCD && r.WSCA:
		return "all"
	case r.WSCD:
		return "wscd"
	case r.WSCA:
		return "wsca"
	}
	return "none"
}

// Config configures a Server.
type Config struct {
	// Addr is the listen address, host:port.
	Addr string
	// TLSCert and TLSKey, if set, serve HTTPS (TLS 1.2 or later).
	TLSCert, TLSKey string
	Roles           Roles
	// Keys answers readiness and names the device.
	Keys *wscd.Keys
	// Units serves the admin API.
	Units  *wscd.Units
	Logger *slog.Logger
	// Registry collects the metrics served at /metrics (on the metrics
	// listener and the admin API, never the public one); the server adds
	// Go runtime, process and build-info collectors to it.
	Registry *prometheus.Registry
	Version  string
	// ShutdownTimeout bounds the graceful drain on shutdown.
	ShutdownTimeout time.Duration
	// ReadyTimeout bounds the store and device checks of /readyz.
	ReadyTimeout time.Duration
	// AdminToken is the bearer token of the admin API (ServeAdmin); the
	// admin API is off without one.
	AdminToken []byte
	// R2PS serves POST /r2ps and the server keys; nil leaves both out.
	R2PS *dispatch.Dispatcher
	// PIN answers the admin API's attempts query with the policy's view of
	// the lock; nil leaves that query out.
	PIN *pin.Server
	// StatusLists serves GET /statuslists/{id} (the wsca role); nil leaves
	// it out.
	StatusLists http.Handler
	// AttestationKeys is the JWKS of the attestation keys, served at
	// /.well-known/jwks.json; DevCARoot, when attestations are certified
	// by a development CA, its root at /.well-known/wsca-dev-ca.pem.
	AttestationKeys *attest.KeySet
	DevCARoot       *x509.Certificate
	// Evidence serves GET /evidence/... (the evidence log's checkpoints
	// and proofs, evidence.Log.Handler) on the public listener, and
	// EvidenceEntries its leaves (evidence.Log.EntryHandler) on the admin
	// listener; nil leaves them out.
	Evidence, EvidenceEntries http.Handler
	// Statuses is told when statuses change (the admin API's state
	// changes), so that the status lists are republished soon; may be nil.
	Statuses interface{ Notify() }
	// R2PSMaxConcurrent bounds the /r2ps requests served at once; more
	// wait up to R2PSQueueWait, their body unread, then are answered 503
	// TRY_LATER. 0 means DefaultR2PSMaxConcurrent.
	R2PSMaxConcurrent int
	// CORSOrigins are the origins (ValidateOrigin) whose pages may call
	// the wallet's endpoints (/r2ps, the server keys, the attestation
	// keys) from a browser; none by default. Never the admin API.
	CORSOrigins []string
}

// DefaultR2PSMaxConcurrent is the bound on /r2ps requests served at once
// when none is configured: twice GOMAXPROCS, and at least 16, since a
// request mostly waits on the HSM and the store. Each holds at most one
// body (MaxBodyBytes) and what parsing it costs, about as much again.
func DefaultR2PSMaxConcurrent() int { return max(16, 2*runtime.GOMAXPROCS(0)) }

// Server serves one wscad instance.
type Server struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler
	metrics http.Handler
	// r2psSlots holds a token per /r2ps request being served.
	r2psSlots chan struct{}
	r2psBusy  prometheus.Counter
}

// New builds a server. It registers its collectors on cfg.Registry.
func New(cfg Config) (*Server, error) {
	if cfg.Keys == nil || cfg.Units == nil || cfg.Registry == nil {
		return nil, errors.New("server: keys, units and registry are required")
	}
	if !cfg.Roles.WSCD && !cfg.Roles.WSCA {
		return nil, errors.New("server: no role")
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("server: TLS needs both a certificate and a key")
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	switch {
	case cfg.R2PSMaxConcurrent < 0:
		return nil, fmt.Errorf("server: R2PS concurrency limit %d is negative", cfg.R2PSMaxConcurrent)
	case cfg.R2PSMaxConcurrent == 0:
		cfg.R2PSMaxConcurrent = DefaultR2PSMaxConcurrent()
	}
	for _, o := range cfg.CORSOrigins {
		if err := ValidateOrigin(o); err != nil {
			return nil, err
		}
	}
	s := &Server{cfg: cfg, log: cfg.Logger, r2psSlots: make(chan struct{}, cfg.R2PSMaxConcurrent)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	info := cfg.Keys.Device().Info()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "wsca_build_info",
		Help: "Build and deployment information; always 1.",
		ConstLabels: prometheus.Labels{
			"version": cfg.Version, "roles": cfg.Roles.String(),
			"device_backend": info.Backend, "device_assurance": string(info.Assurance),
		},
	})
	build.Set(1)
	s.r2psBusy = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "wsca_r2ps_busy_total",
		Help: "R2PS requests refused with 503 TRY_LATER because the concurrency limit was reached.",
	})
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "wsca_r2ps_in_flight",
		Help:        "R2PS requests being served.",
		ConstLabels: prometheus.Labels{"limit": fmt.Sprint(cfg.R2PSMaxConcurrent)},
	}, func() float64 { return float64(len(s.r2psSlots)) })
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build, s.r2psBusy, inFlight,
	} {
		if err := cfg.Registry.Register(c); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", s.handle(s.healthz))
	mux.Handle("GET /readyz", s.handle(s.readyz))
	if cfg.R2PS != nil {
		mux.Handle("POST "+r2ps.Path, s.handle(s.serveR2PS))
		mux.Handle("GET "+r2ps.KeysPath, s.handle(s.r2psKeys))
	}
	if cfg.StatusLists != nil {
		mux.Handle("GET /statuslists/{id}", cfg.StatusLists)
	}
	if cfg.Evidence != nil {
		mux.Handle("GET /evidence/", cfg.Evidence)
	}
	if cfg.AttestationKeys != nil {
		mux.Handle("GET "+JWKSPath, s.handle(s.jwks))
	}
	if cfg.DevCARoot != nil {
		mux.Handle("GET "+DevCAPath, s.handle(s.devCA))
	}
	// /metrics is not on the public listener: it tells anyone what runs
	// and how busy it is. It is served by ServeMetrics and on the admin API.
	s.metrics = promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError),
	})
	s.handler = s.middleware(cors(cfg.CORSOrigins, mux))
	return s, nil
}

// Handler returns the server's root handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// MetricsHandler serves GET /metrics (Prometheus) and /healthz, for a
// listener only the monitoring network reaches (ServeMetrics).
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics)
	mux.Handle("GET /healthz", s.handle(s.healthz))
	return s.middleware(mux)
}

// ServeMetrics serves MetricsHandler on ln until ctx is cancelled.
func (s *Server) ServeMetrics(ctx context.Context, ln net.Listener) error {
	return s.serve(ctx, ln, s.MetricsHandler())
}

// serveR2PS answers one R2PS message. The dispatcher decides the status
// and body; this bounds the work: at most R2PSMaxConcurrent messages are
// read and dispatched at once. Any more waits, its body unread, up to
// R2PSQueueWait for a slot and is then refused, so a flood of hostile
// bodies holds no more than R2PSMaxConcurrent of them in memory while a
// burst of legitimate ones is served. The body is read into one buffer of
// its declared length.
func (s *Server) serveR2PS(w http.ResponseWriter, r *http.Request) error {
	if r.ContentLength > MaxBodyBytes {
		w.Header().Set("Connection", "close") // as below
		return Errorf(http.StatusRequestEntityTooLarge, "message too large", fmt.Errorf("Content-Length %d", r.ContentLength))
	}
	if s.acquireR2PS(r.Context()) {
		defer func() { <-s.r2psSlots }()
	} else {
		s.r2psBusy.Inc()
		s.log.DebugContext(r.Context(), "r2ps request refused: concurrency limit", "request_id", requestID(r.Context()),
			"limit", cap(s.r2psSlots))
		// Connection: close, or net/http would wait for up to 256 KiB of
		// the body to keep the connection (it cannot tell how much is left,
		// as the middleware wrapped the body).
		w.Header().Set("Connection", "close")
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r2ps.CodeTryLater)
		return nil
	}
	body, err := readBody(r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return Errorf(http.StatusRequestEntityTooLarge, "message too large", err)
		}
		return Errorf(http.StatusBadRequest, "unreadable body", err)
	}
	rep := s.cfg.R2PS.Serve(dispatch.WithRequestID(r.Context(), requestID(r.Context())), body)
	w.Header().Set("Content-Type", rep.ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(rep.Status)
	w.Write(rep.Body)
	return nil
}

// acquireR2PS takes a slot for an R2PS request, waiting up to
// R2PSQueueWait for one; it reports false when none came free or the
// client left.
func (s *Server) acquireR2PS(ctx context.Context) bool {
	select {
	case s.r2psSlots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(R2PSQueueWait)
	defer t.Stop()
	select {
	case s.r2psSlots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// readBody reads a request body (at most MaxBodyBytes, which the middleware
// enforces) into one buffer: of the declared length when there is one,
// else grown as io.ReadAll grows it.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength < 0 {
		return io.ReadAll(r.Body)
	}
	body := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		return nil, err
	}
	return body, nil
}

// writeProblem answers with an RFC 9457 problem carrying an R2PS code, in
// the form the dispatcher uses (docs/protocol.md §1).
func writeProblem(w http.ResponseWriter, code string) {
	status := r2ps.HTTPStatus(code)
	w.Header().Set("Content-Type", dispatch.MediaProblem)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"type": "urn:wsca:r2ps:" + code, "title": strings.ToLower(strings.ReplaceAll(code, "_", " ")),
		"status": status, "code": code,
	})
}

// r2psKeys publishes the server's R2PS keys (JWKS).
func (s *Server) r2psKeys(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.cfg.R2PS.Keys())
	return nil
}

// healthz answers while the process runs, with the version deployed.
// Paths of the attestation keys.
const (
	JWKSPath  = "/.well-known/jwks.json"
	DevCAPath = "/.well-known/wsca-dev-ca.pem"
)

// jwks serves the attestation keys' JWKS.
func (s *Server) jwks(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("Content-Type", "application/jwk-set+json")
	return json.NewEncoder(w).Encode(s.cfg.AttestationKeys)
}

// devCA serves the development CA's root certificate: the trust anchor of
// attestations in development, never in production.
func (s *Server) devCA(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, err := w.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.cfg.DevCARoot.Raw}))
	return err
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.cfg.Version})
	return nil
}

// readyz answers 200 when the store and the device both answer within
// ReadyTimeout, 503 otherwise. Which one failed is said; why goes to the log.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyTimeout)
	defer cancel()
	if err := s.cfg.Keys.Ready(ctx); err != nil {
		s.log.WarnContext(r.Context(), "not ready", "request_id", requestID(r.Context()), "err", err)
		part := "store"
		if errors.Is(err, wscd.ErrDeviceDown) {
			part = "device"
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "failing": part})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

type ctxKey struct{}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// middleware adds a request id, security headers, a body limit and an
// access log line.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		b := make([]byte, 8)
		rand.Read(b)
		id := hex.EncodeToString(b)
		w.Header().Set("X-Request-Id", id)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		rw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), ctxKey{}, id)))
		s.log.DebugContext(r.Context(), "request", "request_id", id, "method", r.Method,
			"path", r.URL.Path, "status", rw.code, "duration", time.Since(start))
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Listen opens the listening socket (separately from Serve, so callers
// and tests can learn the bound address of ":0").
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return ln, nil
}

// Serve serves on ln until ctx is cancelled, then stops accepting, drains
// requests in flight for up to ShutdownTimeout and returns.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.serve(ctx, ln, s.handler)
}

func (s *Server) serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if s.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("server: TLS: %w", err)
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "drain_timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}
