// Package node_test runs the Node tests of the manager in WebAssembly
// (web/node/*.test.mjs) against web/dist/manager.wasm built here, and for
// R2PS against a real wscad stack on loopback.
package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
	buildOut  []byte
)

// dist builds manager.wasm (with scripts/build-wasm.sh) once per run.
func dist(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "wsca-wasm-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("bash", "../../scripts/build-wasm.sh")
		cmd.Env = append(os.Environ(), "WSCA_WASM_OUT="+buildDir)
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build-wasm: %v\n%s", buildErr, buildOut)
	}
	return buildDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// needNode returns the node binary, or skips (fails under
// WSCA_TEST_REQUIRE=node) when node or jose (interop/node_modules) is
// missing.
func needNode(t *testing.T) string {
	t.Helper()
	return testenv.Node(t, "node", "../../interop", "jose")
}

// runNode runs a test script and returns its last line, a JSON object of
// measurements.
func runNode(t *testing.T, script string, args ...string) map[string]any {
	t.Helper()
	node := needNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "WSCA_WASM_DIST="+dist(t))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\nstdout:\n%s\nstderr:\n%s", script, err, stdout.String(), stderr.String())
	}
	var last string
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			last = l
		}
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(last), &out); err != nil || out["ok"] != true {
		t.Fatalf("node %s: last line %q (%v)\nstderr:\n%s", script, last, err, stderr.String())
	}
	return out
}

func TestSoftkeyInNode(t *testing.T) {
	out := runNode(t, "softkey.test.mjs")
	t.Logf("%s", bytes.TrimSpace(buildOut))
	t.Logf("softkey in Node: load %.0f ms, sign p50 %.2f ms, %.0f ops/s", out["loadMs"], out["signP50Ms"], out["signOpsPerSec"])
}

// TestR2PSInNode: the r2ps plugin in WebAssembly against a real wscad on
// loopback (SQLite, the PKCS#11 test token): the script enrols the unit
// with its activation code and uses it.
func TestR2PSInNode(t *testing.T) {
	needNode(t)
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.PKCS11(t), nil)
	unit := wscd.NewUnitID()
	if err := r.Services.Units.Create(t.Context(), unit); err != nil {
		t.Fatal(err)
	}
	code, err := r.Services.Units.IssueActivationCode(t.Context(), unit, store.PurposeActivation, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := runNode(t, "r2ps.test.mjs", r.URL, unit, code.Code)
	t.Logf("r2ps in Node: sign p50 %.2f ms, %.0f ops/s", out["signP50Ms"], out["signOpsPerSec"])
}
