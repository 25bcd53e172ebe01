package pin_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/wsca/wsca/pin"
)

// FuzzParseDelays: any string parses to delays that print back to an
// equal list, or is refused with ErrPolicy.
func FuzzParseDelays(f *testing.F) {
	for _, s := range []string{"", "3:1m,4:5m", "1:1s", "0:1m", "3:-1m", "3:1m,3:2m", "10:1h30m", "1:1.5s", "3:1m,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ds, err := pin.ParseDelays(s)
		if err != nil {
			if !errors.Is(err, pin.ErrPolicy) {
				t.Fatalf("ParseDelays(%q): untyped error %v", s, err)
			}
			return
		}
		again, err := pin.ParseDelays(pin.FormatDelays(ds))
		if err != nil || !slices.Equal(again, ds) {
			t.Fatalf("ParseDelays(%q) = %v, printed %q, reparsed %v, %v", s, ds, pin.FormatDelays(ds), again, err)
		}
	})
}

// FuzzMessages: every entry point that decodes client input returns one of
// the typed errors on arbitrary bytes and ids, and never panics.
func FuzzMessages(f *testing.F) {
	e := newEnv(f, "sqlite:"+f.TempDir()+"/wsca.db", func(c *pin.Config) {
		c.Policy = pin.Policy{MaxAttempts: 1000}
	})
	ctx := context.Background()
	e.register(f, e.srv, "u", "123456")
	c := e.startClient(f, "123456")
	id, ke2, err := e.srv.LoginStart(ctx, "u", hsm, c.ke1, unlimited)
	if err != nil {
		f.Fatal(err)
	}
	ke3, _ := c.finish(f, ke2)
	rc, err := e.conf.Client()
	if err != nil {
		f.Fatal(err)
	}
	req, err := rc.RegistrationInit([]byte("123456"))
	if err != nil {
		f.Fatal(err)
	}
	record := e.registration(f, e.srv, "u", "other", "123456").Record

	f.Add([]byte(nil), "", "u")
	f.Add(req.Serialize(), id, "u")
	f.Add(c.ke1, id, "v")
	f.Add(ke3, id, "u")
	f.Add(record, "x", "a|b")
	f.Add(ke2, id[:42], "u\x00")
	f.Fuzz(func(t *testing.T, data []byte, sessionID, unit string) {
		typed := func(what string, err error, allowed ...error) {
			t.Helper()
			if err == nil {
				return
			}
			for _, target := range allowed {
				if errors.Is(err, target) {
					return
				}
			}
			t.Fatalf("%s: untyped error %v", what, err)
		}
		_, err := e.srv.RegistrationResponse(context.Background(), unit, hsm, "fuzz", data)
		typed("RegistrationResponse", err, pin.ErrMalformed)
		typed("CheckRecord", e.srv.CheckRecord(data), pin.ErrMalformed)
		_, _, err = e.srv.LoginStart(ctx, unit, hsm, data, unlimited)
		typed("LoginStart", err, pin.ErrMalformed, pin.ErrLocked, pin.ErrTooSoon)
		_, err = e.srv.LoginFinish(ctx, sessionID, "u", hsm, data)
		typed("LoginFinish", err, pin.ErrMalformed, pin.ErrNoSession, pin.ErrWrongPIN)
		_, err = e.srv.Session(ctx, sessionID, unit, hsm)
		typed("Session", err, pin.ErrNoSession)
		typed("Use", e.srv.Use(ctx, sessionID), pin.ErrNoSession)
		_, err = e.srv.Attempts(ctx, unit, hsm)
		typed("Attempts", err, pin.ErrMalformed)
	})
}
