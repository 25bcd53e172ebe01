package client_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/internal/wycheproof"
	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/r2ps/client/httptransport"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// world is a real wscad stack serving HTTP on loopback.
type world struct {
	url  string
	svc  *wscd.Services
	st   *store.Store
	pins *pin.Server
	rec  *recorder
}

// recorder keeps every request body a client sends, for replay tests.
type recorder struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		b, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(b))
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		r.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (r *recorder) take() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.bodies
	r.bodies = nil
	return out
}

func newWorld(t *testing.T, dsn string, dev device.Device) *world {
	t.Helper()
	r := stacktest.Start(t, dsn, dev, nil)
	return &world{url: r.URL, svc: r.Services, st: r.Store, pins: r.PIN, rec: &recorder{}}
}

// forEach runs fn against SoftHSM on SQLite and on PostgreSQL.
func forEach(t *testing.T, fn func(t *testing.T, w *world)) {
	for _, b := range testenv.StoreBackends() {
		t.Run(b.Name, func(t *testing.T) {
			fn(t, newWorld(t, b.DSN(t), testdevice.PKCS11(t)))
		})
	}
}

// newClient makes a client with fresh keys for unit; it has no PIN yet.
func (w *world) newClient(t *testing.T, unit, ctxName string) *client.Client {
	t.Helper()
	keys, err := client.FetchServerKeys(context.Background(), httptransport.New(nil), w.url)
	if err != nil {
		t.Fatal(err)
	}
	csk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cak, _ := ecdh.P256().GenerateKey(rand.Reader)
	c, err := client.New(client.Config{URL: w.url, Transport: httptransport.New(&http.Client{Transport: w.rec}), Unit: unit, Context: ctxName,
		SigningKey: csk, AgreementKey: cak, Server: keys})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enrolled creates a unit, issues a code and enrols a client with pinCode.
func (w *world) enrolled(t *testing.T, prefix, pinCode string) (*client.Client, string) {
	t.Helper()
	ctx := context.Background()
	unit := wscd.NewUnitID() + "-" + prefix
	if err := w.svc.Units.Create(ctx, unit); err != nil {
		t.Fatal(err)
	}
	code, err := w.svc.Units.IssueActivationCode(ctx, unit, store.PurposeActivation, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := w.newClient(t, unit, "hsm")
	if err := c.Enrol(ctx, code.Code, []byte(pinCode)); err != nil {
		t.Fatalf("Enrol: %v", err)
	}
	return c, unit
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if !client.IsCode(err, code) {
		t.Fatalf("%s: got %v, want %s", what, err, code)
	}
}

func digest(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}

// TestFullFlow: enrolment, login, keygen, sign (verified), ECDH (equal to
// the peer's), list, delete, PIN change, and login with the new PIN.
func TestFullFlow(t *testing.T) {
	forEach(t, func(t *testing.T, w *world) {
		ctx := context.Background()
		c, unit := w.enrolled(t, "flow", "123456")
		s, err := c.Login(ctx, []byte("123456"), client.LoginOptions{})
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		k, err := s.Generate(ctx)
		if err != nil {
			t.Fatalf("Generate: %v", err)
		}
		sig, err := s.Sign(ctx, k.KID, digest("hello"))
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		if !ecdsa.VerifyASN1(k.Public, digest("hello"), sig) {
			t.Fatal("signature does not verify under the generated key")
		}
		peer, _ := ecdh.P256().GenerateKey(rand.Reader)
		z, err := s.ECDH(ctx, k.KID, peer.PublicKey().Bytes())
		if err != nil {
			t.Fatalf("ECDH: %v", err)
		}
		kb, _ := k.Public.Bytes()
		kp, _ := ecdh.P256().NewPublicKey(kb)
		want, _ := peer.ECDH(kp)
		if !bytes.Equal(z, want) {
			t.Fatal("ECDH secret differs from the peer's")
		}
		keys, err := s.ListKeys(ctx)
		if err != nil || len(keys) != 1 || keys[0].KID != k.KID {
			t.Fatalf("ListKeys: %v %v", keys, err)
		}
		if err := s.DeleteKey(ctx, k.KID); err != nil {
			t.Fatalf("DeleteKey: %v", err)
		}
		if keys, _ := s.ListKeys(ctx); len(keys) != 0 {
			t.Fatalf("key survived deletion: %v", keys)
		}

		// PIN change in a session bound to it; the session ends with it.
		up, err := c.Login(ctx, []byte("123456"), client.LoginOptions{Task: r2ps.Task2FAUpdate})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.Generate(ctx); !client.IsCode(err, r2ps.CodeAccessDenied) {
			t.Fatalf("a 2fa_update session made a key: %v", err)
		}
		if err := up.ChangePIN(ctx, []byte("654321")); err != nil {
			t.Fatalf("ChangePIN: %v", err)
		}
		if err := up.ChangePIN(ctx, []byte("000000")); err == nil {
			t.Fatal("a 2fa_update session changed the PIN twice")
		}
		_, err = c.Login(ctx, []byte("123456"), client.LoginOptions{})
		wantCode(t, "old PIN", err, r2ps.CodeUnauthorized)
		if _, err := c.Login(ctx, []byte("654321"), client.LoginOptions{}); err != nil {
			t.Fatalf("new PIN: %v", err)
		}
		if a, _ := w.pins.Attempts(ctx, unit, "hsm"); a.Failures != 0 {
			t.Fatalf("counter after a correct PIN: %+v", a)
		}
	})
}

// TestWrongPINAndLockout: wrong PINs are counted; after five the unit is
// locked even for the right PIN, until the operator unlocks it.
func TestWrongPINAndLockout(t *testing.T) {
	forEach(t, func(t *testing.T, w *world) {
		ctx := context.Background()
		c, unit := w.enrolled(t, "lock", "123456")
		for i := 1; i <= pin.DefaultMaxAttempts; i++ {
			_, err := c.Login(ctx, []byte("999999"), client.LoginOptions{})
			wantCode(t, "wrong PIN", err, r2ps.CodeUnauthorized)
			if a, _ := w.pins.Attempts(ctx, unit, "hsm"); a.Failures != i {
				t.Fatalf("after %d wrong PINs the counter is %d", i, a.Failures)
			}
		}
		_, err := c.Login(ctx, []byte("123456"), client.LoginOptions{})
		wantCode(t, "locked", err, r2ps.CodeAccessDenied)
		if err := w.svc.Units.UnlockPIN(ctx, unit, "hsm"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Login(ctx, []byte("123456"), client.LoginOptions{}); err != nil {
			t.Fatalf("after unlock: %v", err)
		}
	})
}

// TestForeignCSK: a request signed by another unit's CSK is refused before
// the PIN is touched: no attempt is spent.
func TestForeignCSK(t *testing.T) {
	forEach(t, func(t *testing.T, w *world) {
		ctx := context.Background()
		_, victim := w.enrolled(t, "victim", "123456")
		attacker, _ := w.enrolled(t, "attacker", "111111")
		// The attacker's client, claiming to be the victim unit.
		impostor := w.reclient(t, attacker, victim)
		_, err := impostor.Login(ctx, []byte("000000"), client.LoginOptions{})
		if err == nil {
			t.Fatal("a login signed with another unit's key went through")
		}
		if a, _ := w.pins.Attempts(ctx, victim, "hsm"); a.Failures != 0 {
			t.Fatalf("a foreign-signed request spent a PIN attempt: %+v", a)
		}
	})
}

// reclient returns a client with c's keys that claims to be unit.
func (w *world) reclient(t *testing.T, c *client.Client, unit string) *client.Client {
	t.Helper()
	cfg := c.Config()
	cfg.Unit = unit
	out, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCrossUnit: a unit cannot sign with, derive with, or delete another
// unit's key, even when it knows the kid.
func TestCrossUnit(t *testing.T) {
	forEach(t, func(t *testing.T, w *world) {
		ctx := context.Background()
		a, _ := w.enrolled(t, "a", "123456")
		b, _ := w.enrolled(t, "b", "123456")
		sa, err := a.Login(ctx, []byte("123456"), client.LoginOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sb, err := b.Login(ctx, []byte("123456"), client.LoginOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ka, err := sa.Generate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		peer, _ := ecdh.P256().GenerateKey(rand.Reader)
		_, err = sb.Sign(ctx, ka.KID, digest("x"))
		wantCode(t, "B signs with A's key", err, r2ps.CodeIllegalRequestData)
		_, err = sb.ECDH(ctx, ka.KID, peer.PublicKey().Bytes())
		wantCode(t, "B derives with A's key", err, r2ps.CodeIllegalRequestData)
		wantCode(t, "B deletes A's key", sb.DeleteKey(ctx, ka.KID), r2ps.CodeIllegalRequestData)
		if keys, err := sb.ListKeys(ctx); err != nil || len(keys) != 0 {
			t.Fatalf("B lists %v %v", keys, err)
		}
		if _, err := sa.Sign(ctx, ka.KID, digest("x")); err != nil {
			t.Fatalf("A's key after B's attempts: %v", err)
		}
	})
}

// TestReplay: every message a client sent (registration, login, each key
// operation, a PIN change) is refused when sent again.
func TestReplay(t *testing.T) {
	forEach(t, func(t *testing.T, w *world) {
		ctx := context.Background()
		c, _ := w.enrolled(t, "replay", "123456")
		s, err := c.Login(ctx, []byte("123456"), client.LoginOptions{})
		if err != nil {
			t.Fatal(err)
		}
		k, err := s.Generate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s.Sign(ctx, k.KID, digest("x"))
		peer, _ := ecdh.P256().GenerateKey(rand.Reader)
		s.ECDH(ctx, k.KID, peer.PublicKey().Bytes())
		s.ListKeys(ctx)
		s.DeleteKey(ctx, k.KID)
		up, err := c.Login(ctx, []byte("123456"), client.LoginOptions{Task: r2ps.Task2FAUpdate})
		if err != nil {
			t.Fatal(err)
		}
		if err := up.ChangePIN(ctx, []byte("654321")); err != nil {
			t.Fatal(err)
		}
		bodies := w.rec.take()
		if len(bodies) < 13 {
			t.Fatalf("recorded %d requests", len(bodies))
		}
		for i, b := range bodies {
			resp, err := http.Post(w.url+r2ps.Path, r2ps.MediaType, bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// A replay is refused as such (400), or, when its session has
			// since ended (the PIN change ends it), as unauthenticated (401).
			refused := resp.StatusCode == http.StatusBadRequest && strings.Contains(string(out), r2ps.CodeIllegalRequestData) ||
				resp.StatusCode == http.StatusUnauthorized && strings.Contains(string(out), r2ps.CodeUnauthorized)
			if !refused {
				t.Errorf("replay of request %d: %d %s", i, resp.StatusCode, out)
			}
		}
	})
}

// TestWycheproofPointsThroughECDH: every invalid Wycheproof peer point is
// refused by agree_ecdh and none reaches the device.
func TestWycheproofPointsThroughECDH(t *testing.T) {
	dev := testdevice.PKCS11(t)
	w := newWorld(t, testenv.SQLite(t), dev)
	ctx := context.Background()
	c, _ := w.enrolled(t, "wp", "123456")
	s, err := c.Login(ctx, []byte("123456"), client.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.Generate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range wycheproof.ECDH(t, "ecdh_secp256r1_ecpoint_test.json") {
		if v.Result != wycheproof.Invalid {
			continue
		}
		n++
		before := dev.Calls()
		// Past the client's own check, straight to the server.
		data := json.RawMessage(`{"kid":"` + k.KID + `","public_key":"` + base64.StdEncoding.EncodeToString(v.Public) + `"}`)
		_, err := s.Call(ctx, r2ps.TypeAgreeECDH, data)
		wantCode(t, fmt.Sprintf("tcId %d", v.TcID), err, r2ps.CodeIllegalRequestData)
		if d := device.CallsDelta(before, dev.Calls()); d[("C_DeriveKey")] != 0 {
			t.Fatalf("tcId %d reached the device: %v", v.TcID, d)
		}
	}
	if n == 0 {
		t.Fatal("no invalid vectors")
	}
}

// TestSessionExpiry: a session is refused after it ends.
func TestSessionEnds(t *testing.T) {
	w := newWorld(t, testenv.SQLite(t), testdevice.Soft(t))
	ctx := context.Background()
	c, unit := w.enrolled(t, "exp", "123456")
	s, err := c.Login(ctx, []byte("123456"), client.LoginOptions{Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListKeys(ctx); err != nil {
		t.Fatal(err)
	}
	// Suspending the unit ends its sessions at once.
	if err := w.svc.Units.SetState(ctx, unit, store.UnitSuspended); err != nil {
		t.Fatal(err)
	}
	_, err = s.ListKeys(ctx)
	wantCode(t, "session of a suspended unit", err, r2ps.CodeUnauthorized)
}

// TestTasksAndFreshness: a sign: session signs only its hashes, once each;
// a context that demands a task refuses a plain session; stale requests and
// wrong or spent activation codes are refused.
func TestTasksAndFreshness(t *testing.T) {
	w := newWorld(t, testenv.SQLite(t), testdevice.Soft(t))
	ctx := context.Background()
	c, _ := w.enrolled(t, "task", "123456")
	s, err := c.Login(ctx, []byte("123456"), client.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.Generate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h1, h2 := digest("approve payment 1"), digest("approve payment 2")
	ts, err := c.Login(ctx, []byte("123456"), client.LoginOptions{Task: "sign:" + hex.EncodeToString(h1)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ts.Sign(ctx, k.KID, h2)
	wantCode(t, "hash outside the task", err, r2ps.CodeAccessDenied)
	if _, err := ts.Sign(ctx, k.KID, h1); err != nil {
		t.Fatalf("hash of the task: %v", err)
	}
	_, err = ts.Sign(ctx, k.KID, h1)
	wantCode(t, "second use of a one-signature session", err, r2ps.CodeUnauthorized)
	_, err = ts.Generate(ctx)
	if err == nil {
		t.Fatal("a sign-task session made a key")
	}

	// The "signing" context demands a sign task.
	unit := wscd.NewUnitID()
	if err := w.svc.Units.Create(ctx, unit); err != nil {
		t.Fatal(err)
	}
	code, _ := w.svc.Units.IssueActivationCode(ctx, unit, store.PurposeActivation, 0)
	sc := w.newClient(t, unit, "signing")
	if err := sc.Enrol(ctx, code.Code, []byte("777777")); err != nil {
		t.Fatal(err)
	}
	plain, err := sc.Login(ctx, []byte("777777"), client.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sk, err := plain.Generate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = plain.Sign(ctx, sk.KID, h1)
	wantCode(t, "signing context without a task", err, r2ps.CodeAccessDenied)
	bound, err := sc.Login(ctx, []byte("777777"), client.LoginOptions{Task: "sign:" + hex.EncodeToString(h1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bound.Sign(ctx, sk.KID, h1); err != nil {
		t.Fatalf("signing context with a task: %v", err)
	}

	// A request from ten minutes ago is refused before anything happens.
	cfg := c.Config()
	cfg.Now = func() time.Time { return time.Now().Add(-10 * time.Minute) }
	stale, _ := client.New(cfg)
	_, err = stale.Login(ctx, []byte("123456"), client.LoginOptions{})
	wantCode(t, "stale iat", err, r2ps.CodeIllegalRequestData)

	// Wrong, and spent, activation codes.
	u2 := wscd.NewUnitID()
	w.svc.Units.Create(ctx, u2)
	good, _ := w.svc.Units.IssueActivationCode(ctx, u2, store.PurposeActivation, 0)
	wc := w.newClient(t, u2, "hsm")
	wantCode(t, "wrong code", wc.Enrol(ctx, "AAAA-BBBB-CCCC", []byte("1")), r2ps.CodeUnauthorized)
	if err := wc.Enrol(ctx, good.Code, []byte("111111")); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "spent code", w.newClient(t, u2, "hsm").Enrol(ctx, good.Code, []byte("2")), r2ps.CodeUnauthorized)
}

// TestConcurrentCorrectLogins: the right holder logging in many times at
// once does not lock the unit. At most MaxAttempts logins are in flight at
// a time (the others are refused), and each success clears the count.
func TestConcurrentCorrectLogins(t *testing.T) {
	w := newWorld(t, testenv.SQLite(t), testdevice.Soft(t))
	ctx := context.Background()
	c, unit := w.enrolled(t, "busy", "123456")
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Login(ctx, []byte("123456"), client.LoginOptions{})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case client.IsCode(err, r2ps.CodeAccessDenied):
		default:
			t.Errorf("concurrent correct login: %v", err)
		}
	}
	if ok == 0 {
		t.Fatal("no concurrent login succeeded")
	}
	if _, err := c.Login(ctx, []byte("123456"), client.LoginOptions{}); err != nil {
		t.Fatalf("the unit locked itself: %v", err)
	}
	if a, _ := w.pins.Attempts(ctx, unit, "hsm"); a.Failures != 0 || a.Locked {
		t.Fatalf("counter after correct logins: %+v", a)
	}
}
