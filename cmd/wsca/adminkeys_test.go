package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsca/wsca/device/devicetest"
	"github.com/wsca/wsca/device/pkcs11"
	"github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
)

// TestAdminKeysCommands: keys made under a wrapping key of the test's own
// are re-wrapped by `admin keys rewrap`, batch after batch, through a wscad
// whose device wraps under the test token's usual key; the old key is then
// reported unused and deleted only with --delete-unused --yes.
func TestAdminKeysCommands(t *testing.T) {
	if !pkcs11.Available {
		testenv.Unavailable(t, "pkcs11", pkcs11.ErrNotCompiled.Error())
	}
	const token = "0123456789abcdef-keys"
	ctx := context.Background()
	dsn := testenv.SQLite(t)
	uri := testenv.PKCS11URI(t)
	path, query, _ := strings.Cut(uri, "?")
	oldLabel := string(devicetest.NewOwner(t, "cli-wrap"))
	cfg, err := pkcs11.ParseURI(path + ";x-wsca-storage=wrapped;x-wsca-wrap-label=" + oldLabel + "?" + query)
	if err != nil {
		t.Fatal(err)
	}
	oldDev, err := pkcs11.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { oldDev.Close() })
	old := stacktest.Start(t, dsn, oldDev, nil)
	for _, u := range []string{"cli-a", "cli-b", "cli-c"} {
		if err := old.Units.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		if _, err := old.Keys.Generate(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	r := stacktest.Start(t, dsn, testdevice.PKCS11Wrapped(t), func(o *stack.Options) { o.AdminToken = []byte(token) })
	tokFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokFile, []byte(token+"\n"), 0o600)
	c := cli{t: t, dir: t.TempDir()}
	common := []string{"--admin-url", r.AdminURL, "--admin-token-file", tokFile}
	adm := func(args ...string) string { return c.ok(append(args, common...)...) }

	out := adm("admin", "keys", "wrapping-keys")
	if !strings.Contains(out, oldLabel) || !strings.Contains(out, "in use: re-wrap first") {
		t.Fatalf("wrapping keys before:\n%s", out)
	}
	var total keysBatch
	if err := json.Unmarshal([]byte(adm("admin", "keys", "rewrap", "--batch", "1", "--json")), &total); err != nil {
		t.Fatal(err)
	}
	if total.Rewrapped != 3 || total.ServerKeys == 0 || !total.Done || total.Refused != 0 {
		t.Fatalf("rewrap: %+v", total)
	}
	if out := adm("admin", "keys", "rewrap"); !strings.Contains(out, "done: 0 keys and 0 server keys re-wrapped") {
		t.Fatalf("second rewrap: %s", out)
	}
	if out := adm("admin", "keys", "migrate"); !strings.Contains(out, "done: 0 migrated") {
		t.Fatalf("migrate: %s", out)
	}
	if out := adm("admin", "keys", "wrapping-keys"); !strings.Contains(out, "unused (may be deleted)") {
		t.Fatalf("wrapping keys after:\n%s", out)
	}
	if code, _, errs := c.run(append([]string{"admin", "keys", "wrapping-keys", "--delete-unused"}, common...)...); code == 0 || !strings.Contains(errs, "--yes") {
		t.Fatalf("--delete-unused without --yes: exit %d: %s", code, errs)
	}
	if out := adm("admin", "keys", "wrapping-keys", "--delete-unused", "--yes"); !strings.Contains(out, "deleted") || !strings.Contains(out, oldLabel) {
		t.Fatalf("delete unused: %s", out)
	}
	if out := adm("admin", "keys", "wrapping-keys"); strings.Contains(out, oldLabel) {
		t.Fatalf("the old key is still listed:\n%s", out)
	}

	// On the soft keystore: the API's 409, said by the CLI.
	soft := adminServer(t, token)
	code, _, errs := c.run("admin", "keys", "rewrap", "--admin-url", soft, "--admin-token-file", tokFile)
	if code == 0 || !strings.Contains(errs, "409") {
		t.Fatalf("rewrap on the soft keystore: exit %d: %s", code, errs)
	}
}
