package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsca/wsca/internal/config"
)

type cli struct {
	t   *testing.T
	dir string
}

func (c cli) run(args ...string) (int, string, string) {
	c.t.Helper()
	var out, errb bytes.Buffer
	lookup := func(k string) (string, bool) {
		if k == "WSCA_DATA_DIR" {
			return c.dir, true
		}
		return "", false
	}
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb, lookup)
	return code, out.String(), errb.String()
}

func (c cli) ok(args ...string) string {
	c.t.Helper()
	code, out, errs := c.run(args...)
	if code != 0 {
		c.t.Fatalf("wsca %s: exit %d\n%s", strings.Join(args, " "), code, errs)
	}
	return out
}

// TestLocalVocabulary: local operator commands use the admin API's nouns
// (unit, key); the earlier plural names work but are not listed.
func TestLocalVocabulary(t *testing.T) {
	_, out, errs := cli{t: t, dir: t.TempDir()}.run("help")
	help := out + errs
	for _, want := range []string{"unit create", "unit list", "key generate", "key list", "key destroy", "admin unit create"} {
		if !strings.Contains(help, "  "+want) {
			t.Errorf("help lacks %q", want)
		}
	}
	for _, old := range []string{"  units create", "  keys generate", "  keys list", "  keys destroy"} {
		if strings.Contains(help, old) {
			t.Errorf("help still lists %q", old)
		}
	}
}

// TestKeys walks the operator's path on a soft keystore: init, create
// units, generate, list (store and device views), destroy, and a refused
// cross-unit destroy.
func TestKeys(t *testing.T) {
	c := cli{t: t, dir: filepath.Join(t.TempDir(), "data")}
	if out := c.ok("device", "init", "--device-backend", "soft"); !strings.Contains(out, "software keystore") {
		t.Fatalf("device init: %s", out)
	}
	c.ok("unit", "create", "alice")
	c.ok("units", "create", "bob") // the earlier name still works
	var units []map[string]any
	if err := json.Unmarshal([]byte(c.ok("unit", "list", "--json")), &units); err != nil || len(units) != 2 {
		t.Fatalf("units list: %v %v", units, err)
	}

	var gen keyRow
	if err := json.Unmarshal([]byte(c.ok("key", "generate", "--unit", "alice", "--json")), &gen); err != nil {
		t.Fatal(err)
	}
	if len(gen.KID) != 32 || gen.JWK.Kty != "EC" || gen.JWK.Crv != "P-256" || gen.JWK.Kid != gen.KID {
		t.Fatalf("generated %+v", gen)
	}
	for _, view := range [][]string{{"keys", "list", "--unit", "alice", "--json"}, {"keys", "list", "--unit", "alice", "--on-device", "--json"}} {
		var rows []keyRow
		if err := json.Unmarshal([]byte(c.ok(view...)), &rows); err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || rows[0].KID != gen.KID || rows[0].JWK != gen.JWK {
			t.Fatalf("%v: %+v", view, rows)
		}
	}
	if out := c.ok("keys", "list", "--unit", "bob"); strings.TrimSpace(out) != "" {
		t.Fatalf("bob sees keys: %q", out)
	}
	if code, _, errs := c.run("keys", "destroy", "--unit", "bob", gen.KID); code != 1 || !strings.Contains(errs, "key not found") {
		t.Fatalf("bob destroys alice's key: exit %d %s", code, errs)
	}
	c.ok("keys", "destroy", "--unit", "alice", gen.KID)
	if out := c.ok("keys", "list", "--unit", "alice", "--on-device"); strings.TrimSpace(out) != "" {
		t.Fatalf("key still on the device: %q", out)
	}
	if out := c.ok("device", "info"); !strings.Contains(out, "ready:    ok") {
		t.Fatalf("device info: %s", out)
	}
}

func TestUsage(t *testing.T) {
	c := cli{t: t, dir: t.TempDir()}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 0},
		{[]string{"help"}, 0},
		{[]string{"bogus"}, 2},
		{[]string{"keys", "generate"}, 2}, // no --unit
		{[]string{"keys", "destroy", "--unit", "a"}, 2},    // no kid
		{[]string{"units", "create"}, 2},                   // no unit
		{[]string{"units", "create", "a", "b"}, 2},         // two units
		{[]string{"keys", "list", "--unit", "a", "-x"}, 2}, // unknown flag
		{[]string{"units", "create", "bad unit"}, 1},
		{[]string{"keys", "list", "-h"}, 0},
		{[]string{"version"}, 0},
		{[]string{"version", "extra"}, 2},
	} {
		if code, _, errs := c.run(tc.args...); code != tc.want {
			t.Errorf("wsca %v: exit %d, want %d (%s)", tc.args, code, tc.want, errs)
		}
	}
	for _, args := range [][]string{{"bogus"}, {"units", "bogus"}, {"admin", "unit", "explode"}} {
		code, _, errs := c.run(args...)
		if want := fmt.Sprintf("wsca: unknown command %q", strings.Join(args, " ")); code != 2 || !strings.HasPrefix(errs, want) {
			t.Errorf("wsca %v: exit %d, stderr %q, want %q first", args, code, errs, want)
		}
	}
}

// TestVersion: wsca version prints the stamped version, else the build
// info's, else "dev".
func TestVersion(t *testing.T) {
	c := cli{t: t, dir: t.TempDir()}
	for _, stamped := range []string{"", "v2.0.0-rc1"} {
		version = stamped
		want := stamped
		if want == "" {
			want = config.Version("")
		}
		if out := c.ok("version"); out != "wsca "+want+"\n" {
			t.Errorf("version printed %q, want %q", out, want)
		}
		if out := c.ok("--version"); out != "wsca "+want+"\n" {
			t.Errorf("--version printed %q, want %q", out, want)
		}
		var v map[string]string
		if err := json.Unmarshal([]byte(c.ok("version", "--json")), &v); err != nil || v["version"] != want {
			t.Errorf("version --json: %v %v", v, err)
		}
	}
	version = ""
}

// TestBadStateFlags: a bad device or assurance setting is refused before
// the data directory is made.
func TestBadStateFlags(t *testing.T) {
	c := cli{t: t, dir: filepath.Join(t.TempDir(), "data")}
	for _, args := range [][]string{
		{"units", "list", "--device-assurance", "hardware"},
		{"units", "list", "--device-backend", "tpm"},
		{"device", "init", "--device-backend", "soft", "--device-assurance", "iso_18045_high"},
	} {
		if code, _, errs := c.run(args...); code != 1 || !strings.Contains(errs, "wsca: error:") {
			t.Errorf("wsca %v: exit %d %s", args, code, errs)
		}
		if _, err := os.Stat(c.dir); err == nil {
			t.Fatalf("wsca %v made the data directory", args)
		}
	}
}
