package server

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// wrappedFixture is a server over the test token in wrapped storage.
func wrappedFixture(t *testing.T, token string) fixture {
	t.Helper()
	st, err := store.Open(context.Background(), testenv.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := wscd.New(wscd.Config{Device: testdevice.PKCS11Wrapped(t), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	logs := &strings.Builder{}
	srv, err := New(Config{Addr: "127.0.0.1:0", Roles: Roles{WSCD: true}, Keys: svc.Keys, Units: svc.Units,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Registry: prometheus.NewRegistry(), AdminToken: []byte(token)})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{srv: srv, svc: svc, st: st, logs: logs}
}

// TestAdminKeys: the key-maintenance routes follow the admin API's rules
// (token, strict JSON, typed errors, a log line with the request id), run
// one batch each, and refuse to delete wrapping keys without confirmation.
// The work itself is tested in package wscd.
func TestAdminKeys(t *testing.T) {
	const token = "admin-token-keys"
	f := wrappedFixture(t, token)
	ctx := context.Background()
	if err := f.svc.Units.Create(ctx, "unit-k"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Keys.Generate(ctx, "unit-k"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path, tok, body string
		want                    int
	}{
		{"POST", "/keys/rewrap", "", `{}`, http.StatusUnauthorized},
		{"POST", "/keys/migrate", "wrong", `{}`, http.StatusUnauthorized},
		{"GET", "/wrapping-keys", "", ``, http.StatusUnauthorized},
		{"POST", "/wrapping-keys/delete-unused", "", `{"confirm":true}`, http.StatusUnauthorized},
		{"POST", "/keys/rewrap", token, `{"bogus":1}`, http.StatusBadRequest},
		{"POST", "/keys/rewrap", token, `{"batch":-1}`, http.StatusBadRequest},
		{"POST", "/keys/rewrap", token, `{"cursor":"zz"}`, http.StatusBadRequest},
		{"POST", "/keys/migrate", token, `{"batch":10001}`, http.StatusBadRequest},
		{"POST", "/keys/migrate", token, `{"Cursor":""}`, http.StatusBadRequest},
		{"POST", "/wrapping-keys/delete-unused", token, `{}`, http.StatusBadRequest},
		{"POST", "/wrapping-keys/delete-unused", token, `{"confirm":false}`, http.StatusBadRequest},
	} {
		if code, out := f.admin(t, c.method, AdminPrefix+c.path, c.tok, c.body); code != c.want {
			t.Errorf("%s %s %q: %d %v, want %d", c.method, c.path, c.body, code, out, c.want)
		}
	}

	code, out := f.admin(t, "POST", AdminPrefix+"/keys/rewrap", token, `{"batch":10}`)
	if code != 200 || out["done"] != true || out["rewrapped"] != 0.0 || out["cursor"] != "" {
		t.Fatalf("rewrap: %d %v", code, out)
	}
	code, out = f.admin(t, "POST", AdminPrefix+"/keys/migrate", token, ``)
	if code != 200 || out["done"] != true || out["migrated"] != 0.0 {
		t.Fatalf("migrate: %d %v", code, out)
	}
	code, out = f.admin(t, "GET", AdminPrefix+"/wrapping-keys", token, ``)
	keys, _ := out["wrapping_keys"].([]any)
	var current map[string]any
	for _, k := range keys {
		if m := k.(map[string]any); m["current"] == true {
			current = m
		}
	}
	if code != 200 || current == nil || current["keys"] != 1.0 || current["known"] != true || current["unused"] != false {
		t.Fatalf("wrapping keys: %d %v", code, out)
	}
	code, out = f.admin(t, "POST", AdminPrefix+"/wrapping-keys/delete-unused", token, `{"confirm":true}`)
	if deleted, _ := out["deleted"].([]any); code != 200 || len(deleted) != 0 {
		t.Fatalf("delete unused: %d %v", code, out)
	}
	logs := f.logs.String()
	for _, line := range []string{"admin: keys re-wrapped", "admin: token keys migrated", "admin: unused wrapping keys deleted"} {
		i := strings.Index(logs, line)
		if i < 0 || !strings.Contains(logs[i:i+strings.IndexByte(logs[i:], '\n')], "request_id=") {
			t.Fatalf("no %q line with a request id in the log:\n%s", line, logs)
		}
	}

	// A device in token storage (here the soft keystore) has nothing to
	// re-wrap: 409.
	soft := newFixture(t, func(c *Config) { c.AdminToken = []byte(token) })
	for _, path := range []string{"/keys/rewrap", "/keys/migrate"} {
		if code, out := soft.admin(t, "POST", AdminPrefix+path, token, `{}`); code != http.StatusConflict {
			t.Fatalf("%s on the soft keystore: %d %v", path, code, out)
		}
	}
	if code, _ := soft.admin(t, "GET", AdminPrefix+"/wrapping-keys", token, ``); code != http.StatusConflict {
		t.Fatalf("wrapping keys on the soft keystore: %d", code)
	}
}
