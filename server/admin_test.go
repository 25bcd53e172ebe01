package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
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

// TestAdminClientKey: PUT …/client-key binds a P-256 key, given as a JWK
// or a PEM SPKI block, to a unit as its compat CSK and answers its kid;
// a bad or private key, both or neither form, a duplicate member, an
// unknown, reserved or revoked unit and a strict-enrolled unit are RFC
// 9457 problems, and none of them stores a key.
func TestAdminClientKey(t *testing.T) {
	const token = "admin-token-123"
	f := newFixture(t, func(c *Config) { c.AdminToken = []byte(token) })
	ctx := t.Context()
	for _, u := range []string{"alice", "bob", "revoked", "strict"} {
		if code, _ := f.admin(t, "POST", AdminPrefix+"/units", token, `{"unit":"`+u+`"}`); code != http.StatusCreated {
			t.Fatalf("create %s", u)
		}
	}
	if code, _ := f.admin(t, "POST", AdminPrefix+"/units/revoked/state", token, `{"state":"revoked"}`); code != 200 {
		t.Fatal("revoke")
	}
	sk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sp, _ := sk.PublicKey.Bytes()
	sealer, _ := f.svc.ServerKeys.Sealer(ctx)
	row := store.ClientKey{KID: r2ps.Thumbprint(&sk.PublicKey), UnitID: "strict", Usage: store.UsageSign, PublicKey: sp, Profile: "strict", CreatedAt: time.Now()}
	row.MAC = wscd.ClientKeyMAC(sealer, row)
	if err := f.st.PutClientKey(ctx, row); err != nil {
		t.Fatal(err)
	}

	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwk, _ := json.Marshal(jose.JSONWebKey{Key: &k.PublicKey})
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pemKey, _ := json.Marshal(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	code, out := f.admin(t, "PUT", AdminPrefix+"/units/alice/client-key", token, `{"jwk":`+string(jwk)+`}`)
	if code != 200 || out["kid"] != r2ps.Thumbprint(&k.PublicKey) || out["profile"] != "compat" || out["unit"] != "alice" {
		t.Fatalf("jwk: %d %v", code, out)
	}
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der2, _ := x509.MarshalPKIXPublicKey(&k2.PublicKey)
	pem2, _ := json.Marshal(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der2})))
	if code, out := f.admin(t, "PUT", AdminPrefix+"/units/alice/client-key", token, `{"pem":`+string(pem2)+`}`); code != 200 || out["kid"] != r2ps.Thumbprint(&k2.PublicKey) {
		t.Fatalf("pem: %d %v", code, out)
	}
	if code, _ := f.admin(t, "PUT", AdminPrefix+"/units/alice/client-key", "wrong", `{"pem":`+string(pem2)+`}`); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	priv, _ := json.Marshal(jose.JSONWebKey{Key: k})
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	jwk384, _ := json.Marshal(jose.JSONWebKey{Key: &p384.PublicKey})
	for _, tc := range []struct {
		name, unit, body string
		code             int
		title            string
	}{
		{"private JWK", "bob", `{"jwk":` + string(priv) + `}`, 400, "not a P-256 public key (JWK or PEM SPKI)"},
		{"P-384", "bob", `{"jwk":` + string(jwk384) + `}`, 400, "not a P-256 public key (JWK or PEM SPKI)"},
		{"garbage PEM", "bob", `{"pem":"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}`, 400, "not a P-256 public key (JWK or PEM SPKI)"},
		{"jwk null", "bob", `{"jwk":null}`, 400, "not a P-256 public key (JWK or PEM SPKI)"},
		{"both", "bob", `{"jwk":` + string(jwk) + `,"pem":` + string(pemKey) + `}`, 400, "give exactly one of jwk and pem"},
		{"neither", "bob", `{}`, 400, "give exactly one of jwk and pem"},
		{"duplicate member", "bob", `{"pem":` + string(pemKey) + `,"pem":` + string(pem2) + `}`, 400, "malformed JSON body"},
		{"duplicate in the JWK", "bob", `{"jwk":{"kty":"EC","kty":"EC"}}`, 400, "malformed JSON body"},
		{"unknown member", "bob", `{"pem":` + string(pemKey) + `,"profile":"strict"}`, 400, "malformed JSON body"},
		{"case-folded member", "bob", `{"PEM":` + string(pemKey) + `}`, 400, "malformed JSON body"},
		{"unknown unit", "nobody", `{"pem":` + string(pemKey) + `}`, 404, "no such unit"},
		{"reserved unit", "wsca.server", `{"pem":` + string(pemKey) + `}`, 400, "invalid request"},
		{"revoked unit", "revoked", `{"pem":` + string(pemKey) + `}`, 409, "unit revoked"},
		{"strict unit", "strict", `{"pem":` + string(pemKey) + `}`, 409, "unit enrolled under the strict profile"},
		{"another unit's key", "bob", `{"pem":` + string(pem2) + `}`, 409, "key is another unit's client key"},
	} {
		code, out := f.admin(t, "PUT", AdminPrefix+"/units/"+tc.unit+"/client-key", token, tc.body)
		if code != tc.code || out["status"] != float64(tc.code) || out["title"] != tc.title || out["type"] != "about:blank" {
			t.Errorf("%s: %d %v, want %d %q", tc.name, code, out, tc.code, tc.title)
		}
	}
	for _, u := range []string{"bob", "revoked", "nobody"} {
		if _, err := f.st.GetUnitClientKey(ctx, u, store.UsageSign); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: a refused request stored a key: %v", u, err)
		}
	}
	if got, _ := f.st.GetUnitClientKey(ctx, "strict", store.UsageSign); got.Profile != "strict" {
		t.Error("the strict unit's key was replaced")
	}
}

// TestAdminInvalidIDs: a {unit} path value that is no unit id, and a
// context the PIN server would refuse, are 400 problems on every route
// that takes them, and no Error line: before, each reached the store,
// whose refusal came back as 503 "unavailable", logged as our fault.
func TestAdminInvalidIDs(t *testing.T) {
	const token = "admin-token-123"
	f := newFixture(t, func(c *Config) { c.AdminToken = []byte(token) })
	if code, _ := f.admin(t, "POST", AdminPrefix+"/units", token, `{"unit":"alice"}`); code != http.StatusCreated {
		t.Fatal("create")
	}
	routes := []struct{ method, path, body string }{
		{"GET", "/units/%s", ``},
		{"POST", "/units/%s/codes", `{}`},
		{"POST", "/units/%s/state", `{"state":"suspended"}`},
		{"POST", "/units/%s/unlock", `{"context":"hsm"}`},
		{"GET", "/units/%s/attempts?context=hsm", ``},
		{"DELETE", "/units/%s", ``},
		{"PUT", "/units/%s/client-key", `{"pem":"x"}`},
		{"POST", "/units/%s/secdsa/reset", `{"confirm":true}`},
	}
	for _, r := range routes {
		for _, unit := range []string{"%00", "a%0Ab", "%7F", "%FF", "%C3%A9", "a%20b", "a%2Fb", strings.Repeat("a", 65)} {
			path := AdminPrefix + strings.Replace(r.path, "%s", unit, 1)
			if code, out := f.admin(t, r.method, path, token, r.body); code != http.StatusBadRequest || out["title"] != "invalid unit id" {
				t.Errorf("%s %s: %d %v", r.method, path, code, out)
			}
		}
	}
	for _, c := range []struct{ path, body string }{
		{"/units/alice/unlock?context=a%00b", ``},
		{"/units/alice/unlock?context=%FF", ``},
		{"/units/alice/unlock?context=" + strings.Repeat("c", 256), ``},
		{"/units/alice/unlock", `{"context":"a\nb"}`},
		{"/units/alice/unlock", `{"context":"a\u007fb"}`},
	} {
		if code, out := f.admin(t, "POST", AdminPrefix+c.path, token, c.body); code != http.StatusBadRequest || out["title"] != "invalid context" {
			t.Errorf("unlock %s %s: %d %v", c.path, c.body, code, out)
		}
	}
	if strings.Contains(f.logs.String(), "level=ERROR") {
		t.Fatalf("a client's bad id logged as a server error:\n%s", f.logs)
	}
	if code, out := f.admin(t, "GET", AdminPrefix+"/units/alice", token, ``); code != 200 || out["state"] != "active" {
		t.Fatalf("alice changed: %d %v", code, out)
	}
}
