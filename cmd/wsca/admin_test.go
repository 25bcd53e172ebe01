package main

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
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/store"
)

// adminServer serves a real admin API on loopback for the CLI to call.
func adminServer(t *testing.T, token string) string {
	t.Helper()
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.Soft(t), func(o *stack.Options) { o.AdminToken = []byte(token) })
	return r.AdminURL
}

func TestAdminCommands(t *testing.T) {
	const token = "0123456789abcdef-token"
	url := adminServer(t, token)
	tokFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokFile, []byte(token+"\n"), 0o600)
	c := cli{t: t, dir: t.TempDir()}
	common := []string{"--admin-url", url, "--admin-token-file", tokFile}
	adm := func(args ...string) string { return c.ok(append(args, common...)...) }

	var code adminCode
	if err := json.Unmarshal([]byte(adm("admin", "unit", "create", "--unit", "alice", "--json")), &code); err != nil {
		t.Fatal(err)
	}
	if code.Unit != "alice" || len(strings.ReplaceAll(code.Code, "-", "")) != 26 || code.Purpose != "activation" {
		t.Fatalf("%+v", code)
	}
	if out := adm("admin", "unit", "code", "alice", "--purpose", "pin_reset"); !strings.Contains(out, "pin_reset") {
		t.Fatalf("code: %s", out)
	}
	adm("admin", "unit", "suspend", "alice")
	if out := adm("admin", "unit", "show", "alice"); !strings.Contains(out, "suspended") {
		t.Fatalf("show: %s", out)
	}
	adm("admin", "unit", "resume", "alice")
	if out := adm("admin", "unit", "attempts", "alice"); !strings.Contains(out, "failures: 0") {
		t.Fatalf("attempts: %s", out)
	}
	adm("admin", "unit", "unlock", "alice", "--context", "hsm")
	if out := adm("admin", "unit", "list"); !strings.Contains(out, "alice") {
		t.Fatalf("list: %s", out)
	}

	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("not-the-token"), 0o600)
	if code, _, errs := c.run("admin", "unit", "list", "--admin-url", url, "--admin-token-file", bad); code != 1 || !strings.Contains(errs, "401") {
		t.Fatalf("wrong token: %d %s", code, errs)
	}
	if code, _, _ := c.run("admin", "unit", "list", "--admin-url", url); code != 1 {
		t.Fatalf("no token file: %d", code)
	}
}

// TestAdminCSK: "admin unit csk" reads a PEM or JWK public key and binds
// it to a unit as its compat CSK over the admin API. A private key, a
// key of another curve or a JWK with a repeated member is refused before
// any request, and the server's refusals (unknown or revoked unit)
// are exit 1 with the problem's title.
func TestAdminCSK(t *testing.T) {
	const token = "0123456789abcdef-token"
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.Soft(t), func(o *stack.Options) { o.AdminToken = []byte(token) })
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	os.WriteFile(tokFile, []byte(token+"\n"), 0o600)
	c := cli{t: t, dir: t.TempDir()}
	common := []string{"--admin-url", r.AdminURL, "--admin-token-file", tokFile}
	ctx := t.Context()
	for _, u := range []string{"alice", "bob", "gone"} {
		if err := r.Units.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Units.SetState(ctx, "gone", store.UnitRevoked); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pemFile := write("csk.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwk2, _ := json.Marshal(jose.JSONWebKey{Key: &k2.PublicKey})
	jwkFile := write("csk.jwk", jwk2)

	var out struct{ Unit, KID, Profile string }
	if err := json.Unmarshal([]byte(c.ok(append([]string{"admin", "unit", "csk", "alice", "--key", pemFile, "--json"}, common...)...)), &out); err != nil {
		t.Fatal(err)
	}
	if out.Unit != "alice" || out.KID != r2ps.Thumbprint(&k.PublicKey) || out.Profile != "compat" {
		t.Fatalf("pem: %+v", out)
	}
	if got := c.ok(append([]string{"admin", "unit", "csk", "bob", "--key", jwkFile}, common...)...); !strings.Contains(got, r2ps.Thumbprint(&k2.PublicKey)) {
		t.Fatalf("jwk: %s", got)
	}
	for u, want := range map[string]*ecdsa.PublicKey{"alice": &k.PublicKey, "bob": &k2.PublicKey} {
		ck, err := r.Store.GetUnitClientKey(ctx, u, store.UsageSign)
		if err != nil || ck.KID != r2ps.Thumbprint(want) || ck.Profile != "compat" {
			t.Fatalf("%s: %+v %v", u, ck, err)
		}
	}

	ecDER, _ := x509.MarshalECPrivateKey(k)
	privJWK, _ := json.Marshal(jose.JSONWebKey{Key: k})
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der384, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	var m map[string]string
	json.Unmarshal(jwk2, &m)
	for _, tc := range []struct {
		name, unit, file, want string
	}{
		{"private PEM", "bob", write("priv.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})), "not a P-256 public key"},
		{"private JWK", "bob", write("priv.jwk", privJWK), "not a P-256 public key"},
		{"P-384", "bob", write("p384.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der384})), "not a P-256 public key"},
		{"duplicate JWK member", "bob", write("dup.jwk", []byte(`{"kty":"EC","crv":"P-256","x":"`+m["x"]+`","x":"`+m["x"]+`","y":"`+m["y"]+`"}`)), "not a P-256 public key"},
		{"missing file", "bob", filepath.Join(dir, "nope"), "no such file"},
		{"unknown unit", "nobody", pemFile, "404"},
		{"revoked unit", "gone", pemFile, "unit revoked"},
	} {
		code, _, errs := c.run(append([]string{"admin", "unit", "csk", tc.unit, "--key", tc.file}, common...)...)
		if code != 1 || !strings.Contains(errs, tc.want) {
			t.Errorf("%s: exit %d, %q lacks %q", tc.name, code, errs, tc.want)
		}
		if strings.Contains(errs, "BEGIN") || strings.Contains(errs, `"d"`) {
			t.Errorf("%s: the key file in the error: %s", tc.name, errs)
		}
	}
	if ck, _ := r.Store.GetUnitClientKey(ctx, "bob", store.UsageSign); ck.KID != r2ps.Thumbprint(&k2.PublicKey) {
		t.Fatal("a refused key replaced bob's")
	}
	if code, _, _ := c.run(append([]string{"admin", "unit", "csk", "bob"}, common...)...); code == 0 {
		t.Fatal("no --key accepted")
	}
}

// TestAdminDestroy: "admin unit destroy" needs --yes; it revokes the unit,
// destroys its device keys and erases its records, leaves other units
// alone, and can be repeated.
func TestAdminDestroy(t *testing.T) {
	const token = "0123456789abcdef-token"
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.Soft(t), func(o *stack.Options) { o.AdminToken = []byte(token) })
	tokFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokFile, []byte(token+"\n"), 0o600)
	c := cli{t: t, dir: t.TempDir()}
	common := []string{"--admin-url", r.AdminURL, "--admin-token-file", tokFile}
	ctx := t.Context()
	owned := map[string]device.Key{}
	for _, u := range []string{"alice", "bob"} {
		if err := r.Units.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		k, err := r.Keys.Generate(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		owned[u] = k
	}
	if code, _, errs := c.run(append([]string{"admin", "unit", "destroy", "alice"}, common...)...); code == 0 || !strings.Contains(errs, "--yes") {
		t.Fatalf("destroy without --yes: %d %s", code, errs)
	}
	if _, err := r.Keys.Sign(ctx, "alice", string(owned["alice"].KID), make([]byte, 32)); err != nil {
		t.Fatalf("a refused destroy touched the unit: %v", err)
	}
	for range 2 {
		if out := c.ok(append([]string{"admin", "unit", "destroy", "alice", "--yes"}, common...)...); !strings.Contains(out, "destroyed") {
			t.Fatalf("destroy: %s", out)
		}
	}
	dev := r.Keys.Device()
	if _, err := dev.PublicKey(ctx, device.Ref{Owner: "alice", KID: owned["alice"].KID}); !errors.Is(err, device.ErrKeyNotFound) {
		t.Fatalf("alice's device key after destroy: %v, want ErrKeyNotFound", err)
	}
	if _, err := dev.PublicKey(ctx, device.Ref{Owner: "bob", KID: owned["bob"].KID}); err != nil {
		t.Fatalf("bob's device key after alice's destroy: %v", err)
	}
	u, err := r.Units.Get(ctx, "alice")
	if err != nil || u.State != store.UnitDestroyed {
		t.Fatalf("alice = %+v, %v; want destroyed", u, err)
	}
	if keys, err := r.Store.ListKeys(ctx, "alice"); err != nil || len(keys) != 0 {
		t.Fatalf("alice's key records = %v, %v", keys, err)
	}
	if code, _, errs := c.run(append([]string{"admin", "unit", "resume", "alice"}, common...)...); code != 1 || !strings.Contains(errs, "409") {
		t.Fatalf("resume a destroyed unit: %d %s", code, errs)
	}
	if code, _, errs := c.run(append([]string{"admin", "unit", "code", "alice"}, common...)...); code != 1 {
		t.Fatalf("code for a destroyed unit: %d %s", code, errs)
	}
}

// TestAdminCommandsEscape: every admin command puts the unit it is given
// into the path as one escaped segment, and the context into the query
// escaped, so a unit argument with '/', '?' or '#' (no unit id has them)
// never names another unit or route: "alice#x" destroyed alice, and
// "--context hsm&context=other" asked for hsm.
func TestAdminCommandsEscape(t *testing.T) {
	type seen struct{ method, path, query string }
	var got seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	tokFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokFile, []byte("0123456789abcdef-token\n"), 0o600)
	c := cli{t: t, dir: t.TempDir()}
	const unit, esc = "alice#x/../bob?y", "alice%23x%2F..%2Fbob%3Fy"
	for _, tc := range []struct {
		args []string
		want seen
	}{
		{[]string{"code", unit}, seen{"POST", "/admin/v1/units/" + esc + "/codes", ""}},
		{[]string{"show", unit}, seen{"GET", "/admin/v1/units/" + esc, ""}},
		{[]string{"suspend", unit}, seen{"POST", "/admin/v1/units/" + esc + "/state", ""}},
		{[]string{"revoke", unit}, seen{"POST", "/admin/v1/units/" + esc + "/state", ""}},
		{[]string{"destroy", unit, "--yes"}, seen{"DELETE", "/admin/v1/units/" + esc, ""}},
		{[]string{"unlock", unit}, seen{"POST", "/admin/v1/units/" + esc + "/unlock", ""}},
		{[]string{"attempts", unit, "--context", "hsm&context=other"}, seen{"GET", "/admin/v1/units/" + esc + "/attempts", "context=hsm%26context%3Dother"}},
	} {
		got = seen{}
		args := append([]string{"admin", "unit"}, tc.args...)
		c.run(append(args, "--admin-url", srv.URL, "--admin-token-file", tokFile)...)
		if got != tc.want {
			t.Errorf("%v: %+v, want %+v", tc.args, got, tc.want)
		}
	}
}
