package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/r2ps/client/httptransport"
	"github.com/wsca/wsca/store"
)

// softhsmConf is SOFTHSM2_CONF when the tests start: in-process runs of
// wscad on a data directory's SoftHSM token change it for the process.
var softhsmConf = os.Getenv("SOFTHSM2_CONF")

// instance is a wscad process.
type instance struct {
	cmd   *exec.Cmd
	url   string
	admin string
	logs  *syncBuffer
}

// buildWscad compiles this command once per test.
func buildWscad(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wscad")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startInstance runs wscad on dsn and the test token, with an admin API.
func startInstance(t *testing.T, bin, dsn, deviceURI, tokenFile string) *instance {
	t.Helper()
	return startWith(t, bin, dsn, tokenFile, "--device", deviceURI)
}

// startWith runs wscad on dsn with an admin API and the extra flags.
func startWith(t *testing.T, bin, dsn, tokenFile string, extra ...string) *instance {
	t.Helper()
	in := &instance{url: "http://" + freeAddr(t), admin: "http://" + freeAddr(t), logs: &syncBuffer{}}
	args := append([]string{"--store", dsn, "--data-dir", t.TempDir(),
		"--listen", in.url[len("http://"):], "--admin-listen", in.admin[len("http://"):],
		"--admin-token-file", tokenFile, "--log-format", "text"}, extra...)
	in.cmd = exec.Command(bin, args...)
	// The test environment's SoftHSM configuration, as it was before any
	// in-process wscad pointed SOFTHSM2_CONF at a data directory's token.
	env := []string{"SOFTHSM2_CONF=" + softhsmConf}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SOFTHSM2_CONF=") {
			env = append(env, kv)
		}
	}
	in.cmd.Env = env
	in.cmd.Stderr = in.logs
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		resp, err := http.Get(in.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if i > 300 {
			in.stop(t)
			t.Fatalf("wscad did not become ready:\n%s", in.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return in
}

// stop sends SIGTERM and waits for a clean exit.
func (in *instance) stop(t *testing.T) {
	t.Helper()
	if in.cmd.Process == nil || in.cmd.ProcessState != nil {
		return
	}
	in.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- in.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("wscad exited with %v:\n%s", err, in.logs)
		}
	case <-time.After(20 * time.Second):
		in.cmd.Process.Kill()
		t.Errorf("wscad did not stop on SIGTERM")
	}
}

// client is a wallet of unit with the keys csk and cak, talking to in.
func (in *instance) client(t *testing.T, unit string, csk *ecdsa.PrivateKey, cak *ecdh.PrivateKey) *client.Client {
	t.Helper()
	keys, err := client.FetchServerKeys(context.Background(), httptransport.New(nil), in.url)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{URL: in.url, Transport: httptransport.New(nil), Unit: unit, Context: "hsm", SigningKey: csk, AgreementKey: cak, Server: keys})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (in *instance) adminCall(t *testing.T, token, method, path string, body any, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, in.admin+"/admin/v1"+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("admin %s %s: %s", method, path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

// TestLockoutAcrossInstances: two wscad processes on one PostgreSQL and one
// HSM token. Twenty concurrent wrong PINs, spread over both, are counted
// exactly: five are admitted, fifteen refused, and the unit is locked. The
// lock survives a restart of both instances; the right PIN is refused until
// the operator unlocks.
func TestLockoutAcrossInstances(t *testing.T) {
	dsn := testenv.Postgres(t)
	deviceURI := testenv.PKCS11URI(t)
	bin := buildWscad(t)
	token := "cluster-test-admin-token-0123456789"
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(token), 0o600)

	a := startInstance(t, bin, dsn, deviceURI, tokenFile)
	b := startInstance(t, bin, dsn, deviceURI, tokenFile)
	defer a.stop(t)
	defer b.stop(t)

	var created struct {
		Unit string `json:"unit"`
		Code string `json:"activation_code"`
	}
	a.adminCall(t, token, "POST", "/units", map[string]any{}, &created)
	ctx := context.Background()
	csk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cak, _ := ecdh.P256().GenerateKey(rand.Reader)
	newClient := func(in *instance) *client.Client { return in.client(t, created.Unit, csk, cak) }
	ca, cb := newClient(a), newClient(b)
	if ca.Config().Server.SigningKID != cb.Config().Server.SigningKID {
		t.Fatal("the instances publish different server keys")
	}
	if err := ca.Enrol(ctx, created.Code, []byte("246810")); err != nil {
		t.Fatalf("Enrol: %v", err)
	}
	// By default (--oprf-hsm) the record's OPRF key is on the token: the
	// lockout below runs on the HSM path (issue 11).
	if st, err := store.Open(ctx, dsn); err != nil {
		t.Fatal(err)
	} else {
		rec, err := st.GetPINRecord(ctx, created.Unit, "hsm")
		st.Close()
		if err != nil || rec.OPRF.IsZero() {
			t.Fatalf("record: HSM OPRF key %v, %v", err == nil && !rec.OPRF.IsZero(), err)
		}
	}
	// Enrolled on A, the unit logs in on B: the OPAQUE key material and
	// the record are shared.
	if _, err := cb.Login(ctx, []byte("246810"), client.LoginOptions{}); err != nil {
		t.Fatalf("login on the other instance: %v", err)
	}

	const n = 20
	var wg sync.WaitGroup
	codes := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ca
			if i%2 == 1 {
				c = cb
			}
			_, err := c.Login(ctx, []byte(fmt.Sprintf("%06d", i)), client.LoginOptions{})
			var e *client.Error
			if ok := asError(err, &e); ok {
				codes <- e.Code
			} else {
				codes <- fmt.Sprint(err)
			}
		}()
	}
	wg.Wait()
	close(codes)
	count := map[string]int{}
	for c := range codes {
		count[c]++
	}
	if count[r2ps.CodeUnauthorized] != 5 || count[r2ps.CodeAccessDenied] != 15 {
		t.Fatalf("20 concurrent wrong PINs gave %v, want 5 UNAUTHORIZED and 15 ACCESS_DENIED", count)
	}
	var attempts struct {
		Failures int  `json:"failures"`
		Locked   bool `json:"locked"`
	}
	b.adminCall(t, token, "GET", "/units/"+created.Unit+"/attempts?context=hsm", nil, &attempts)
	if attempts.Failures != 5 || !attempts.Locked {
		t.Fatalf("counter after the storm: %+v", attempts)
	}

	// Restart both.
	a.stop(t)
	b.stop(t)
	a = startInstance(t, bin, dsn, deviceURI, tokenFile)
	b = startInstance(t, bin, dsn, deviceURI, tokenFile)
	defer a.stop(t)
	defer b.stop(t)
	for _, in := range []*instance{a, b} {
		_, err := newClient(in).Login(ctx, []byte("246810"), client.LoginOptions{})
		if !client.IsCode(err, r2ps.CodeAccessDenied) {
			t.Fatalf("right PIN after restart: %v, want ACCESS_DENIED (locked)", err)
		}
	}
	b.adminCall(t, token, "GET", "/units/"+created.Unit+"/attempts?context=hsm", nil, &attempts)
	if attempts.Failures != 5 || !attempts.Locked {
		t.Fatalf("counter after restart: %+v", attempts)
	}
	var unlocked map[string]any
	a.adminCall(t, token, "POST", "/units/"+created.Unit+"/unlock", map[string]string{"context": "hsm"}, &unlocked)
	if _, err := newClient(b).Login(ctx, []byte("246810"), client.LoginOptions{}); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	scanLogsForSecrets(t, []*instance{a, b}, token)
}

func asError(err error, target **client.Error) bool {
	e, ok := err.(*client.Error)
	if ok {
		*target = e
	}
	return ok
}

// scanLogsForSecrets fails if a secret shows in an instance's log.
func scanLogsForSecrets(t *testing.T, ins []*instance, secrets ...string) {
	t.Helper()
	for _, in := range ins {
		sc := bufio.NewScanner(strings.NewReader(in.logs.String()))
		for sc.Scan() {
			for _, s := range secrets {
				if bytes.Contains(sc.Bytes(), []byte(s)) {
					t.Fatalf("secret in the log: %s", sc.Text())
				}
			}
		}
	}
}
