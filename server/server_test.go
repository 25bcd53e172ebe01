package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

type fixture struct {
	srv  *Server
	svc  *wscd.Services
	st   *store.Store
	logs *strings.Builder
}

func newFixture(t *testing.T, mod func(*Config)) fixture {
	t.Helper()
	st, err := store.Open(context.Background(), testenv.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dev := testdevice.Soft(t)
	svc, err := wscd.New(wscd.Config{Device: dev, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := svc.ServerKeys.Sealer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pins, err := pin.New(context.Background(), pin.Config{Store: st, Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	logs := &strings.Builder{}
	cfg := Config{Addr: "127.0.0.1:0", Roles: Roles{WSCD: true, WSCA: true}, Keys: svc.Keys, Units: svc.Units, PIN: pins, Version: "v9.8.7-test",
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Registry: prometheus.NewRegistry()}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{srv: srv, svc: svc, st: st, logs: logs}
}

func (f fixture) get(t *testing.T, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec
}

// TestNewRequires: a server needs the keys (readiness, device info), the
// units (admin API) and a registry.
func TestNewRequires(t *testing.T) {
	f := newFixture(t, nil)
	for name, mod := range map[string]func(*Config){
		"no keys":     func(c *Config) { c.Keys = nil },
		"no units":    func(c *Config) { c.Units = nil },
		"no registry": func(c *Config) { c.Registry = nil },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := f.srv.cfg
			cfg.Registry = prometheus.NewRegistry()
			mod(&cfg)
			if _, err := New(cfg); err == nil {
				t.Fatal("New accepted the config")
			}
		})
	}
}

func TestReadiness(t *testing.T) {
	f := newFixture(t, nil)
	if rec := f.get(t, "/readyz"); rec.Code != 200 {
		t.Fatalf("/readyz = %d %s", rec.Code, rec.Body)
	}
	if rec := f.get(t, "/healthz"); rec.Code != 200 || rec.Header().Get("X-Request-Id") == "" ||
		rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("/healthz = %d %v", rec.Code, rec.Header())
	}
	f.st.Close()
	rec := f.get(t, "/readyz")
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), `"failing":"store"`) {
		t.Fatalf("/readyz with the store closed = %d %s", rec.Code, rec.Body)
	}
	if rec := f.get(t, "/healthz"); rec.Code != 200 {
		t.Fatalf("/healthz must not depend on the store: %d", rec.Code)
	}
}

// TestHealthVersion: /healthz says which version runs.
func TestHealthVersion(t *testing.T) {
	f := newFixture(t, nil)
	rec := f.get(t, "/healthz")
	var out map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != 200 || out["version"] != "v9.8.7-test" {
		t.Fatalf("/healthz = %d %s", rec.Code, rec.Body)
	}
}

// TestMetricsListeners: /metrics is not on the public listener; it is on
// the metrics handler and, behind the token, on the admin API.
func TestMetricsListeners(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	f := newFixture(t, func(c *Config) { c.AdminToken = []byte(token) })
	if rec := f.get(t, "/metrics"); rec.Code != http.StatusNotFound {
		t.Fatalf("public /metrics = %d", rec.Code)
	}
	scrape := func(h http.Handler, tok string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/metrics", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, tc := range []struct {
		name string
		h    http.Handler
		tok  string
		code int
	}{
		{"metrics listener", f.srv.MetricsHandler(), "", 200},
		{"admin with token", f.srv.adminHandler(), token, 200},
		{"admin without token", f.srv.adminHandler(), "", http.StatusUnauthorized},
	} {
		rec := scrape(tc.h, tc.tok)
		if rec.Code != tc.code {
			t.Errorf("%s: %d", tc.name, rec.Code)
		}
		if tc.code == 200 && !strings.Contains(rec.Body.String(), `wsca_build_info{device_assurance="software"`) {
			t.Errorf("%s: no build info with the device's assurance:\n%.300s", tc.name, rec.Body)
		}
	}
}

func TestReadinessDevice(t *testing.T) {
	f := newFixture(t, nil)
	f.srv.cfg.Keys.Device().Close()
	rec := f.get(t, "/readyz")
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), `"failing":"device"`) {
		t.Fatalf("/readyz with the device closed = %d %s", rec.Code, rec.Body)
	}
}

// TestErrorBoundary: client errors show their message, anything else a
// generic text; causes and panics reach only the log.
func TestErrorBoundary(t *testing.T) {
	f := newFixture(t, nil)
	const secret = "cause-with-secret-detail"
	for _, tc := range []struct {
		name string
		h    HandlerFunc
		code int
		body string
	}{
		{"typed", func(w http.ResponseWriter, r *http.Request) error {
			return Errorf(400, "bad request", errors.New(secret))
		}, 400, "bad request"},
		{"untyped", func(w http.ResponseWriter, r *http.Request) error { return errors.New(secret) }, 500, "internal error"},
		{"panic", func(w http.ResponseWriter, r *http.Request) error { panic(secret) }, 500, "internal error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			f.srv.middleware(f.srv.handle(tc.h)).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.body) {
				t.Fatalf("got %d %s", rec.Code, rec.Body)
			}
			if strings.Contains(rec.Body.String(), secret) {
				t.Fatal("cause shown to the client")
			}
			id := rec.Header().Get("X-Request-Id")
			if !strings.Contains(rec.Body.String(), id) || !strings.Contains(f.logs.String(), id) {
				t.Fatal("request id missing from the response or the log")
			}
			if !strings.Contains(f.logs.String(), secret) {
				t.Fatal("cause missing from the log")
			}
		})
	}
}

func TestParseRoles(t *testing.T) {
	for in, want := range map[string]string{"all": "all", "wscd": "wscd", "wsca": "wsca", "wscd,wsca": "all"} {
		r, err := ParseRoles(in)
		if err != nil || r.String() != want {
			t.Errorf("ParseRoles(%q) = %v, %v", in, r, err)
		}
	}
	for _, in := range []string{"", "hsm", "wscd,", "ALL"} {
		if _, err := ParseRoles(in); err == nil {
			t.Errorf("ParseRoles(%q) accepted", in)
		}
	}
}

// TestServeTLS serves HTTPS on a real socket and shuts down gracefully.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	f := newFixture(t, func(c *Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	ln, err := f.srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.srv.Serve(ctx, ln) }()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("HTTPS /healthz = %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no graceful shutdown")
	}
}

func selfSigned(t *testing.T, dir string) (string, string, *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: nil,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	tmpl.IPAddresses = append(tmpl.IPAddresses, []byte{127, 0, 0, 1})
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	cf, kf := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return cf, kf, pool
}
