package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/internal/hostile"
	"github.com/wsca/wsca/r2ps"
)

// hostileGrowth is the bound on wscad's peak resident memory above idle
// while it refuses 64 concurrent hostile bodies. Before the caps of issue 6
// (defect 5) the same load took it past 1 GiB; now at most
// --r2ps-max-concurrent bodies are read at once, each costing about twice
// its size, so 16 of them stay well inside this.
const hostileGrowth = 100 << 20

// procStatus reads a "Vm…: N kB" line of /proc/<pid>/status, in bytes.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// serverAgreementKey fetches the server's 1FA key from its JWKS.
func serverAgreementKey(t *testing.T, base string) (*ecdh.PublicKey, string) {
	t.Helper()
	resp, err := http.Get(base + r2ps.KeysPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if k.Use == "enc" {
			pub, err := k.Key.(*ecdsa.PublicKey).ECDH()
			if err != nil {
				t.Fatal(err)
			}
			return pub, k.KeyID
		}
	}
	t.Fatal("no agreement key in the JWKS")
	return nil, ""
}

// TestHostileMemory runs wscad (embedded defaults, software device) as a
// process and sends it 64 hostile bodies at once, each retried on 503
// until it is refused on its merits, so every body reaches the parsers.
// Every answer must be a 4xx problem (ILLEGAL_REQUEST_DATA; UNAUTHORIZED
// for the unknown 2FA session), or 503 TRY_LATER with Retry-After,
// and the process's peak RSS (VmHWM) must stay within hostileGrowth of its
// idle RSS.
func TestHostileMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/<pid>/status")
	}
	bin := buildWscad(t)
	addr := freeAddr(t)
	logs := &syncBuffer{}
	cmd := exec.Command(bin, "--data-dir", t.TempDir(), "--device-backend", "soft", "--listen", addr,
		"--log-format", "text", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2", "WSCA_R2PS_MAX_CONCURRENT=16")
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("wscad exited with %v:\n%s", err, logs)
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Errorf("wscad did not stop on SIGTERM")
		}
	})
	base := "http://" + addr
	for i := 0; ; i++ {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if i > 300 {
			t.Fatalf("wscad did not become ready:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	key, kid := serverAgreementKey(t, base)
	signed, err := hostile.SelfSigned(key, kid)
	if err != nil {
		t.Fatal(err)
	}
	bodies := append(hostile.Structural(), signed...)

	pid := cmd.Process.Pid
	idle := procStatus(t, pid, "VmRSS")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 2 * time.Minute}
	const n = 64
	var wg sync.WaitGroup
	startGun := make(chan struct{})
	answers := make(chan string, n)
	tryLater := make(chan int, n)
	for i := range n {
		body := bodies[i%len(bodies)]
		wg.Go(func() {
			<-startGun
			for busy := 0; ; busy++ {
				status, text, err := post(client, base+r2ps.Path, body.Body)
				if err != nil {
					answers <- fmt.Sprintf("%s: %v", body.Name, err)
					return
				}
				if status == http.StatusServiceUnavailable && strings.Contains(text, r2ps.CodeTryLater) {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				tryLater <- busy
				if status/100 != 4 || !strings.Contains(text, r2ps.CodeIllegalRequestData) && !strings.Contains(text, r2ps.CodeUnauthorized) {
					answers <- fmt.Sprintf("%s: %d %s", body.Name, status, text)
					return
				}
				answers <- ""
				return
			}
		})
	}
	close(startGun)
	wg.Wait()
	close(answers)
	close(tryLater)
	for a := range answers {
		if a != "" {
			t.Error(a)
		}
	}
	busy := 0
	for b := range tryLater {
		busy += b
	}
	peak := procStatus(t, pid, "VmHWM")
	t.Logf("%d hostile bodies of %d kinds: idle RSS %d MiB, peak %d MiB (growth %d MiB, bound %d MiB); %d answers were 503 TRY_LATER",
		n, len(bodies), idle>>20, peak>>20, (peak-idle)>>20, hostileGrowth>>20, busy)
	if peak-idle > hostileGrowth {
		t.Fatalf("peak RSS grew by %d MiB, more than %d MiB", (peak-idle)>>20, hostileGrowth>>20)
	}
}

// post sends one R2PS body and returns the status and the answer.
func post(c *http.Client, url string, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/jose")
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
		return resp.StatusCode, "", fmt.Errorf("503 without Retry-After")
	}
	return resp.StatusCode, string(b), err
}
