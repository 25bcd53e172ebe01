package pin_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/store"
)

func TestSessionBinding(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		ctx := context.Background()
		e.register(t, e.srv, "ann", "111111")
		e.register(t, e.srv, "ben", "222222")

		r, err := e.login(t, e.srv, "ann", "111111", unlimited)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ unit, context string }{{"ben", hsm}, {"ann", "signing"}, {"ann", "hsm|x"}} {
			if _, err := e.srv.Session(ctx, r.id, c.unit, c.context); !errors.Is(err, pin.ErrNoSession) {
				t.Fatalf("ann's session as %s/%s: %v", c.unit, c.context, err)
			}
		}
		if err := e.srv.End(ctx, r.id); err != nil {
			t.Fatal(err)
		}
		_, err = e.srv.Session(ctx, r.id, "ann", hsm)
		wantErr(t, "ended session", err, pin.ErrNoSession)

		// A pending session is not usable, and cannot be finished as
		// another unit or context; the right one still can.
		c := e.startClient(t, "111111")
		id, ke2, err := e.srv.LoginStart(ctx, "ann", hsm, c.ke1, unlimited)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.srv.Session(ctx, id, "ann", hsm)
		wantErr(t, "pending session", err, pin.ErrNoSession)
		wantErr(t, "use pending session", e.srv.Use(ctx, id), pin.ErrNoSession)
		ke3, key := c.finish(t, ke2)
		_, err = e.srv.LoginFinish(ctx, id, "ben", hsm, ke3)
		wantErr(t, "finish as ben", err, pin.ErrNoSession)
		_, err = e.srv.LoginFinish(ctx, id, "ann", "signing", ke3)
		wantErr(t, "finish in another context", err, pin.ErrNoSession)
		se, err := e.srv.LoginFinish(ctx, id, "ann", hsm, ke3)
		if err != nil || !bytes.Equal(se.Key, key) {
			t.Fatalf("finish as ann: %v", err)
		}
		_, err = e.srv.LoginFinish(ctx, id, "ann", hsm, ke3)
		wantErr(t, "finish twice", err, pin.ErrNoSession)

		// Expiry, with the injected clock.
		r, err = e.login(t, e.srv, "ann", "111111", pin.LoginOptions{Uses: store.Unlimited, TTL: time.Minute})
		if err != nil || !r.session.ExpiresAt.Equal(e.clock.Now().Add(time.Minute)) {
			t.Fatalf("login with TTL: %v %v", r.session, err)
		}
		e.clock.Advance(59 * time.Second)
		if _, err := e.srv.Session(ctx, r.id, "ann", hsm); err != nil {
			t.Fatalf("before expiry: %v", err)
		}
		e.clock.Advance(time.Second)
		_, err = e.srv.Session(ctx, r.id, "ann", hsm)
		wantErr(t, "expired", err, pin.ErrNoSession)
		wantErr(t, "use expired", e.srv.Use(ctx, r.id), pin.ErrNoSession)
		c = e.startClient(t, "111111")
		id, ke2, err = e.srv.LoginStart(ctx, "ann", hsm, c.ke1, pin.LoginOptions{Uses: 1, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Minute)
		ke3, _ = c.finish(t, ke2)
		_, err = e.srv.LoginFinish(ctx, id, "ann", hsm, ke3)
		wantErr(t, "finish expired", err, pin.ErrNoSession)

		// A session bound to one use allows one.
		r, err = e.login(t, e.srv, "ann", "111111", pin.LoginOptions{Task: "2fa_update", Uses: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.srv.Use(ctx, r.id); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "second use", e.srv.Use(ctx, r.id), pin.ErrNoSession)
		_, err = e.srv.Session(ctx, r.id, "ann", hsm)
		wantErr(t, "used-up session", err, pin.ErrNoSession)

		// Malformed ids are unknown sessions.
		good := r.id
		for _, id := range []string{"", "x", good + "=", good[:42], good + "A", "+" + good[1:],
			good[:42] + "B" /* non-zero padding bits */, base64.StdEncoding.EncodeToString(make([]byte, 32))} {
			if id == good {
				continue
			}
			if _, err := e.srv.Session(ctx, id, "ann", hsm); !errors.Is(err, pin.ErrNoSession) {
				t.Fatalf("Session(%q): %v", id, err)
			}
			if err := e.srv.Use(ctx, id); !errors.Is(err, pin.ErrNoSession) {
				t.Fatalf("Use(%q): %v", id, err)
			}
			if err := e.srv.End(ctx, id); !errors.Is(err, pin.ErrNoSession) {
				t.Fatalf("End(%q): %v", id, err)
			}
			if _, err := e.srv.LoginFinish(ctx, id, "ann", hsm, ke3); !errors.Is(err, pin.ErrNoSession) {
				t.Fatalf("LoginFinish(%q): %v", id, err)
			}
		}
	})
}

// TestRandomSessionIDs: ids come from Config.Rand and differ.
func TestRandomSessionIDs(t *testing.T) {
	e := newEnv(t, "sqlite:"+t.TempDir()+"/wsca.db", func(c *pin.Config) { c.Rand = rand.Reader })
	e.register(t, e.srv, "jo", "123456")
	seen := map[string]bool{}
	for range 3 {
		r, err := e.login(t, e.srv, "jo", "123456", unlimited)
		if err != nil || seen[r.id] || len(r.id) != 43 || strings.ContainsAny(r.id, "+/=") {
			t.Fatalf("id %q: %v", r.id, err)
		}
		seen[r.id] = true
	}
}
