package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
	for _, bad := range []string{`{"unit":"a b"}`, `{"unit":"wsca.x"}`, `{"bogus":1}`, `{"ttl":-1}`, `not json`} {
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
	f.admin(t, "POST", AdminPrefix+"/units/alice/state", token, `{"state":"revoked"}`)
	if code, _ := f.admin(t, "POST", AdminPrefix+"/units/alice/state", token, `{"state":"active"}`); code != http.StatusBadRequest {
		t.Fatalf("revocation lifted: %d", code)
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
