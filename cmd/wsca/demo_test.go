package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// demoRun runs wsca demo r2ps with TMPDIR in a fresh directory and checks
// that the demo removed what it made there.
func demoRun(t *testing.T, args ...string) string {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	out := cli{t: t, dir: t.TempDir()}.ok(append([]string{"demo", "r2ps"}, args...)...)
	if left, err := os.ReadDir(tmp); err != nil || len(left) != 0 {
		t.Fatalf("the demo left %v in its temporary directory (%v)", left, err)
	}
	return out
}

// TestDemo runs the demo on the data directory's automatic device choice
// (SoftHSM when installed). SoftHSM reads SOFTHSM2_CONF once per process,
// so no other test in this package may load it.
func TestDemo(t *testing.T) {
	t.Setenv("SOFTHSM2_CONF", os.Getenv("SOFTHSM2_CONF")) // the data directory points it at its own token
	out := demoRun(t)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "OK") || len(lines) != 10 || !strings.HasPrefix(lines[0], "1. server: ") {
		t.Fatalf("demo output:\n%s", out)
	}
	for i, want := range []string{"server", "operator", "enrol", "login", "keygen", "sign", "verify", "wrong PIN", "right PIN"} {
		if !strings.HasPrefix(lines[i], string(rune('1'+i))+". "+want+": ") {
			t.Errorf("line %d: %q", i+1, lines[i])
		}
	}
	if !strings.Contains(lines[7], "UNAUTHORIZED") || !strings.Contains(lines[7], "counter: 1 failed attempt") {
		t.Errorf("wrong PIN step: %q", lines[7])
	}
}

func TestDemoJSON(t *testing.T) {
	var res struct {
		OK     bool       `json:"ok"`
		Steps  []demoStep `json:"steps"`
		Result string     `json:"result"`
	}
	if err := json.Unmarshal([]byte(demoRun(t, "--device-backend", "soft", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	if !res.OK || len(res.Steps) != 9 || !strings.HasPrefix(res.Result, "OK: R2PS demo finished (9 steps)") {
		t.Fatalf("%+v", res)
	}
	if !strings.Contains(res.Steps[0].Detail, "software keystore") {
		t.Fatalf("server step: %+v", res.Steps[0])
	}
}

// TestDemoFails: a failing step is named, and the exit code is 1.
func TestDemoFails(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb strings.Builder
	code := run(ctx, []string{"demo", "r2ps", "--device-backend", "soft"}, strings.NewReader(""), &out, &errb, func(string) (string, bool) { return "", false })
	if code != 1 || !strings.Contains(errb.String(), "wsca: error: demo step ") || strings.Contains(out.String(), "OK") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out.String(), errb.String())
	}
}

// TestDemoAttest runs wsca demo attest on the soft device (SoftHSM is
// TestDemo's in this process): every step, each status as a verifier
// reads it, and the final OK.
func TestDemoAttest(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	out := cli{t: t, dir: t.TempDir()}.ok("demo", "attest", "--device-backend", "soft")
	if left, err := os.ReadDir(tmp); err != nil || len(left) != 0 {
		t.Fatalf("the demo left %v in its temporary directory (%v)", left, err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"server", "operator", "enrol", "login", "keys", "trust", "key attestation", "wallet instance attestation",
		"proof of association", "status: valid", "suspend", "status: suspended", "unsuspend", "status: valid again",
		"revoke", "status: revoked", "refused"}
	if len(lines) != len(want)+1 || !strings.HasPrefix(lines[len(lines)-1], "OK: attestation demo finished (17 steps)") {
		t.Fatalf("demo output:\n%s", out)
	}
	for i, w := range want {
		if prefix := fmt.Sprintf("%d. %s: ", i+1, w); !strings.HasPrefix(lines[i], prefix) {
			t.Errorf("line %d: %q, want prefix %q", i+1, lines[i], prefix)
		}
	}
	// The soft device claims software storage, never a certified level.
	if !strings.Contains(lines[6], "key_storage claims software") || strings.Contains(out, "iso_18045") {
		t.Errorf("key attestation step: %q", lines[6])
	}
	for i, s := range map[int]string{9: "VALID", 11: "SUSPENDED", 13: "VALID", 15: "INVALID"} {
		if !strings.HasSuffix(lines[i], "entries are "+s) {
			t.Errorf("line %d: %q, want %s", i+1, lines[i], s)
		}
	}
}
