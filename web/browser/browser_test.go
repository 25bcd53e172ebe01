// Package browser_test runs the wallet-companion extension, the sample web
// wallet and the page-WASM path in a real browser (Debian chromium driven by
// playwright-core, run.mjs) against a real wscad on loopback, and checks
// again in Go what the browser verified (docs/browser.md).
package browser_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// runTimeout bounds one run of the browser script.
const runTimeout = 3 * time.Minute

// testPIN is the PIN the pages give the r2ps plugin.
const testPIN = "482913"

// jwk is a P-256 public key as the manager returns it.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// signed is what a page reports of a signature it verified.
type signed struct {
	KID       string   `json:"kid"`
	Plugin    string   `json:"plugin"`
	AMR       []string `json:"amr"`
	Format    string   `json:"format"`
	PublicJWK jwk      `json:"publicJwk"`
	Signed    string   `json:"signed"`
	Signature string   `json:"signature"`
	Verified  bool     `json:"verified"`
}

type result struct {
	Checks []struct {
		Name   string          `json:"name"`
		OK     bool            `json:"ok"`
		Detail json.RawMessage `json:"detail"`
	} `json:"checks"`
	Metrics map[string]json.RawMessage `json:"metrics"`
	Data    struct {
		Softkey     *signed `json:"softkey"`
		R2PS        *signed `json:"r2ps"`
		FIDO2       *signed `json:"fido2"`
		PageSoftkey *signed `json:"pageSoftkey"`
		PageR2PS    *signed `json:"pageR2ps"`
		FIDO2State  string  `json:"fido2State"`
	} `json:"data"`
}

// TestBrowser is the whole browser run: one chromium, one wscad, two origins.
func TestBrowser(t *testing.T) {
	chromium, node := needBrowser(t)
	root := repoRoot(t)
	dist := buildWASM(t, root)
	ext := assembleExtension(t, root, dist)

	wallet, other := serveSample(t, root, dist)
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.Soft(t), func(o *stack.Options) {
		o.CORSOrigins = []string{other}
	})
	extUnit, extCode := newUnit(t, r)
	pageUnit, pageCode := newUnit(t, r)

	cfg := map[string]string{
		"chromium": chromium, "extension": ext, "wallet": wallet, "other": other, "wscad": r.URL, "pin": testPIN,
		"extUnit": extUnit, "extCode": extCode, "pageUnit": pageUnit, "pageCode": pageCode,
	}
	res := runBrowser(t, node, cfg)

	for _, c := range res.Checks {
		t.Run(c.Name, func(t *testing.T) {
			if !c.OK {
				t.Errorf("failed in the browser: %s", c.Detail)
			}
		})
	}
	if len(res.Checks) < 20 {
		t.Errorf("only %d checks ran in the browser", len(res.Checks))
	}

	// What the pages verified with WebCrypto, verified again here.
	for name, s := range map[string]*signed{
		"softkey": res.Data.Softkey, "r2ps": res.Data.R2PS, "fido2": res.Data.FIDO2,
		"page softkey": res.Data.PageSoftkey, "page r2ps": res.Data.PageR2PS,
	} {
		t.Run("go verifies "+name, func(t *testing.T) {
			if s == nil {
				t.Fatal("no signature reported")
			}
			verifySigned(t, s)
		})
	}
	// The r2ps keys are the units' keys on the server.
	for unit, s := range map[string]*signed{extUnit: res.Data.R2PS, pageUnit: res.Data.PageR2PS} {
		if s == nil {
			continue
		}
		wantServerKey(t, r, unit, s.PublicJWK)
	}
	for k, v := range res.Metrics {
		t.Logf("metric %s: %s", k, v)
	}
}

// needBrowser finds chromium, node and web/browser/node_modules, or skips
// (fails when WSCA_TEST_REQUIRE lists chromium).
func needBrowser(t *testing.T) (chromium, node string) {
	t.Helper()
	chromium = os.Getenv("WSCA_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		testenv.Unavailable(t, "chromium", chromium+" missing (Debian: apt-get install chromium)")
	}
	return chromium, testenv.Node(t, "chromium", ".", "playwright-core")
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return root
}

// buildWASM runs scripts/build-wasm.sh: web/dist/manager.wasm and
// web/dist/wasm_exec.js. WSCA_WASM_DIST names a directory with both built
// already (the build is then skipped).
func buildWASM(t *testing.T, root string) string {
	t.Helper()
	if d := os.Getenv("WSCA_WASM_DIST"); d != "" {
		return d
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "build-wasm.sh"))
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/build-wasm.sh: %v\n%s", err, b)
	}
	t.Logf("%s", bytes.TrimSpace(b))
	dist := filepath.Join(root, "web", "dist")
	for _, f := range []string{"manager.wasm", "wasm_exec.js"} {
		if _, err := os.Stat(filepath.Join(dist, f)); err != nil {
			t.Fatalf("build-wasm.sh made no %s: %v", f, err)
		}
	}
	return dist
}

// assembleExtension copies web/extension and the built WASM into
// web/dist/extension, the unpacked extension chromium loads.
func assembleExtension(t *testing.T, root, dist string) string {
	t.Helper()
	ext := filepath.Join(dist, "extension")
	if err := os.RemoveAll(ext); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(ext, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(root, "web", "extension")
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			copyFile(filepath.Join(src, e.Name()), filepath.Join(ext, e.Name()))
		}
	}
	copyFile(filepath.Join(dist, "manager.wasm"), filepath.Join(ext, "manager.wasm"))
	copyFile(filepath.Join(dist, "wasm_exec.js"), filepath.Join(ext, "wasm_exec.js"))
	return ext
}

// serveSample serves web/sample (and web/dist under /dist/) on two
// origins: http://localhost:Q (the wallet) and http://127.0.0.1:P.
func serveSample(t *testing.T, root, dist string) (wallet, other string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServerFS(os.DirFS(filepath.Join(root, "web", "sample"))))
	distFS := os.DirFS(dist)
	mux.HandleFunc("/dist/", func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/dist/")
		if name != "manager.wasm" && name != "wasm_exec.js" {
			http.NotFound(w, r)
			return
		}
		http.ServeFileFS(w, r, distFS, name)
	})
	h := http.Handler(mux)
	var urls [2]string
	for i, host := range []string{"localhost", "127.0.0.1"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("sample server: %v", err)
			}
		}()
		t.Cleanup(func() { _ = srv.Close() })
		urls[i] = fmt.Sprintf("http://%s:%d", host, ln.Addr().(*net.TCPAddr).Port)
	}
	return urls[0], urls[1]
}

func newUnit(t *testing.T, r *stacktest.Running) (unit, code string) {
	t.Helper()
	unit = wscd.NewUnitID()
	if err := r.Services.Units.Create(t.Context(), unit); err != nil {
		t.Fatal(err)
	}
	c, err := r.Services.Units.IssueActivationCode(t.Context(), unit, store.PurposeActivation, 0)
	if err != nil {
		t.Fatal(err)
	}
	return unit, c.Code
}

func runBrowser(t *testing.T, node string, cfg map[string]string) result {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "run.mjs", path)
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	t.Logf("run.mjs: %v\n%s", time.Since(start).Round(time.Millisecond), stderr.String())
	if err != nil {
		t.Fatalf("node run.mjs: %v\nstdout:\n%s", err, stdout.String())
	}
	var res result
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res); err != nil {
		t.Fatalf("run.mjs output: %v\n%s", err, stdout.String())
	}
	return res
}

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64url %q: %v", s, err)
	}
	return b
}

func publicKey(t *testing.T, k jwk) *ecdsa.PublicKey {
	t.Helper()
	if k.Kty != "EC" || k.Crv != "P-256" {
		t.Fatalf("key %+v is not P-256", k)
	}
	x, y := b64(t, k.X), b64(t, k.Y)
	if len(x) != 32 || len(y) != 32 {
		t.Fatalf("key %+v: coordinates of %d and %d bytes", k, len(x), len(y))
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// verifySigned checks a page's signature with crypto/ecdsa: raw r||s over
// SHA-256 of the signed bytes (the data, or authenticatorData ||
// SHA-256(clientDataJSON) for a WebAuthn assertion).
func verifySigned(t *testing.T, s *signed) {
	t.Helper()
	pub := publicKey(t, s.PublicJWK)
	sig := b64(t, s.Signature)
	if len(sig) != 64 {
		t.Fatalf("signature of %d bytes, want raw r||s", len(sig))
	}
	digest := sha256.Sum256(b64(t, s.Signed))
	r, ss := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(pub, digest[:], r, ss) {
		t.Fatalf("%s signature does not verify in Go", s.Plugin)
	}
	if !s.Verified {
		t.Fatal("the page did not verify it")
	}
}

// wantServerKey: the unit holds a key with that public key on the server.
func wantServerKey(t *testing.T, r *stacktest.Running, unit string, k jwk) {
	t.Helper()
	want := append(append([]byte{4}, b64(t, k.X)...), b64(t, k.Y)...)
	keys, err := r.Store.ListKeys(t.Context(), unit)
	if err != nil {
		t.Fatal(err)
	}
	for _, sk := range keys {
		if bytes.Equal(sk.PublicKey, want) {
			return
		}
	}
	t.Errorf("unit %s: no server key with the public key the page reported (%d keys)", unit, len(keys))
}
