package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
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
