package pin_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/store"
)

func TestRegisterAndLogin(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		ctx := context.Background()
		e.register(t, e.srv, "alice", "123456")

		r, err := e.login(t, e.srv, "alice", "123456", pin.LoginOptions{Task: "sign:ab", Uses: 3})
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		se := r.session
		if len(se.Key) != 32 || !bytes.Equal(se.Key, r.clientKey) {
			t.Fatalf("session keys differ: server %x, client %x", se.Key, r.clientKey)
		}
		if se.ID != r.id || se.Unit != "alice" || se.Context != hsm || se.Task != "sign:ab" || se.UsesLeft != 3 ||
			!se.ExpiresAt.Equal(e.clock.Now().Add(pin.DefaultSessionTTL)) {
			t.Fatalf("session %v (id %q)", se, se.ID)
		}
		if len(r.ke2) != 259 {
			t.Fatalf("KE2 of %d bytes", len(r.ke2))
		}
		got, err := e.srv.Session(ctx, r.id, "alice", hsm)
		if err != nil || !bytes.Equal(got.Key, r.clientKey) || got.UsesLeft != 3 || got.Task != "sign:ab" {
			t.Fatalf("Session = %v, %v", got, err)
		}
		wantAttempts(t, e.srv, "alice", 0, false)

		// The store keeps the id's hash and the key only sealed.
		raw, err := base64.RawURLEncoding.DecodeString(r.id)
		if err != nil || len(raw) != 32 {
			t.Fatalf("session id %q: %v", r.id, err)
		}
		h := sha256.Sum256(raw)
		stored, err := e.st.GetSession(ctx, h[:], e.clock.Now())
		if err != nil || stored.State != store.SessionVerified {
			t.Fatalf("stored session %+v, %v", stored, err)
		}
		if bytes.Contains(stored.Secret, se.Key) {
			t.Fatal("session key stored in clear")
		}

		// Neither the id nor the key reaches the log or the session's
		// string forms.
		var forms bytes.Buffer
		slog.New(slog.NewTextHandler(&forms, nil)).Info("x", "session", se)
		fmt.Fprint(&forms, se, &se)
		fmt.Fprintf(&forms, "%v %+v", se, se)
		for what, text := range map[string]string{"log": e.logs.String(), "string forms": forms.String()} {
			for _, secret := range []string{r.id, hex.EncodeToString(se.Key), base64.StdEncoding.EncodeToString(se.Key),
				base64.RawURLEncoding.EncodeToString(se.Key), fmt.Sprint(se.Key)} {
				if strings.Contains(text, secret) {
					t.Fatalf("%s holds a secret: %s", what, text)
				}
			}
		}
	})
}

func TestWrongPIN(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		ctx := context.Background()
		e.register(t, e.srv, "bob", "123456")

		r, err := e.login(t, e.srv, "bob", "654321", unlimited)
		wantErr(t, "wrong PIN", err, pin.ErrWrongPIN)
		if r.clientKey != nil {
			t.Fatal("client derived a key from a wrong PIN")
		}
		wantAttempts(t, e.srv, "bob", 1, false)
		// The failed session is gone.
		_, err = e.srv.Session(ctx, r.id, "bob", hsm)
		wantErr(t, "session after wrong PIN", err, pin.ErrNoSession)
		_, err = e.srv.LoginFinish(ctx, r.id, "bob", hsm, make([]byte, 31)) // malformed first
		wantErr(t, "short KE3", err, pin.ErrMalformed)
		_, err = e.srv.LoginFinish(ctx, r.id, "bob", hsm, bytes.Repeat([]byte{1}, 32))
		wantErr(t, "finish again", err, pin.ErrNoSession)
		wantAttempts(t, e.srv, "bob", 1, false)

		if _, err := e.login(t, e.srv, "bob", "123456", unlimited); err != nil {
			t.Fatalf("right PIN: %v", err)
		}
		wantAttempts(t, e.srv, "bob", 0, false)
	})
}

// TestUnknownUnit: a unit without a record gets a KE2 of the same shape,
// and its KE3 fails as a wrong PIN, counted like one.
func TestUnknownUnit(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.register(t, e.srv, "known", "123456")
		known, err := e.login(t, e.srv, "known", "000000", unlimited)
		wantErr(t, "known unit, wrong PIN", err, pin.ErrWrongPIN)

		e.createUnit(t, "unenrolled")
		for _, unit := range []string{"ghost", "unenrolled"} {
			r, err := e.login(t, e.srv, unit, "123456", unlimited)
			wantErr(t, unit, err, pin.ErrWrongPIN)
			if len(r.ke2) != len(known.ke2) || r.id == "" || r.clientKey != nil {
				t.Fatalf("%s: KE2 of %d bytes (known unit's %d), id %q", unit, len(r.ke2), len(known.ke2), r.id)
			}
			wantAttempts(t, e.srv, unit, 1, false)
		}
	})
}

func TestLockout(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		ctx := context.Background()
		e.register(t, e.srv, "carol", "123456")
		for i := 1; i <= pin.DefaultMaxAttempts; i++ {
			_, err := e.login(t, e.srv, "carol", "999999", unlimited)
			wantErr(t, fmt.Sprintf("wrong PIN %d", i), err, pin.ErrWrongPIN)
		}
		wantAttempts(t, e.srv, "carol", pin.DefaultMaxAttempts, true)

		c := e.startClient(t, "123456")
		id, ke2, err := e.srv.LoginStart(ctx, "carol", hsm, c.ke1, unlimited)
		wantErr(t, "6th attempt, right PIN", err, pin.ErrLocked)
		if id != "" || ke2 != nil {
			t.Fatal("KE2 issued while locked")
		}
		wantAttempts(t, e.srv, "carol", pin.DefaultMaxAttempts, true)
		a, err := e.st.GetAttempts(ctx, "carol", hsm)
		if err != nil || !a.Locked {
			t.Fatalf("store counter %+v, %v", a, err)
		}
		if !strings.Contains(e.logs.String(), "pin: attempt refused: locked") {
			t.Fatal("lockout not logged")
		}

		if err := e.srv.Unlock(ctx, "carol", hsm); err != nil {
			t.Fatal(err)
		}
		wantAttempts(t, e.srv, "carol", 0, false)
		if _, err := e.login(t, e.srv, "carol", "123456", unlimited); err != nil {
			t.Fatalf("after unlock: %v", err)
		}
	})
}

func TestDelays(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, func(c *pin.Config) {
			c.Policy = pin.Policy{MaxAttempts: 5, Delays: []pin.Delay{{After: 1, Wait: time.Minute}, {After: 2, Wait: time.Hour}}}
		})
		e.register(t, e.srv, "dave", "123456")
		start := e.clock.Now()

		_, err := e.login(t, e.srv, "dave", "111111", unlimited)
		wantErr(t, "first", err, pin.ErrWrongPIN)
		a := wantAttempts(t, e.srv, "dave", 1, false)
		if !a.NotBefore.Equal(start.Add(time.Minute)) {
			t.Fatalf("not before %v", a.NotBefore)
		}

		e.clock.Advance(59 * time.Second)
		_, err = e.login(t, e.srv, "dave", "123456", unlimited)
		wantErr(t, "within the minute", err, pin.ErrTooSoon)
		wantAttempts(t, e.srv, "dave", 1, false)

		e.clock.Advance(time.Second)
		_, err = e.login(t, e.srv, "dave", "111111", unlimited)
		wantErr(t, "second", err, pin.ErrWrongPIN)
		a = wantAttempts(t, e.srv, "dave", 2, false)
		if !a.NotBefore.Equal(e.clock.Now().Add(time.Hour)) {
			t.Fatalf("escalated not before %v", a.NotBefore)
		}

		e.clock.Advance(time.Hour)
		if _, err := e.login(t, e.srv, "dave", "123456", unlimited); err != nil {
			t.Fatalf("after the wait: %v", err)
		}
		a = wantAttempts(t, e.srv, "dave", 0, false)
		if !a.NotBefore.IsZero() {
			t.Fatalf("wait survived a success: %+v", a)
		}
	})
}

// TestConcurrentAttempts: of 20 concurrent logins with a wrong PIN, exactly
// MaxAttempts get a KE2; the counter ends at MaxAttempts, locked.
func TestConcurrentAttempts(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.register(t, e.srv, "erin", "123456")
		const n = 20
		var wg sync.WaitGroup
		errs := make(chan error, n)
		clients := make([]*client, n)
		for i := range clients {
			clients[i] = e.startClient(t, "000000")
		}
		for _, c := range clients {
			wg.Go(func() {
				ctx := context.Background()
				id, ke2, err := e.srv.LoginStart(ctx, "erin", hsm, c.ke1, unlimited)
				if err != nil {
					errs <- err
					return
				}
				ke3, _, err := c.tryFinish(ke2)
				if err != nil {
					errs <- err
					return
				}
				_, err = e.srv.LoginFinish(ctx, id, "erin", hsm, ke3)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		var wrong, locked int
		for err := range errs {
			switch {
			case errors.Is(err, pin.ErrWrongPIN):
				wrong++
			case errors.Is(err, pin.ErrLocked):
				locked++
			default:
				t.Errorf("unexpected outcome: %v", err)
			}
		}
		if wrong != pin.DefaultMaxAttempts || locked != n-pin.DefaultMaxAttempts {
			t.Fatalf("%d KE2 issued (all wrong), %d locked out", wrong, locked)
		}
		wantAttempts(t, e.srv, "erin", pin.DefaultMaxAttempts, true)
		a, err := e.st.GetAttempts(context.Background(), "erin", hsm)
		if err != nil || !a.Locked || a.Failures != pin.DefaultMaxAttempts {
			t.Fatalf("store counter %+v, %v", a, err)
		}
	})
}

func TestMalformed(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		ctx := context.Background()
		e.register(t, e.srv, "hal", "123456")
		c := e.startClient(t, "123456")
		garbage := [][]byte{nil, {}, make([]byte, 33), make([]byte, 98), bytes.Repeat([]byte{0xff}, 98), c.ke1[:97], append(bytes.Clone(c.ke1), 0)}
		for _, g := range garbage {
			if _, err := e.srv.RegistrationResponse(context.Background(), "hal", hsm, "r", g); !errors.Is(err, pin.ErrMalformed) {
				t.Fatalf("RegistrationResponse(%x): %v", g, err)
			}
			if err := e.srv.CheckRecord(g); !errors.Is(err, pin.ErrMalformed) {
				t.Fatalf("CheckRecord(%x): %v", g, err)
			}
			if _, _, err := e.srv.LoginStart(ctx, "hal", hsm, g, unlimited); !errors.Is(err, pin.ErrMalformed) {
				t.Fatalf("LoginStart(%x): %v", g, err)
			}
		}
		// A bad unit id or context, and bad options, are refused before
		// anything is counted.
		for _, k := range []struct{ unit, context string }{
			{"", hsm}, {"hal", ""}, {"hal", "a|b"}, {"h\nal", hsm}, {"hal", "\xff"}, {strings.Repeat("u", 256), hsm},
		} {
			if _, _, err := e.srv.LoginStart(ctx, k.unit, k.context, c.ke1, unlimited); !errors.Is(err, pin.ErrMalformed) {
				t.Fatalf("LoginStart(%q, %q): %v", k.unit, k.context, err)
			}
			req := make([]byte, 33)
			if _, err := e.srv.RegistrationResponse(context.Background(), k.unit, k.context, "r", req); !errors.Is(err, pin.ErrMalformed) {
				t.Fatalf("RegistrationResponse(%q, %q): %v", k.unit, k.context, err)
			}
			if _, err := e.srv.Attempts(ctx, k.unit, k.context); !errors.Is(err, pin.ErrMalformed) {
				t.Fatalf("Attempts(%q, %q): %v", k.unit, k.context, err)
			}
			if err := e.srv.Unlock(ctx, k.unit, k.context); !errors.Is(err, pin.ErrMalformed) {
				t.Fatalf("Unlock(%q, %q): %v", k.unit, k.context, err)
			}
		}
		for _, opts := range []pin.LoginOptions{{}, {Uses: -2}, {Uses: 1, TTL: -time.Second}} {
			if _, _, err := e.srv.LoginStart(ctx, "hal", hsm, c.ke1, opts); !errors.Is(err, pin.ErrConfig) {
				t.Fatalf("LoginStart with %+v: %v", opts, err)
			}
		}
		wantAttempts(t, e.srv, "hal", 0, false)

		// A record must not have the all-zero envelope of fake records.
		rec := e.registration(t, e.srv, "hal", "other", "123456").Record
		clear(rec[len(rec)-64:])
		wantErr(t, "zero envelope", e.srv.CheckRecord(rec), pin.ErrMalformed)

		// A registration is finished only by the requester that started it,
		// once, and only after its evaluate step.
		c2, err := e.conf.Client()
		if err != nil {
			t.Fatal(err)
		}
		req, _ := c2.RegistrationInit([]byte("654321"))
		raw, err := e.srv.RegistrationResponse(ctx, "hal", "other", "requester-a", req.Serialize())
		if err != nil {
			t.Fatal(err)
		}
		resp, _ := c2.Deserialize.RegistrationResponse(raw)
		final, _, err := c2.RegistrationFinalize(resp, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.srv.FinishRegistration(ctx, "hal", "other", "requester-b", final.Serialize())
		wantErr(t, "another requester", err, pin.ErrNoRegistration)
		if _, err := e.srv.FinishRegistration(ctx, "hal", "other", "requester-a", final.Serialize()); err != nil {
			t.Fatal(err)
		}
		_, err = e.srv.FinishRegistration(ctx, "hal", "other", "requester-a", final.Serialize())
		wantErr(t, "finished twice", err, pin.ErrNoRegistration)
	})
}
