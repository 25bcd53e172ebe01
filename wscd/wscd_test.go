package wscd_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/device/devicetest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

type fixture struct {
	svc *wscd.Services
	st  *store.Store
	dev device.Device
}

// forEach runs fn on every device × store combination.
func forEach(t *testing.T, fn func(t *testing.T, f fixture)) {
	for _, db := range testenv.StoreBackends() {
		for _, dv := range testdevice.Backends() {
			t.Run(dv.Name+"/"+db.Name, func(t *testing.T) {
				st, err := store.Open(context.Background(), db.DSN(t))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				dev := dv.Open(t)
				m, err := wscd.NewMetrics(prometheus.NewRegistry(), dev)
				if err != nil {
					t.Fatal(err)
				}
				svc, err := wscd.New(wscd.Config{Device: dev, Store: st, Metrics: m})
				if err != nil {
					t.Fatal(err)
				}
				fn(t, fixture{svc: svc, st: st, dev: dev})
			})
		}
	}
}

func newUnit(t *testing.T, f fixture, prefix string) string {
	t.Helper()
	u := string(devicetest.NewOwner(t, prefix))
	if err := f.svc.Units.Create(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func digest(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}

func TestLifecycle(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		u := newUnit(t, f, "u")
		k, err := f.svc.Keys.Generate(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := f.st.GetKey(ctx, string(k.KID))
		if err != nil || rec.UnitID != u || rec.Backend != f.dev.Info().Backend || rec.State != store.KeyActive {
			t.Fatalf("record %+v, %v", rec, err)
		}
		pub, _ := k.Public.Bytes()
		if string(rec.PublicKey) != string(pub) {
			t.Fatal("recorded public key differs")
		}
		sig, err := f.svc.Keys.Sign(ctx, u, string(k.KID), digest("m"))
		if err != nil || !device.VerifyRaw(k.Public, digest("m"), sig) {
			t.Fatalf("Sign: %v", err)
		}
		peer, _ := ecdh.P256().GenerateKey(rand.Reader)
		if _, err := f.svc.Keys.ECDH(ctx, u, string(k.KID), peer.PublicKey()); err != nil {
			t.Fatal(err)
		}
		keys, err := f.svc.Keys.List(ctx, u)
		if err != nil || len(keys) != 1 || keys[0].KID != string(k.KID) {
			t.Fatalf("List = %v, %v", keys, err)
		}
		if err := f.svc.Keys.Destroy(ctx, u, string(k.KID)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.st.GetKey(ctx, string(k.KID)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("record after Destroy: %v", err)
		}
		if _, err := f.dev.PublicKey(ctx, device.Ref{Owner: device.Owner(u), KID: k.KID}); !errors.Is(err, device.ErrKeyNotFound) {
			t.Fatalf("device key after Destroy: %v", err)
		}
		if _, err := f.svc.Keys.Sign(ctx, u, string(k.KID), digest("m")); !errors.Is(err, wscd.ErrKeyNotFound) {
			t.Fatalf("Sign after Destroy = %v", err)
		}
	})
}

// TestCrossUnit: unit B cannot sign, derive, read, list or destroy unit A's
// keys, gets the answer a missing kid gets, and makes no device call.
func TestCrossUnit(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		a, b := newUnit(t, f, "a"), newUnit(t, f, "b")
		ka, err := f.svc.Keys.Generate(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		kid := string(ka.KID)
		peer, _ := ecdh.P256().GenerateKey(rand.Reader)
		before := f.dev.Calls()
		attempts := map[string]error{}
		_, attempts["sign"] = f.svc.Keys.Sign(ctx, b, kid, digest("x"))
		_, attempts["ecdh"] = f.svc.Keys.ECDH(ctx, b, kid, peer.PublicKey())
		_, attempts["public"] = f.svc.Keys.PublicKey(ctx, b, kid)
		attempts["destroy"] = f.svc.Keys.Destroy(ctx, b, kid)
		for op, err := range attempts {
			if !errors.Is(err, wscd.ErrKeyNotFound) {
				t.Errorf("B %s on A's key: %v, want ErrKeyNotFound", op, err)
			}
		}
		if d := device.CallsDelta(before, f.dev.Calls()); len(d) != 0 {
			t.Errorf("refused cross-unit requests reached the device: %v", d)
		}
		if keys, err := f.svc.Keys.List(ctx, b); err != nil || len(keys) != 0 {
			t.Errorf("B lists %v, %v", keys, err)
		}
		// A's key is intact.
		if _, err := f.svc.Keys.Sign(ctx, a, kid, digest("x")); err != nil {
			t.Fatalf("A's key after B's attempts: %v", err)
		}
		if rec, err := f.st.GetKey(ctx, kid); err != nil || rec.State != store.KeyActive || rec.UnitID != a {
			t.Fatalf("A's record after B's attempts: %+v %v", rec, err)
		}
	})
}

// TestUnitState: a suspended unit cannot use or make keys; an unknown one
// neither; reactivated, it can again.
func TestUnitState(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		u := newUnit(t, f, "s")
		k, err := f.svc.Keys.Generate(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.st.SetUnitState(ctx, u, store.UnitSuspended, time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Keys.Sign(ctx, u, string(k.KID), digest("x")); !errors.Is(err, wscd.ErrUnitNotActive) {
			t.Fatalf("suspended unit signs: %v", err)
		}
		if _, err := f.svc.Keys.Generate(ctx, u); !errors.Is(err, wscd.ErrUnitNotActive) {
			t.Fatalf("suspended unit generates: %v", err)
		}
		if _, err := f.svc.Keys.Generate(ctx, "no-such-unit"); !errors.Is(err, wscd.ErrUnitNotActive) {
			t.Fatalf("unknown unit generates: %v", err)
		}
		if err := f.st.SetUnitState(ctx, u, store.UnitActive, time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Keys.Sign(ctx, u, string(k.KID), digest("x")); err != nil {
			t.Fatalf("reactivated unit: %v", err)
		}
	})
}

func TestBadInput(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		u := newUnit(t, f, "i")
		k, err := f.svc.Keys.Generate(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		kid := string(k.KID)
		before := f.dev.Calls()
		for name, err := range map[string]error{
			"short digest": func() error { _, err := f.svc.Keys.Sign(ctx, u, kid, make([]byte, 20)); return err }(),
			"bad kid":      func() error { _, err := f.svc.Keys.Sign(ctx, u, "../x", digest("x")); return err }(),
			"bad unit":     func() error { _, err := f.svc.Keys.Sign(ctx, "a b", kid, digest("x")); return err }(),
			"nil peer":     func() error { _, err := f.svc.Keys.ECDH(ctx, u, kid, nil); return err }(),
			"bad unit id":  f.svc.Units.Create(ctx, "with space"),
			"dup unit":     f.svc.Units.Create(ctx, u),
		} {
			if !errors.Is(err, wscd.ErrInvalidInput) {
				t.Errorf("%s: %v, want ErrInvalidInput", name, err)
			}
		}
		if d := device.CallsDelta(before, f.dev.Calls()); len(d) != 0 {
			t.Errorf("bad input reached the device: %v", d)
		}
	})
}

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, testenv.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dev := testdevice.Soft(t)
	reg := prometheus.NewRegistry()
	m, err := wscd.NewMetrics(reg, dev)
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := wscd.New(wscd.Config{Device: dev, Store: st, Metrics: m})
	f := fixture{svc: svc, st: st, dev: dev}
	u := newUnit(t, f, "m")
	k, err := svc.Keys.Generate(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	svc.Keys.Sign(ctx, u, string(k.KID), digest("x"))
	svc.Keys.Sign(ctx, u, string(k.KID), make([]byte, 3))
	if n, err := testutil.GatherAndCount(reg, "wsca_key_operations_total", "wsca_device_calls_total"); err != nil || n == 0 {
		t.Fatalf("metrics missing: %d %v", n, err)
	}
	if err := testutil.GatherAndCompare(reg, stringsReader(`
# HELP wsca_key_operations_total Key operations by operation and result (ok, client_error, unavailable).
# TYPE wsca_key_operations_total counter
wsca_key_operations_total{op="generate",result="ok"} 1
wsca_key_operations_total{op="sign",result="client_error"} 1
wsca_key_operations_total{op="sign",result="ok"} 1
`), "wsca_key_operations_total"); err != nil {
		t.Fatal(err)
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

// TestConstructors: each service refuses a config without what it uses,
// and New builds all three with Units over New's ServerKeys.
func TestConstructors(t *testing.T) {
	st, err := store.Open(context.Background(), testenv.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dev := testdevice.Soft(t)
	sk, err := wscd.NewServerKeys(wscd.ServerKeysConfig{Device: dev, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		build func() (any, error)
		ok    bool
	}{
		{"New", func() (any, error) { return wscd.New(wscd.Config{Device: dev, Store: st}) }, true},
		{"New without device", func() (any, error) { return wscd.New(wscd.Config{Store: st}) }, false},
		{"New without store", func() (any, error) { return wscd.New(wscd.Config{Device: dev}) }, false},
		{"Keys", func() (any, error) { return wscd.NewKeys(wscd.KeysConfig{Device: dev, Store: st, ServerKeys: sk}) }, true},
		// Without server keys no record could carry its MAC.
		{"Keys without server keys", func() (any, error) { return wscd.NewKeys(wscd.KeysConfig{Device: dev, Store: st}) }, false},
		{"Keys without device", func() (any, error) { return wscd.NewKeys(wscd.KeysConfig{Store: st}) }, false},
		{"Keys without store", func() (any, error) { return wscd.NewKeys(wscd.KeysConfig{Device: dev}) }, false},
		{"ServerKeys", func() (any, error) { return wscd.NewServerKeys(wscd.ServerKeysConfig{Device: dev, Store: st}) }, true},
		{"ServerKeys without device", func() (any, error) { return wscd.NewServerKeys(wscd.ServerKeysConfig{Store: st}) }, false},
		{"ServerKeys without store", func() (any, error) { return wscd.NewServerKeys(wscd.ServerKeysConfig{Device: dev}) }, false},
		{"Units", func() (any, error) { return wscd.NewUnits(wscd.UnitsConfig{Store: st, ServerKeys: sk}) }, true},
		{"Units without store", func() (any, error) { return wscd.NewUnits(wscd.UnitsConfig{ServerKeys: sk}) }, false},
		{"Units without server keys", func() (any, error) { return wscd.NewUnits(wscd.UnitsConfig{Store: st}) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.build()
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
		})
	}
	w, err := wscd.New(wscd.Config{Device: dev, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if w.Keys == nil || w.ServerKeys == nil || w.Units == nil {
		t.Fatalf("New left a service out: %+v", w)
	}
	// A unit Units makes is one Keys serves.
	if err := w.Units.Create(t.Context(), "split"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Keys.Generate(t.Context(), "split"); err != nil {
		t.Fatal(err)
	}
}
