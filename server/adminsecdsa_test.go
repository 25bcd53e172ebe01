package server

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/wsca/wsca/secdsa"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// activateSECDSA gives unit a SECDSA binding through the service.
func activateSECDSA(t *testing.T, f fixture, unit string) {
	t.Helper()
	ctx := context.Background()
	s, err := wscd.NewSECDSA(ctx, wscd.SECDSAConfig{Device: f.svc.Keys.Device(), ServerKeys: f.svc.ServerKeys, Store: f.st})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := secdsa.NewSoftwareDeviceKey()
	if err != nil {
		t.Fatal(err)
	}
	k := make([]byte, 32)
	rand.Read(k)
	binder, err := secdsa.NewSoftwarePINBinder(k)
	if err != nil {
		t.Fatal(err)
	}
	nonce, err := s.Nonce(ctx, unit)
	if err != nil {
		t.Fatal(err)
	}
	req, state, err := secdsa.BeginActivation(rand.Reader, binder, dev, []byte("1234"), []byte(unit), nonce)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.Activate(ctx, unit, dev.Public(), req.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	yp, err := state.Finish(resp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finish(ctx, unit, dev.Public(), yp); err != nil {
		t.Fatal(err)
	}
}

// TestAdminSECDSAReset: the reset route follows the admin API's rules
// (token, strict JSON with the confirmation, typed errors, a log line with
// the request id) and clears the binding. What the reset does is tested in
// package wscd (TestSECDSAOperatorReset).
func TestAdminSECDSAReset(t *testing.T) {
	const token = "admin-token-secdsa"
	f := newFixture(t, func(c *Config) { c.AdminToken = []byte(token) })
	ctx := context.Background()
	for _, u := range []string{"unit-s", "unit-none"} {
		if err := f.svc.Units.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	activateSECDSA(t, f, "unit-s")
	path := func(u string) string { return AdminPrefix + "/units/" + u + "/secdsa/reset" }
	for _, c := range []struct {
		unit, tok, body string
		want            int
	}{
		{"unit-s", "", `{"confirm":true}`, http.StatusUnauthorized},
		{"unit-s", "wrong", `{"confirm":true}`, http.StatusUnauthorized},
		{"unit-s", token, ``, http.StatusBadRequest},
		{"unit-s", token, `{}`, http.StatusBadRequest},
		{"unit-s", token, `{"confirm":false}`, http.StatusBadRequest},
		{"unit-s", token, `{"confirm":true,"bogus":1}`, http.StatusBadRequest},
		{"unit-s", token, `{"Confirm":true}`, http.StatusBadRequest},
		{"unit-s", token, `{"confirm":"yes"}`, http.StatusBadRequest},
		{"nobody", token, `{"confirm":true}`, http.StatusNotFound},
		{"unit-none", token, `{"confirm":true}`, http.StatusConflict},
	} {
		if code, out := f.admin(t, "POST", path(c.unit), c.tok, c.body); code != c.want {
			t.Errorf("%s %q (token %q): %d %v, want %d", c.unit, c.body, c.tok, code, out, c.want)
		}
	}
	if _, err := f.st.GetSECDSA(ctx, "unit-s"); err != nil {
		t.Fatalf("a refused reset touched the binding: %v", err)
	}
	code, out := f.admin(t, "POST", path("unit-s"), token, `{"confirm":true}`)
	if code != http.StatusOK || out["unit"] != "unit-s" || out["secdsa"] != "reset" {
		t.Fatalf("reset: %d %v", code, out)
	}
	if _, err := f.st.GetSECDSA(ctx, "unit-s"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("binding after the reset: %v", err)
	}
	if code, _ := f.admin(t, "POST", path("unit-s"), token, `{"confirm":true}`); code != http.StatusConflict {
		t.Fatalf("second reset: %d", code)
	}
	logs := f.logs.String()
	i := strings.Index(logs, "admin: secdsa binding reset")
	if i < 0 || !strings.Contains(logs[i:i+strings.IndexByte(logs[i:], '\n')], "request_id=") {
		t.Fatalf("no reset line with a request id in the log:\n%s", logs)
	}
}
