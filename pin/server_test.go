package pin_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/store"
)

// TestPersistence: a second Server on the same store (a restart, or another
// instance) uses the key material the first created, which the store keeps
// only sealed.
func TestPersistence(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		ctx := context.Background()
		e.register(t, e.srv, "frank", "123456")
		if !strings.Contains(e.logs.String(), "created OPAQUE server key material") {
			t.Fatal("creation not logged")
		}
		if err := e.srv.Close(); err != nil {
			t.Fatal(err)
		}
		c := e.startClient(t, "123456")
		_, _, err := e.srv.LoginStart(ctx, "frank", hsm, c.ke1, unlimited)
		wantErr(t, "closed server", err, pin.ErrClosed)

		srv2 := e.newServer(t, nil)
		if _, err := e.login(t, srv2, "frank", "123456", unlimited); err != nil {
			t.Fatalf("login on the second server: %v", err)
		}

		sealed, err := e.st.GetServerSecret(ctx, pin.KeyMaterialName)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := e.sealer.Open(sealed, []byte(pin.KeyMaterialName))
		if err != nil {
			t.Fatalf("open key material: %v", err)
		}
		if len(plain) != 65 || plain[0] != 1 {
			t.Fatalf("key material encoding of %d bytes", len(plain))
		}
		for what, secret := range map[string][]byte{"encoding": plain, "private key": plain[1:33], "OPRF seed": plain[33:]} {
			if bytes.Contains(sealed, secret) {
				t.Fatalf("stored key material holds the %s in clear", what)
			}
		}
		if _, err := e.sealer.Open(sealed, []byte("other use")); err == nil {
			t.Fatal("sealed key material opens with another ad")
		}

		// Another sealing key cannot open it: New fails rather than make
		// new key material.
		other := newSealer(t)
		if _, err := pin.New(ctx, e.config(func(c *pin.Config) { c.Sealer = other })); err == nil {
			t.Fatal("New with a foreign sealer succeeded")
		}
	})
}

// TestNewRace: instances started together on an empty store agree on one
// key material.
func TestNewRace(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		e := &env{st: openStore(t, dsn), sealer: newSealer(t), clock: newClock(), logs: &syncBuffer{}}
		conf, err := pin.Profile{}.Configuration()
		if err != nil {
			t.Fatal(err)
		}
		e.conf = conf
		const n = 6
		servers := make([]*pin.Server, n)
		var wg sync.WaitGroup
		for i := range servers {
			wg.Go(func() {
				srv, err := pin.New(context.Background(), e.config(nil))
				if err != nil {
					t.Errorf("New: %v", err)
					return
				}
				servers[i] = srv
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		e.register(t, servers[0], "grace", "123456")
		for i, srv := range servers {
			if _, err := e.login(t, srv, "grace", "123456", unlimited); err != nil {
				t.Fatalf("server %d: %v", i, err)
			}
			srv.Close()
		}
		if n := strings.Count(e.logs.String(), "created OPAQUE server key material"); n != 1 {
			t.Fatalf("key material created %d times", n)
		}
	})
}

func TestNewConfig(t *testing.T) {
	st := openStore(t, "sqlite:"+t.TempDir()+"/wsca.db")
	sealer := newSealer(t)
	ctx := context.Background()
	cases := []struct {
		name string
		cfg  pin.Config
		want error
	}{
		{"no store", pin.Config{Sealer: sealer}, pin.ErrConfig},
		{"no sealer", pin.Config{Store: st}, pin.ErrConfig},
		{"negative max", pin.Config{Store: st, Sealer: sealer, Policy: pin.Policy{MaxAttempts: -1}}, pin.ErrPolicy},
		{"delay at lock", pin.Config{Store: st, Sealer: sealer, Policy: pin.Policy{Delays: []pin.Delay{{After: 5, Wait: time.Minute}}}}, pin.ErrPolicy},
		{"zero wait", pin.Config{Store: st, Sealer: sealer, Policy: pin.Policy{Delays: []pin.Delay{{After: 1}}}}, pin.ErrPolicy},
		{"unknown KSF", pin.Config{Store: st, Sealer: sealer, Profile: pin.Profile{KSF: 9}}, pin.ErrConfig},
		{"negative TTL", pin.Config{Store: st, Sealer: sealer, SessionTTL: -time.Second}, pin.ErrConfig},
	}
	for _, c := range cases {
		if _, err := pin.New(ctx, c.cfg); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// A broken random source fails New rather than yield weak keys.
	if _, err := pin.New(ctx, pin.Config{Store: st, Sealer: sealer, Rand: bytes.NewReader(make([]byte, 10))}); err == nil {
		t.Fatal("New with a short random source succeeded")
	}
	if _, err := st.GetServerSecret(ctx, pin.KeyMaterialName); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("key material stored after a failed New: %v", err)
	}
}

// TestProfile: the context string and KSF are profile settings; a client
// with another context cannot log in.
func TestProfile(t *testing.T) {
	profile := pin.Profile{Context: "wsca-test", KSF: pin.KSFPBKDF2}
	e := newEnv(t, "sqlite:"+t.TempDir()+"/wsca.db", func(c *pin.Config) { c.Profile = profile })
	conf, err := profile.Configuration()
	if err != nil {
		t.Fatal(err)
	}
	e.conf = conf
	e.register(t, e.srv, "ivy", "123456")
	if _, err := e.login(t, e.srv, "ivy", "123456", unlimited); err != nil {
		t.Fatalf("login with the profile: %v", err)
	}
	e.conf, err = pin.Profile{KSF: pin.KSFPBKDF2}.Configuration()
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.login(t, e.srv, "ivy", "123456", unlimited)
	wantErr(t, "client with another context", err, pin.ErrWrongPIN)

	for _, k := range []pin.KSF{pin.KSFIdentity, pin.KSFArgon2id, pin.KSFScrypt, pin.KSFPBKDF2} {
		got, err := pin.ParseKSF(k.String())
		if err != nil || got != k {
			t.Fatalf("ParseKSF(%q) = %v, %v", k, got, err)
		}
	}
	if _, err := pin.ParseKSF("Identity"); !errors.Is(err, pin.ErrConfig) {
		t.Fatalf("ParseKSF(Identity): %v", err)
	}
}

func TestConfigLogValue(t *testing.T) {
	var buf bytes.Buffer
	cfg := pin.Config{Sealer: newSealer(t), Policy: pin.Policy{Delays: []pin.Delay{{After: 3, Wait: time.Minute}}}, SessionTTL: time.Minute}
	slog.New(slog.NewTextHandler(&buf, nil)).Info("start", "pin", cfg)
	got := buf.String()
	for _, want := range []string{"pin.max_attempts=0", "pin.delays=3:1m0s", "pin.ksf=identity", "pin.session_ttl=1m0s"} {
		if !strings.Contains(got, want) {
			t.Fatalf("log %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "aead") || strings.Contains(got, "Sealer") {
		t.Fatalf("log shows the sealer: %s", got)
	}
}
