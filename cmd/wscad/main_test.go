package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsca/wsca/internal/config"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type syncBuffer struct {
	mu sync.Mutex
	sb strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}

func noEnv(string) (string, bool) { return "", false }

// start runs wscad in-process until the test ends and waits for /healthz.
func start(t *testing.T, args []string, lookup func(string) (string, bool)) (string, *syncBuffer) {
	t.Helper()
	addr := freeAddr(t)
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, append(args, "--listen", addr), io.Discard, &logs, lookup) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("wscad exited %d\n%s", code, logs.String())
			}
		case <-time.After(20 * time.Second):
			t.Error("wscad did not stop")
		}
	})
	base := "http://" + addr
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case code := <-done:
			t.Fatalf("wscad exited %d:\n%s", code, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if i > 200 {
			t.Fatalf("wscad did not come up:\n%s", logs.String())
		}
	}
	return base, &logs
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDefaults: with no store or device flags, wscad makes its data
// directory, says so in its first log line, and serves health, readiness
// and metrics.
func TestDefaults(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	base, logs := start(t, []string{"--data-dir", dir}, noEnv)
	first, _, _ := strings.Cut(logs.String(), "\n")
	var line map[string]any
	if err := json.Unmarshal([]byte(first), &line); err != nil {
		t.Fatalf("first log line is not JSON: %q", first)
	}
	if msg, _ := line["msg"].(string); !strings.Contains(msg, "embedded defaults") || !strings.Contains(msg, "SQLite") {
		t.Fatalf("first log line does not name the embedded defaults: %q", first)
	}
	if line["compat"] != "off" || line["key_quota"] != float64(256) {
		t.Fatalf("first log line lacks compat=off and key_quota=256: %q", first)
	}
	if code, body := get(t, base+"/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("/healthz = %d %s", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 200 || !strings.Contains(body, "ready") {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	if code, _ := get(t, base+"/metrics"); code != http.StatusNotFound {
		t.Fatalf("/metrics on the public listener = %d", code)
	}
	for _, f := range []string{"wsca.db", "device.uri"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("data directory lacks %s: %v", f, err)
		}
	}
	if code, _ := get(t, base+"/nope"); code != 404 {
		t.Errorf("unknown path = %d", code)
	}
}

// TestEnvironment: settings come from WSCA_* variables, flags win over them.
func TestEnvironment(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"WSCA_DATA_DIR":   filepath.Join(dir, "data"),
		"WSCA_DEVICE":     "soft:" + filepath.Join(dir, "data", "soft"),
		"WSCA_LOG_FORMAT": "text",
		"WSCA_ROLE":       "wscd",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	// The soft keystore must exist before it is named explicitly.
	if code := run(context.Background(), []string{"--data-dir", env["WSCA_DATA_DIR"], "--device-backend", "soft", "--listen", "256.0.0.1:1"}, io.Discard, io.Discard, noEnv); code != 1 {
		t.Fatalf("bad listen address gave exit %d, want 1", code)
	}
	base, logs := start(t, []string{"--role", "wsca"}, lookup)
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	sc.Scan()
	if first := sc.Text(); !strings.HasPrefix(first, "time=") || !strings.Contains(first, "roles=wsca") {
		t.Fatalf("text log with the flag's role expected, got %q", first)
	}
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d", code)
	}
}

// TestBadConfig: malformed settings stop wscad with "wscad: error: …" and
// exit 2 before it creates or opens anything: no data directory, no
// SoftHSM token, no store.
func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	token := func(mode os.FileMode, tok string) string {
		p := filepath.Join(dir, fmt.Sprintf("token-%o-%d", mode, len(tok)))
		if err := os.WriteFile(p, []byte(tok+"\n"), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	good := strings.Repeat("k", 32)
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string // in the error line
	}{
		{"bad duration env", nil, map[string]string{"WSCA_SHUTDOWN_TIMEOUT": "soon"}, "WSCA_SHUTDOWN_TIMEOUT"},
		{"bad log level", []string{"--log-level", "loud"}, nil, "log level"},
		{"unknown flag", []string{"--nope"}, nil, "nope"},
		{"unknown command", []string{"serve"}, nil, `unknown command "serve"`},
		{"bad role", []string{"--role", "hsm"}, nil, "role"},
		{"bad cors origin", []string{"--cors-origin", "https://wallet.example/"}, nil, "cors-origin"},
		{"wildcard cors origin env", nil, map[string]string{"WSCA_CORS_ORIGIN": "https://a.example,*"}, "cors-origin"},
		{"bad device URI", []string{"--device", "tpm:x"}, nil, "device URI"},
		{"bad store DSN", []string{"--store", "mysql://x"}, nil, "dsn"},
		{"bad device backend", []string{"--device-backend", "tpm"}, nil, "device backend"},
		{"bad assurance", []string{"--device-assurance", "hardware"}, nil, "assurance"},
		{"soft claiming certification", []string{"--device-backend", "soft", "--device-assurance", "iso_18045_high"}, nil, "soft keystore is software"},
		{"half TLS", []string{"--tls-cert", "c.pem"}, nil, "tls-key"},
		{"missing TLS files", []string{"--tls-cert", "c.pem", "--tls-key", "k.pem"}, nil, "TLS key pair"},
		{"missing config file", []string{"--config", "/nonexistent"}, nil, "config"},
		{"bad pin delays", []string{"--pin-delays", "3:soon"}, nil, "pin-delays"},
		{"env pin delays", nil, map[string]string{"WSCA_PIN_DELAYS": "x"}, "pin-delays"},
		{"delay after the lock", []string{"--pin-max-attempts", "3", "--pin-delays", "3:1m"}, nil, "3 lock"},
		{"zero attempts", []string{"--pin-max-attempts", "-1"}, nil, "max attempts"},
		{"session over max", []string{"--session-duration", "2h"}, nil, "max-session"},
		{"bad admin address", []string{"--admin-listen", "nowhere", "--admin-token-file", token(0o600, good)}, nil, "admin-listen"},
		{"admin without token", []string{"--admin-listen", "127.0.0.1:0"}, nil, "admin-token-file"},
		{"world-readable token", []string{"--admin-listen", "127.0.0.1:0", "--admin-token-file", token(0o644, good)}, nil, "readable by group or others"},
		{"group-readable token", []string{"--admin-listen", "127.0.0.1:0", "--admin-token-file", token(0o640, good)}, nil, "readable by group or others"},
		{"short token", []string{"--admin-listen", "127.0.0.1:0", "--admin-token-file", token(0o600, good[:31])}, nil, "at least 32"},
		{"bad metrics address", []string{"--metrics-listen", "9090"}, nil, "metrics-listen"},
		{"negative R2PS limit", []string{"--r2ps-max-concurrent", "-1"}, nil, "r2ps-max-concurrent"},
		{"bad R2PS limit env", nil, map[string]string{"WSCA_R2PS_MAX_CONCURRENT": "many"}, "WSCA_R2PS_MAX_CONCURRENT"},
		{"bad pprof address", []string{"--pprof-listen", "6060"}, nil, "pprof-listen"},
		{"pprof beyond loopback", []string{"--pprof-listen", "0.0.0.0:6060"}, nil, "must be a loopback address"},
		{"pprof on a name", []string{"--pprof-listen", "example.org:6060"}, nil, "must be a loopback address"},
		{"bad compat", []string{"--compat", "maybe"}, nil, "compat"},
		{"bad response key", []string{"--response-key", "tpm"}, nil, "response-key"},
		{"bad response key env", nil, map[string]string{"WSCA_RESPONSE_KEY": "memory"}, "WSCA_RESPONSE_KEY"},
		{"bad compat env", nil, map[string]string{"WSCA_COMPAT": "lenient"}, "WSCA_COMPAT"},
		{"zero key quota", []string{"--key-quota", "0"}, nil, "--key-quota must be at least 1"},
		{"zero secdsa max failures", []string{"--secdsa-max-failures", "0"}, nil, "--secdsa-max-failures must be at least 1"},
		{"refusing software OPRF keys without HSM ones", []string{"--oprf-hsm=false", "--accept-software-oprf=false"}, nil, "--accept-software-oprf=false needs --oprf-hsm"},
		{"small status shard", []string{"--status-shard-size", "9999"}, nil, "--status-shard-size must be at least 10000"},
		{"zero status ttl", []string{"--status-ttl", "0s"}, nil, "--status-ttl must be positive"},
		{"zero attest limit", []string{"--attest-limit", "0"}, nil, "--attest-limit must be at least 1"},
		{"bad share peer key", []string{"--share-peer-key", "ABCDEF"}, nil, "--share-peer-key \"ABCDEF\""},
		{"public URL over http", []string{"--public-url", "http://wsca.example"}, nil, "must be served over https"},
		{"public URL not a URL", []string{"--public-url", "wsca.example"}, nil, "want an https URL"},
		{"missing attestation chain", []string{"--attest-chain", "/nonexistent.pem"}, nil, "--attest-chain"},
		{"negative key quota env", nil, map[string]string{"WSCA_KEY_QUOTA": "-5"}, "--key-quota must be at least 1"},
		{"bad key quota", []string{"--key-quota", "many"}, nil, "key-quota"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			lookup := func(k string) (string, bool) {
				if k == "WSCA_DATA_DIR" {
					return data, true
				}
				v, ok := tc.env[k]
				return v, ok
			}
			var out syncBuffer
			if code := run(context.Background(), tc.args, io.Discard, &out, lookup); code != 2 {
				t.Fatalf("exit %d, want 2\n%s", code, out.String())
			}
			if tc.name != "unknown flag" && !strings.Contains(out.String(), "wscad: error: ") || !strings.Contains(out.String(), tc.want) {
				t.Errorf("error output lacks %q:\n%s", tc.want, out.String())
			}
			if strings.Contains(out.String(), good) {
				t.Error("the admin token in the error")
			}
			if _, err := os.Stat(data); err == nil {
				t.Error("the data directory was created for a bad configuration")
			}
		})
	}
}

// TestVersion: --version prints the version stamped at build time.
func TestVersion(t *testing.T) {
	for _, stamped := range []string{"", "v1.2.3-4-gdeadbee"} {
		version = stamped
		var out strings.Builder
		if code := run(context.Background(), []string{"--version"}, &out, io.Discard, noEnv); code != 0 {
			t.Fatalf("exit %d", code)
		}
		want := stamped
		if want == "" {
			want = config.Version("")
		}
		if out.String() != "wscad "+want+"\n" {
			t.Errorf("--version printed %q, want %q", out.String(), want)
		}
	}
	version = ""
}

// TestListeners: /metrics is not on the public listener but on
// --metrics-listen, and on the admin API behind its token; /healthz
// carries the version.
func TestListeners(t *testing.T) {
	dir := t.TempDir()
	tok := strings.Repeat("t", 40)
	tokFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokFile, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	admin, metrics, prof := freeAddr(t), freeAddr(t), freeAddr(t)
	base, _ := start(t, []string{"--data-dir", filepath.Join(dir, "data"), "--device-backend", "soft",
		"--admin-listen", admin, "--admin-token-file", tokFile, "--metrics-listen", metrics, "--pprof-listen", prof}, noEnv)
	if code, _ := get(t, base+"/metrics"); code != http.StatusNotFound {
		t.Fatalf("public /metrics = %d", code)
	}
	// Profiles only on --pprof-listen.
	for _, u := range []string{base, "http://" + metrics, "http://" + admin} {
		if code, _ := get(t, u+"/debug/pprof/"); code == 200 {
			t.Fatalf("%s/debug/pprof/ = %d", u, code)
		}
	}
	if code, body := get(t, "http://"+prof+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("pprof listener /debug/pprof/ = %d", code)
	}
	if code, body := get(t, "http://"+metrics+"/metrics"); code != 200 || !strings.Contains(body, "wsca_build_info{") || !strings.Contains(body, "wsca_device_calls_total{") {
		t.Fatalf("metrics listener /metrics = %d", code)
	}
	if code, _ := get(t, "http://"+admin+"/metrics"); code != http.StatusUnauthorized {
		t.Fatalf("admin /metrics without a token = %d", code)
	}
	req, _ := http.NewRequest("GET", "http://"+admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("admin /metrics = %d", resp.StatusCode)
	}
	if code, body := get(t, base+"/healthz"); code != 200 || !strings.Contains(body, `"version":"`+config.Version(version)+`"`) {
		t.Fatalf("/healthz = %d %s", code, body)
	}
}

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "wscad.conf")
	os.WriteFile(cfg, []byte("# test\nWSCA_DATA_DIR="+filepath.Join(dir, "d")+"\nWSCA_DEVICE_BACKEND=soft\nWSCA_LOG_FORMAT=text\nWSCA_COMPAT=jwe\nWSCA_KEY_QUOTA=7\n"), 0o600)
	base, logs := start(t, []string{"--config", cfg}, noEnv)
	if !strings.Contains(logs.String(), "soft keystore") {
		t.Fatalf("config file not applied:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "compat=jwe key_quota=7") {
		t.Fatalf("compat and key quota from the config file not applied:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "assurance=software") {
		t.Fatalf("the soft keystore is not logged as software:\n%s", logs.String())
	}
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d", code)
	}
}

// TestVersionLdflags: the variable the Makefile's build sets with -X is
// the one --version prints.
func TestVersionLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := filepath.Join(t.TempDir(), "wscad")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.version=v1.2.3-ldflags", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || string(out) != "wscad v1.2.3-ldflags\n" {
		t.Fatalf("--version = %q, %v", out, err)
	}
}
