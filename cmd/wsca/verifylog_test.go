package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
)

// TestVerifyLog: verify-log accepts a served checkpoint, leaf and proofs
// from files with no server, refuses each of them changed, and does the
// same fetching from --server.
func TestVerifyLog(t *testing.T) {
	const adminToken = "verify-log-test-admin-token-0123456789abcdef"
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.Soft(t), func(o *stack.Options) { o.AdminToken = []byte(adminToken) })
	ctx := t.Context()
	for i := range 5 {
		if err := r.Units.Create(ctx, fmt.Sprint("vl-", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Evidence.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	save := func(name, path string) string {
		t.Helper()
		resp, err := http.Get(r.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	old := save("old", "/evidence/checkpoint")
	for i := range 3 {
		if err := r.Units.Create(ctx, fmt.Sprint("vl-later-", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Evidence.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	key := save("key", "/evidence/key")
	cp := save("cp", "/evidence/checkpoint")
	// A leaf names a unit: not on the public listener, only on the admin
	// API, behind the operator's token.
	if resp, err := http.Get(r.URL + "/evidence/entries/2"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a leaf on the public listener: %v %v", resp, err)
	}
	leaf := filepath.Join(dir, "leaf")
	req, _ := http.NewRequest(http.MethodGet, r.AdminURL+"/admin/v1/evidence/entries/2", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a leaf without the admin token: %v %v", resp, err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a leaf on the admin API: %v %v", resp, err)
	}
	lb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := os.WriteFile(leaf, lb, 0o600); err != nil {
		t.Fatal(err)
	}
	incl := save("incl", "/evidence/proof/inclusion?index=2&size=8")
	cons := save("cons", "/evidence/proof/consistency?old=5&new=8")
	verify := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(ctx, append([]string{"verify-log"}, args...), strings.NewReader(""), &out, &errb, func(string) (string, bool) { return "", false })
		return code, out.String() + errb.String()
	}
	offline := []string{"--key", key, "--checkpoint", cp, "--leaf", leaf, "--inclusion", incl, "--old-checkpoint", old, "--consistency", cons}
	if code, out := verify(offline...); code != 0 || !strings.Contains(out, "entry 2 (unit_created") || !strings.HasSuffix(out, "OK\n") {
		t.Fatalf("offline: %d %s", code, out)
	}
	// Each input changed: refused.
	for _, f := range []string{cp, leaf, incl, old, cons} {
		t.Run(filepath.Base(f), func(t *testing.T) {
			orig, _ := os.ReadFile(f)
			defer os.WriteFile(f, orig, 0o600)
			changed := bytes.Clone(orig)
			switch filepath.Base(f) {
			case "incl", "cons":
				i := bytes.Index(changed, []byte(`"hashes":["`)) + len(`"hashes":["`)
				changed[i+2] ^= 1
			case "cp", "old":
				changed = bytes.Replace(changed, []byte("\n8\n"), []byte("\n9\n"), 1)
				changed = bytes.Replace(changed, []byte("\n5\n"), []byte("\n6\n"), 1)
			default:
				changed[len(changed)-1] ^= 1
			}
			if bytes.Equal(changed, orig) {
				t.Fatal("unchanged")
			}
			os.WriteFile(f, changed, 0o600)
			if code, out := verify(offline...); code != 1 {
				t.Fatalf("changed %s accepted: %d %s", f, code, out)
			}
		})
	}
	keyText, _ := os.ReadFile(key)
	if code, out := verify("--server", r.URL, "--key", strings.TrimSpace(string(keyText)), "--index", "2", "--leaf", leaf, "--old-checkpoint", old); code != 0 || !strings.Contains(out, "consistency from 5 entries: OK") || !strings.Contains(out, "entry 2 (unit_created") {
		t.Fatalf("--server: %d %s", code, out)
	}
	if code, _ := verify("--server", r.URL, "--index", "2"); code != 2 {
		t.Fatalf("--server --index without --leaf: %d", code)
	}
	if code, out := verify("--server", r.URL, "--key", strings.TrimSpace(string(keyText)), "--old-checkpoint", old); code != 0 || !strings.Contains(out, "consistency from 5 entries: OK") {
		t.Fatalf("--server: %d %s", code, out)
	}
	if code, out := verify("--server", r.URL); code != 0 || !strings.Contains(out, "warning") {
		t.Fatalf("--server without a key: %d %s", code, out)
	}
	if code, _ := verify("--checkpoint", cp, "--server", r.URL); code != 2 {
		t.Fatalf("both sources: %d", code)
	}
}
