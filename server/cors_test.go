package server

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wsca/wsca/r2ps"
)

func TestValidateOrigin(t *testing.T) {
	for _, o := range []string{"https://wallet.example", "http://127.0.0.1:8443", "https://wallet.example:8443", "chrome-extension://abcdefghijklmnop", "moz-extension://0f1e2d3c"} {
		if err := ValidateOrigin(o); err != nil {
			t.Errorf("ValidateOrigin(%q): %v", o, err)
		}
	}
	for _, o := range []string{"", "*", "null", "wallet.example", "ftp://wallet.example", "https://", "https://wallet.example/",
		"https://wallet.example/x", "https://u@wallet.example", "https://wallet.example?x", "https://wallet.example#f",
		"https://Wallet.example", "HTTPS://wallet.example", "https://wallet.example:x", "javascript:alert(1)",
		"https://wallet.example:443", "http://localhost:80"} {
		if err := ValidateOrigin(o); !errors.Is(err, ErrBadOrigin) {
			t.Errorf("ValidateOrigin(%q): %v, want ErrBadOrigin", o, err)
		}
	}
	if _, err := New(Config{CORSOrigins: []string{"*"}}); err == nil {
		t.Error("New accepted an origin of *")
	}
}

// An allowed origin gets the CORS headers on the wallet's endpoints and
// their preflights; another origin, another path and the admin API never
// do; without origins nothing answers CORS.
func TestCORS(t *testing.T) {
	const allowed, other = "https://wallet.example", "https://evil.example"
	f := newFixture(t, func(c *Config) {
		c.CORSOrigins = []string{allowed, "chrome-extension://abcdefghijklmnop"}
		c.AdminToken = []byte(strings.Repeat("t", 32))
	})
	plain := newFixture(t, nil)
	do := func(h http.Handler, method, path, origin string, preflight bool) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if preflight {
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, tc := range []struct {
		name          string
		h             http.Handler
		method, path  string
		origin        string
		preflight     bool
		wantAllow     bool
		wantNoContent bool
	}{
		{"preflight of /r2ps", f.srv.Handler(), "OPTIONS", r2ps.Path, allowed, true, true, true},
		{"server keys", f.srv.Handler(), "GET", r2ps.KeysPath, allowed, false, true, false},
		{"extension origin", f.srv.Handler(), "OPTIONS", r2ps.Path, "chrome-extension://abcdefghijklmnop", true, true, true},
		{"another origin, preflight", f.srv.Handler(), "OPTIONS", r2ps.Path, other, true, false, false},
		{"another origin, keys", f.srv.Handler(), "GET", r2ps.KeysPath, other, false, false, false},
		{"no origin", f.srv.Handler(), "GET", r2ps.KeysPath, "", false, false, false},
		{"another path", f.srv.Handler(), "GET", "/healthz", allowed, false, false, false},
		{"admin API", f.srv.adminHandler(), "OPTIONS", AdminPrefix + "/units", allowed, true, false, false},
		{"admin API GET", f.srv.adminHandler(), "GET", AdminPrefix + "/units", allowed, false, false, false},
		{"not configured", plain.srv.Handler(), "OPTIONS", r2ps.Path, allowed, true, false, false},
	} {
		rec := do(tc.h, tc.method, tc.path, tc.origin, tc.preflight)
		got := rec.Header().Get("Access-Control-Allow-Origin")
		if tc.wantAllow != (got == tc.origin && got != "") {
			t.Errorf("%s: Access-Control-Allow-Origin %q (status %d)", tc.name, got, rec.Code)
		}
		if !tc.wantAllow && rec.Header().Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("%s: Access-Control-Allow-Methods set", tc.name)
		}
		if tc.wantNoContent && (rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Methods") != "GET, POST" ||
			rec.Header().Get("Access-Control-Allow-Headers") != "Content-Type") {
			t.Errorf("%s: preflight answered %d %v", tc.name, rec.Code, rec.Header())
		}
	}
	// a request from an allowed origin is otherwise answered as without CORS
	if a, b := do(f.srv.Handler(), "GET", "/healthz", allowed, false), do(plain.srv.Handler(), "GET", "/healthz", "", false); a.Code != b.Code {
		t.Fatalf("healthz: %d with CORS, %d without", a.Code, b.Code)
	}
}
