package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsca/wsca/pin"
)

func (f fixture) admin(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	f.srv.adminHandler().ServeHTTP(rec, req)
	var out map[string]any
	json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func TestAdminAPI(t *testing.T) {
	const token = "admin-token-123"
	f := newFixture(t, func(c *Config) { c.AdminToken = []byte(token) })

	for _, tok := range []string{"", "wrong", token + "x"} {
		if code, _ := f.admin(t, "POST", AdminPrefix+"/units", tok, `{}`); code != http.StatusUnauthorized {
			t.Fatalf("token %q: %d", tok, code)
		}
	}
	code, out := f.admin(t, "POST", AdminPrefix+"/units", token, `{"unit":"alice"}`)
	if code != http.StatusCreated || out["unit"] != "alice" || len(out["activation_code"].(string)) < 26 {
		t.Fatalf("create: %d %v", code, out)
	}
	if code, _ := f.admin(t, "POST", AdminPrefix+"/units", token, `{"unit":"alice"}`); code != http.StatusConflict {
		t.Fatalf("duplicate: %d", code)
	}
	code, out = f.admin(t, "POST", AdminPrefix+"/units", token, ``)
	if code != http.StatusCreated || !strings.HasPrefix(out["unit"].(string), "u-") {
		t.Fatalf("generated id: %d %v", code, out)
	}
	for _, bad := range []string{`{"unit":"a b"}`, `{"unit":"wsca.x"}`, `{"bogus":1}`, `{"ttl":-1}`, `not json`,
		`{"unit":"carol","unit":"dave"}`, `{"UNIT":"carol"}`, `{"unit":"carol"} {}`, `[]`, "{\"unit\":\"\xff\"}"} {
		if code, _ := f.admin(t, "POST", AdminPrefix+"/units", token, bad); code != http.StatusBadRequest {
			t.Errorf("%s: %d", bad, code)
		}
	}
	code, out = f.admin(t, "POST", AdminPrefix+"/units/alice/codes", token, `{"purpose":"pin_reset","ttl":600}`)
	if code != http.StatusCreated || out["purpose"] != "pin_reset" {
		t.Fatalf("reset code: %d %v", code, out)
	}
	if code, _ := f.admin(t, "POST", AdminPrefix+"/units/nobody/codes", token, `{}`); code != http.StatusNotFound {
		t.Fatalf("code for unknown unit: %d", code)
	}
	if code, out := f.admin(t, "POST", AdminPrefix+"/units/alice/state", token, `{"state":"suspended"}`); code != 200 {
		t.Fatalf("suspend: %d %v", code, out)
	}
	if code, out := f.admin(t, "GET", AdminPrefix+"/units/alice", token, ``); code != 200 || out["state"] != "suspended" {
		t.Fatalf("get: %d %v", code, out)
	}
	if code, _ := f.admin(t, "POST", AdminPrefix+"/units/alice/state", token, `{"state":"revoked"}`); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	for _, req := range []struct{ path, body string }{
		{"/units/alice/state", `{"state":"active"}`},
		{"/units/alice/state", `{"state":"suspended"}`},
		{"/units/alice/codes", `{}`},
		{"/units/alice/codes", `{"purpose":"pin_reset"}`},
	} {
		if code, out := f.admin(t, "POST", AdminPrefix+req.path, token, req.body); code != http.StatusConflict || out["title"] != "unit revoked" {
			t.Fatalf("revoked unit, %s %s: %d %v", req.path, req.body, code, out)
		}
	}
	if code, out := f.admin(t, "GET", AdminPrefix+"/units/alice", token, ``); code != 200 || out["state"] != "revoked" {
		t.Fatalf("revocation lifted: %d %v", code, out)
	}
	if code, out := f.admin(t, "GET", AdminPrefix+"/units/alice/attempts?context=hsm", token, ``); code != 200 || out["failures"] != float64(0) {
		t.Fatalf("attempts: %d %v", code, out)
	}
	if code, _ := f.admin(t, "POST", AdminPrefix+"/units/alice/unlock", token, `{"context":"hsm"}`); code != 200 {
		t.Fatalf("unlock: %d", code)
	}
	if code, _ := f.admin(t, "POST", AdminPrefix+"/units/alice/unlock", token, `{}`); code != http.StatusBadRequest {
		t.Fatalf("unlock without context: %d", code)
	}
	req := httptest.NewRequest("GET", AdminPrefix+"/units", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	f.srv.adminHandler().ServeHTTP(rec, req)
	var list []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || len(list) != 2 {
		t.Fatalf("list: %s", rec.Body)
	}
	// The token never reaches the log.
	if strings.Contains(f.logs.String(), token) {
		t.Fatal("token in the log")
	}
}

// TestAdminStrictJSON: every admin body is decoded strictly; a duplicate,
// unknown or case-folded member is a 400 problem and changes nothing.
func TestAdminStrictJSON(t *testing.T) {
	const token = "admin-token-123"
	f := newFixture(t, func(c *Config) { c.AdminToken = []byte(token) })
	if code, out := f.admin(t, "POST", AdminPrefix+"/units", token, `{"unit":"alice"}`); code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, out)
	}
	for _, tc := range []struct{ path, body string }{
		{"/units", `{"unit":"bob","unit":"carol"}`},
		{"/units", `{"unit":"bob","Unit":"carol"}`},
		{"/units/alice/state", `{"state":"active","state":"revoked"}`},
		{"/units/alice/state", `{"State":"revoked"}`},
		{"/units/alice/state", `{"state":"revoked","why":"x"}`},
		{"/units/alice/codes", `{"purpose":"activation","purpose":"pin_reset"}`},
		{"/units/alice/unlock", `{"context":"hsm","context":"other"}`},
	} {
		code, out := f.admin(t, "POST", AdminPrefix+tc.path, token, tc.body)
		if code != http.StatusBadRequest || out["status"] != float64(400) || out["title"] == nil {
			t.Errorf("%s %s: %d %v", tc.path, tc.body, code, out)
		}
	}
	if code, out := f.admin(t, "GET", AdminPrefix+"/units/alice", token, ``); code != 200 || out["state"] != "active" {
		t.Fatalf("a refused body changed the unit: %d %v", code, out)
	}
}

// TestAdminAttemptsLocked: a counter at the policy's MaxAttempts is
// reported locked, although the store sets its flag only when a further
// attempt is refused.
func TestAdminAttemptsLocked(t *testing.T) {
	const token = "admin-token-123"
	f := newFixture(t, func(c *Config) { c.AdminToken = []byte(token) })
	if code, _ := f.admin(t, "POST", AdminPrefix+"/units", token, `{"unit":"alice"}`); code != http.StatusCreated {
		t.Fatal("create")
	}
	ctx := t.Context()
	for range pin.DefaultMaxAttempts {
		if _, ok, err := f.st.TakeAttempt(ctx, "alice", "hsm", pin.DefaultMaxAttempts, time.Now()); err != nil || !ok {
			t.Fatalf("TakeAttempt: %v %v", ok, err)
		}
	}
	code, out := f.admin(t, "GET", AdminPrefix+"/units/alice/attempts?context=hsm", token, ``)
	if code != 200 || out["failures"] != float64(pin.DefaultMaxAttempts) || out["locked"] != true {
		t.Fatalf("attempts at the limit: %d %v", code, out)
	}
	if code, _ := f.admin(t, "POST", AdminPrefix+"/units/alice/unlock", token, `{"context":"hsm"}`); code != 200 {
		t.Fatal("unlock")
	}
	if code, out := f.admin(t, "GET", AdminPrefix+"/units/alice/attempts?context=hsm", token, ``); code != 200 || out["locked"] != false {
		t.Fatalf("attempts after unlock: %d %v", code, out)
	}
	if code, _ := f.admin(t, "GET", AdminPrefix+"/units/nobody/attempts?context=hsm", token, ``); code != http.StatusNotFound {
		t.Fatalf("attempts of an unknown unit: %d", code)
	}
}
