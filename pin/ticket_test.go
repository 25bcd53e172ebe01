package pin_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/store"
)

var ticketOpts = pin.LoginOptions{Uses: store.Unlimited, Task: "sign:ab", Binding: []byte("bound to the session")}

// TestTicket: a login with a binding gets a sealed ticket as its id. It
// opens without the store into what was sealed, finishes the login and
// ends like a plain id; the session's task must be the ticket's.
func TestTicket(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		ctx := context.Background()
		e.register(t, e.srv, "ann", "111111")
		r, err := e.login(t, e.srv, "ann", "111111", ticketOpts)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.id) <= 43 || len(r.id) > pin.MaxSessionIDLen || r.session.ID != r.id {
			t.Fatalf("ticket of %d characters (session id %q)", len(r.id), r.session.ID)
		}
		tk, err := e.srv.OpenTicket(r.id)
		if err != nil {
			t.Fatal(err)
		}
		if tk.Unit != "ann" || tk.Context != hsm || !bytes.Equal(tk.Key, r.clientKey) || !bytes.Equal(tk.Binding, ticketOpts.Binding) || tk.ID != r.id {
			t.Fatalf("opened %v, binding %q", tk, tk.Binding)
		}
		if strings.Contains(tk.String(), r.id) || strings.Contains(tk.LogValue().String(), r.id) {
			t.Fatal("a ticket's description names the ticket")
		}
		se, err := tk.Session(ticketOpts.Task, 3, e.clock.Now())
		if err != nil || se.Task != ticketOpts.Task || se.Unit != "ann" || se.ID != r.id || se.UsesLeft != 3 {
			t.Fatalf("session %v: %v", se, err)
		}
		// A row whose task was changed in the database does not match.
		_, err = tk.Session("", 3, e.clock.Now())
		wantErr(t, "other task", err, pin.ErrIntegrity)

		// The store knows the session by the ticket's hash.
		if _, err := e.srv.Session(ctx, r.id, "ann", hsm); err != nil {
			t.Fatal(err)
		}
		if err := e.srv.End(ctx, r.id); err != nil {
			t.Fatal(err)
		}
		_, err = e.srv.Session(ctx, r.id, "ann", hsm)
		wantErr(t, "ended", err, pin.ErrNoSession)

		// Without a binding the id stays a plain random one.
		r, err = e.login(t, e.srv, "ann", "111111", unlimited)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.id) != 43 {
			t.Fatalf("plain id of %d characters", len(r.id))
		}
		_, err = e.srv.OpenTicket(r.id)
		wantErr(t, "plain id", err, pin.ErrNotTicket)
	})
}

// TestTicketRefused: every change to a ticket, and a ticket of another
// server key, fails to open; a ticket that would be too long is a plain id.
func TestTicketRefused(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t), nil)
	ctx := context.Background()
	e.register(t, e.srv, "ann", "111111")
	r, err := e.login(t, e.srv, "ann", "111111", ticketOpts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(r.id)
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		b := bytes.Clone(raw)
		b[i] ^= 0x01
		_, err := e.srv.OpenTicket(base64.RawURLEncoding.EncodeToString(b))
		wantErr(t, fmt.Sprintf("ticket with byte %d changed", i), err, pin.ErrNoSession)
	}
	for _, id := range []string{r.id[:len(r.id)-1], r.id + "A", r.id + "=", "", strings.Repeat("A", 300), strings.Repeat("A", 120)} {
		_, err := e.srv.OpenTicket(id)
		wantErr(t, "malformed ticket", err, pin.ErrNoSession)
	}
	// Another deployment's server (another HSM-derived key) cannot open it.
	other := newEnv(t, testenv.SQLite(t), nil)
	_, err = other.srv.OpenTicket(r.id)
	wantErr(t, "other key", err, pin.ErrNoSession)

	// A binding longer than the limit is a configuration error.
	c := e.startClient(t, "111111")
	_, _, err = e.srv.LoginStart(ctx, "ann", hsm, c.ke1, pin.LoginOptions{Uses: store.Unlimited, Binding: make([]byte, pin.MaxTicketBinding+1)})
	wantErr(t, "long binding", err, pin.ErrConfig)

	// A unit id too long for a ticket of MaxSessionIDLen gets a plain id.
	long := strings.Repeat("u", 120)
	e.register(t, e.srv, long, "111111")
	r, err = e.login(t, e.srv, long, "111111", ticketOpts)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.id) != 43 {
		t.Fatalf("long unit: id of %d characters", len(r.id))
	}
}

func FuzzOpenTicket(f *testing.F) {
	e := newEnv(f, testenv.SQLite(f), nil)
	e.register(f, e.srv, "ann", "111111")
	r, err := e.login(f, e.srv, "ann", "111111", ticketOpts)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(r.id)
	f.Add(strings.Repeat("A", 43))
	f.Add(strings.Repeat("A", 200))
	f.Fuzz(func(t *testing.T, id string) {
		tk, err := e.srv.OpenTicket(id)
		switch {
		case err == nil:
			if id != r.id {
				t.Fatalf("opened a ticket we did not make: %q", id)
			}
		case errors.Is(err, pin.ErrNotTicket):
			if len(id) != 43 {
				t.Fatalf("ErrNotTicket for %d characters", len(id))
			}
		case !errors.Is(err, pin.ErrNoSession):
			t.Fatalf("%q: %v", id, err)
		}
		_ = tk
	})
}
