package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
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
	go func() { done <- run(ctx, append(args, "--listen", addr), &logs, lookup) }()
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
	if code, body := get(t, base+"/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("/healthz = %d %s", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 200 || !strings.Contains(body, "ready") {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	code, body := get(t, base+"/metrics")
	if code != 200 || !strings.Contains(body, "wsca_build_info{") || !strings.Contains(body, "wsca_device_calls_total{") {
		t.Fatalf("/metrics = %d, missing wsca metrics", code)
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
	if code := run(context.Background(), []string{"--data-dir", env["WSCA_DATA_DIR"], "--device-backend", "soft", "--listen", "256.0.0.1:1"}, io.Discard, noEnv); code != 1 {
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

// TestBadConfig: malformed settings stop wscad before it starts, with exit 2
// for usage errors.
func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want int
	}{
		{"bad duration env", nil, map[string]string{"WSCA_SHUTDOWN_TIMEOUT": "soon"}, 2},
		{"bad log level", []string{"--log-level", "loud"}, nil, 2},
		{"unknown flag", []string{"--nope"}, nil, 2},
		{"stray argument", []string{"serve"}, nil, 2},
		{"bad role", []string{"--role", "hsm", "--data-dir", t.TempDir()}, nil, 1},
		{"bad device URI", []string{"--device", "tpm:x", "--data-dir", t.TempDir()}, nil, 1},
		{"half TLS", []string{"--tls-cert", "c.pem", "--data-dir", t.TempDir(), "--device-backend", "soft"}, nil, 1},
		{"missing config file", []string{"--config", "/nonexistent"}, nil, 2},
		{"negative R2PS limit", []string{"--r2ps-max-concurrent", "-1"}, nil, 2},
		{"bad R2PS limit env", nil, map[string]string{"WSCA_R2PS_MAX_CONCURRENT": "many"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			var out syncBuffer
			if code := run(context.Background(), tc.args, &out, lookup); code != tc.want {
				t.Fatalf("exit %d, want %d\n%s", code, tc.want, out.String())
			}
		})
	}
}

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "wscad.conf")
	os.WriteFile(cfg, []byte("# test\nWSCA_DATA_DIR="+filepath.Join(dir, "d")+"\nWSCA_DEVICE_BACKEND=soft\nWSCA_LOG_FORMAT=text\n"), 0o600)
	base, logs := start(t, []string{"--config", cfg}, noEnv)
	if !strings.Contains(logs.String(), "soft keystore") {
		t.Fatalf("config file not applied:\n%s", logs.String())
	}
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d", code)
	}
}
