package manager_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/kv"
	"github.com/wsca/wsca/manager/softkey"
)

var ctx = context.Background()

// fixture is a binding store and software keystores in one directory,
// reopened as a process restart would.
type fixture struct {
	t   *testing.T
	dir string
	// kv: the bindings and keystores live in one kv.Store (a kv.Dir, as
	// the browser keeps them in its storage) instead of directories.
	kv bool
}

func newFixture(t *testing.T) *fixture { return &fixture{t: t, dir: t.TempDir()} }

func newKVFixture(t *testing.T) *fixture { return &fixture{t: t, dir: t.TempDir(), kv: true} }

// backings are the binding stores the store suite runs on.
var backings = []struct {
	name       string
	newFixture func(*testing.T) *fixture
}{{"DirStore", newFixture}, {"KVStore", newKVFixture}}

// kvStore opens the fixture's kv.Store afresh, as another process would.
func (f *fixture) kvStore() *kv.Dir {
	d, err := kv.OpenDir(filepath.Join(f.dir, "kv"))
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *fixture) store() manager.BindingStore {
	if f.kv {
		return manager.NewKVStore(f.kvStore())
	}
	s, err := manager.OpenDirStore(filepath.Join(f.dir, "bindings"))
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// soft opens the software keystore id (its own directory, or its own
// prefix in the kv.Store).
func (f *fixture) soft(id string) *softkey.Plugin {
	var p *softkey.Plugin
	var err error
	if f.kv {
		p, err = softkey.OpenStore(f.kvStore(), "soft-"+id+"/", bytes.Repeat([]byte{7}, softkey.KEKSize))
	} else {
		p, err = softkey.Open(filepath.Join(f.dir, "soft-"+id), bytes.Repeat([]byte{7}, softkey.KEKSize))
	}
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { p.Close() })
	return p.WithID(id)
}

func (f *fixture) manager(cfg manager.Config, plugins ...manager.Plugin) *manager.Manager {
	f.t.Helper()
	if cfg.Store == nil {
		cfg.Store = f.store()
	}
	m, err := manager.New(ctx, cfg, plugins...)
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

func digest(s string) []byte { d := sha256.Sum256([]byte(s)); return d[:] }

func verify(t *testing.T, pub *ecdsa.PublicKey, d, sig []byte) {
	t.Helper()
	if !ecdsa.Verify(pub, d, new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("signature does not verify")
	}
}

// declared is a plugin whose host declared certified properties for it
// (as a host does for a WSCD with a certificate); it changes nothing else.
type declared struct {
	manager.Plugin
	props manager.Properties
}

func (d declared) NewKeyProperties() manager.Properties { return d.props }

// noImport hides the plugin's import and export, as a hardware WSCD has
// neither.
type noImport struct{ manager.Plugin }

// TestStoreSuite runs the manager's binding tests on every BindingStore:
// a directory and a kv.Store.
func TestStoreSuite(t *testing.T) {
	tests := []struct {
		name string
		fn   func(*testing.T, func(*testing.T) *fixture)
	}{
		{"BindingsSurviveRestart", testBindingsSurviveRestart},
		{"ConcurrentWriters", testConcurrentWriters},
		{"CrashRecovery", testCrashRecovery},
		{"RecoverLeavesYoungRecordsAlone", testRecoverLeavesYoungRecordsAlone},
		{"Migrate", testMigrate},
		{"DeleteAndBusy", testDeleteAndBusy},
		{"StaleCacheAcrossProcesses", testStaleCacheAcrossProcesses},
		{"MigrateUndoneByAnotherRecovery", testMigrateUndoneByAnotherRecovery},
		{"RequirementSelection", testRequirementSelection},
		{"ProgressReported", testProgressReported},
	}
	for _, b := range backings {
		t.Run(b.name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, b.newFixture) })
			}
		})
	}
}

func TestThumbprintMatchesGoJose(t *testing.T) {
	for range 20 {
		k, _ := ecdsa.GenerateKey(ecdsaCurve(), rand.Reader)
		got, err := manager.Thumbprint(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		tp, err := (&jose.JSONWebKey{Key: &k.PublicKey}).Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if want := manager.KID(b64(tp)); got != want || !got.Valid() {
			t.Fatalf("thumbprint %s, go-jose %s", got, want)
		}
	}
}

func TestResolutionOrder(t *testing.T) {
	f := newFixture(t)
	a, b := f.soft("a"), f.soft("b")
	m := f.manager(manager.Config{Default: "a", OperationDefaults: map[manager.Op]string{manager.OpGenerate: "b"}}, a, b)

	k, res, err := m.Generate(ctx, manager.GenerateRequest{})
	if err != nil || k.Plugin != "b" || res.Plugin != "b" {
		t.Fatalf("generate went to %q (%v), want the operation default b", k.Plugin, err)
	}
	k2, _, err := m.Generate(ctx, manager.GenerateRequest{Plugin: "a"})
	if err != nil || k2.Plugin != "a" {
		t.Fatalf("generate with a named plugin went to %q (%v)", k2.Plugin, err)
	}
	// The binding wins over the defaults.
	sig, res, err := m.Sign(ctx, k.KID, digest("m"))
	if err != nil || res.Plugin != "b" {
		t.Fatalf("sign served by %q (%v), want the bound plugin b", res.Plugin, err)
	}
	verify(t, k.Public, digest("m"), sig)
	if len(res.AMR) != 1 || res.AMR[0] != "swk" {
		t.Fatalf("amr %v, want [swk]", res.AMR)
	}

	// A key made outside the manager has no binding: the operation
	// default, then the global default, name where to look.
	outside, _, err := a.Generate(ctx, "", manager.Env{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := manager.Thumbprint(outside.Public)
	if _, res, err := m.Sign(ctx, kid, digest("m")); err != nil || res.Plugin != "a" {
		t.Fatalf("unbound key through the global default: %q, %v", res.Plugin, err)
	}
	m2 := f.manager(manager.Config{Default: "a", OperationDefaults: map[manager.Op]string{manager.OpSign: "b"}}, a, b)
	if _, _, err := m2.Sign(ctx, kid, digest("m")); !errors.Is(err, manager.ErrKeyNotFound) {
		t.Fatalf("the operation default names b, which lacks the key: %v, want ErrKeyNotFound (no fall-through)", err)
	}
	m3 := f.manager(manager.Config{Default: "gone"}, a, b)
	if _, _, err := m3.Sign(ctx, kid, digest("m")); !errors.Is(err, manager.ErrNoPlugin) {
		t.Fatalf("a default naming no plugin: %v, want ErrNoPlugin", err)
	}
	if _, _, err := m3.Generate(ctx, manager.GenerateRequest{Plugin: "gone"}); !errors.Is(err, manager.ErrNoPlugin) {
		t.Fatalf("generate on a missing plugin: %v, want ErrNoPlugin", err)
	}
	m4 := f.manager(manager.Config{}, a, b)
	if _, _, err := m4.Generate(ctx, manager.GenerateRequest{}); !errors.Is(err, manager.ErrNoDefault) {
		t.Fatalf("generate with no default: %v, want ErrNoDefault", err)
	}
	for _, bad := range []manager.KID{"", "x", manager.KID(bytes.Repeat([]byte{'A'}, 44))} {
		if _, _, err := m.Sign(ctx, bad, digest("m")); !errors.Is(err, manager.ErrInvalidInput) {
			t.Errorf("kid %q: %v, want ErrInvalidInput", bad, err)
		}
	}
}

func testRequirementSelection(t *testing.T, newFixture func(*testing.T) *fixture) {
	f := newFixture(t)
	high := manager.Properties{Storage: manager.StorageRemoteHSM, KeyStorageAttackPotential: "iso_18045_high", UserAuthAttackPotential: "iso_18045_high"}
	moderate := manager.Properties{Storage: manager.StorageHardware, KeyStorageAttackPotential: "iso_18045_moderate", UserAuthAttackPotential: "iso_18045_moderate"}
	soft := f.soft("softkey")
	hsm := declared{f.soft("hsm"), high}
	se := declared{f.soft("se"), moderate}
	m := f.manager(manager.Config{Default: "softkey"}, soft, se, hsm)

	req := manager.GenerateRequest{Requirement: manager.Requirement{KeyStorage: []string{"iso_18045_high"}}, Issuer: "https://issuer.example", CredentialType: "eu.europa.ec.eudi.pid.1"}
	k, _, err := m.Generate(ctx, req)
	if err != nil || k.Plugin != "hsm" {
		t.Fatalf("high requirement went to %q (%v)", k.Plugin, err)
	}
	either := manager.GenerateRequest{Requirement: manager.Requirement{KeyStorage: []string{"iso_18045_high", "iso_18045_moderate"}}, Issuer: "https://other.example", CredentialType: "x"}
	k, _, err = m.Generate(ctx, either)
	if err != nil || k.Plugin != "se" {
		t.Fatalf("first eligible in registration order is se, got %q (%v)", k.Plugin, err)
	}
	// Remembered: after a restart with another registration order, the
	// same issuer and type still go to se.
	m = f.manager(manager.Config{Default: "softkey"}, hsm, soft, se)
	k, _, err = m.Generate(ctx, either)
	if err != nil || k.Plugin != "se" {
		t.Fatalf("remembered choice lost: %q (%v)", k.Plugin, err)
	}
	none := manager.GenerateRequest{Requirement: manager.Requirement{UserAuthentication: []string{"iso_18045_enhanced-basic"}}, Issuer: "i", CredentialType: "t"}
	if _, _, err := m.Generate(ctx, none); !errors.Is(err, manager.ErrNoEligiblePlugin) {
		t.Fatalf("no plugin qualifies: %v, want ErrNoEligiblePlugin", err)
	}
	named := manager.GenerateRequest{Plugin: "softkey", Requirement: req.Requirement}
	if _, _, err := m.Generate(ctx, named); !errors.Is(err, manager.ErrNoEligiblePlugin) {
		t.Fatalf("softkey named for a high requirement: %v, want ErrNoEligiblePlugin", err)
	}
	// The wallet's own storage policy: no software keys.
	hw := manager.GenerateRequest{Requirement: manager.Requirement{Storage: []manager.KeyStorage{manager.StorageHardware, manager.StorageRemoteHSM}}}
	if k, _, err := m.Generate(ctx, hw); err != nil || k.Plugin == "softkey" {
		t.Fatalf("storage policy: %q, %v", k.Plugin, err)
	}
	if _, _, err := m.Generate(ctx, manager.GenerateRequest{Plugin: "softkey", Requirement: hw.Requirement}); !errors.Is(err, manager.ErrNoEligiblePlugin) {
		t.Fatalf("softkey under a no-software policy: %v", err)
	}
	// The remembered plugin no longer qualifies (its declaration changed):
	// refused, never silently moved elsewhere.
	m = f.manager(manager.Config{}, soft, hsm, declared{f.soft("se"), manager.Properties{Storage: manager.StorageHardware}})
	if _, _, err := m.Generate(ctx, either); !errors.Is(err, manager.ErrNoEligiblePlugin) {
		t.Fatalf("remembered plugin no longer eligible: %v, want ErrNoEligiblePlugin", err)
	}
}

func testBindingsSurviveRestart(t *testing.T, newFixture func(*testing.T) *fixture) {
	f := newFixture(t)
	m := f.manager(manager.Config{Default: "a"}, f.soft("a"), f.soft("b"))
	k, _, err := m.Generate(ctx, manager.GenerateRequest{Plugin: "b"})
	if err != nil {
		t.Fatal(err)
	}
	// Restart with no defaults at all: only the binding can route it.
	m = f.manager(manager.Config{}, f.soft("a"), f.soft("b"))
	sig, res, err := m.Sign(ctx, k.KID, digest("after restart"))
	if err != nil || res.Plugin != "b" {
		t.Fatalf("after restart: %q, %v", res.Plugin, err)
	}
	verify(t, k.Public, digest("after restart"), sig)
}

// Two managers (two processes) on one store, eight writers each: every key
// made is bound, none is lost.
func testConcurrentWriters(t *testing.T, newFixture func(*testing.T) *fixture) {
	f := newFixture(t)
	ms := []*manager.Manager{
		f.manager(manager.Config{Default: "a"}, f.soft("a")),
		f.manager(manager.Config{Default: "a"}, f.soft("a")),
	}
	var mu sync.Mutex
	var made []manager.Key
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				k, _, err := ms[i%2].Generate(ctx, manager.GenerateRequest{})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				made = append(made, k)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	bs, err := f.store().Bindings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != len(made) || len(made) != 80 {
		t.Fatalf("%d bindings for %d keys", len(bs), len(made))
	}
	intents, _ := f.store().Intents(ctx)
	if len(intents) != 0 {
		t.Fatalf("%d intents left", len(intents))
	}
	m := f.manager(manager.Config{}, f.soft("a"))
	for _, k := range made {
		if _, _, err := m.Sign(ctx, k.KID, digest("x")); err != nil {
			t.Fatal(err)
		}
	}
}

// Each row stops a generation, deletion or migration at one point, as a
// crash would, and checks what Recover (run by New) makes of it.
func testCrashRecovery(t *testing.T, newFixture func(*testing.T) *fixture) {
	type state struct {
		f       *fixture
		a, b    *softkey.Plugin
		st      manager.BindingStore
		kid     manager.KID
		aHandle string
		pub     *ecdsa.PublicKey
	}
	// bound makes a key on a and binds it through a manager.
	bound := func(t *testing.T) *state {
		f := newFixture(t)
		s := &state{f: f, a: f.soft("a"), b: f.soft("b"), st: f.store()}
		m := f.manager(manager.Config{}, s.a, s.b)
		k, _, err := m.Generate(ctx, manager.GenerateRequest{Plugin: "a"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := s.st.Binding(ctx, k.KID)
		s.kid, s.aHandle, s.pub = k.KID, b.Handle, k.Public
		return s
	}
	now := time.Now().UTC()
	// importToB copies the key into b under label, as an interrupted
	// migration would have.
	importToB := func(t *testing.T, s *state, label string) {
		ek, err := s.a.Export(ctx, s.aHandle, manager.Env{})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.b.Import(ctx, ek, label, manager.Env{}); err != nil {
			t.Fatal(err)
		}
	}
	claimMigrate := func(t *testing.T, s *state, label string) {
		if err := s.st.Claim(ctx, manager.Claim{KID: s.kid, Kind: manager.ClaimMigrate, Created: now, Label: label, SourcePlugin: "a", SourceHandle: s.aHandle}); err != nil {
			t.Fatal(err)
		}
	}
	type want struct {
		plugin      string // where the binding points; "" for no binding
		onA, onB    bool   // which plugins hold the key
		freshKeyOnA bool   // for the generate rows: a holds an extra bound key
	}
	rows := []struct {
		name  string
		setup func(t *testing.T, s *state)
		want  want
	}{
		{"generate: key made, binding not written", func(t *testing.T, s *state) {
			if err := s.st.PutIntent(ctx, manager.Intent{Label: "L1", Plugin: "a", Created: now}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.a.Generate(ctx, "L1", manager.Env{}); err != nil {
				t.Fatal(err)
			}
		}, want{plugin: "a", onA: true, freshKeyOnA: true}},
		{"generate: intent written, no key made", func(t *testing.T, s *state) {
			if err := s.st.PutIntent(ctx, manager.Intent{Label: "L2", Plugin: "a", Created: now}); err != nil {
				t.Fatal(err)
			}
		}, want{plugin: "a", onA: true}},
		{"delete: claimed, key still there", func(t *testing.T, s *state) {
			if err := s.st.Claim(ctx, manager.Claim{KID: s.kid, Kind: manager.ClaimDelete, Created: now}); err != nil {
				t.Fatal(err)
			}
		}, want{}},
		{"delete: key deleted, binding left", func(t *testing.T, s *state) {
			if err := s.st.Claim(ctx, manager.Claim{KID: s.kid, Kind: manager.ClaimDelete, Created: now}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.a.Delete(ctx, s.aHandle, manager.Env{}); err != nil {
				t.Fatal(err)
			}
		}, want{}},
		{"migrate: claimed, nothing imported", func(t *testing.T, s *state) {
			claimMigrate(t, s, "M1")
			if err := s.st.PutIntent(ctx, manager.Intent{Label: "M1", Plugin: "b", Created: now, Migrate: s.kid}); err != nil {
				t.Fatal(err)
			}
		}, want{plugin: "a", onA: true}},
		{"migrate: imported, binding not moved", func(t *testing.T, s *state) {
			claimMigrate(t, s, "M2")
			if err := s.st.PutIntent(ctx, manager.Intent{Label: "M2", Plugin: "b", Created: now, Migrate: s.kid}); err != nil {
				t.Fatal(err)
			}
			importToB(t, s, "M2")
		}, want{plugin: "b", onB: true}},
		{"migrate: binding moved, source not deleted", func(t *testing.T, s *state) {
			claimMigrate(t, s, "M3")
			importToB(t, s, "M3")
			pk, _, _ := s.b.Lookup(ctx, "M3", manager.Env{})
			if err := s.st.Rebind(ctx, manager.Binding{KID: s.kid, Plugin: "b", Handle: pk.Handle, Label: "M3", Created: now}); err != nil {
				t.Fatal(err)
			}
		}, want{plugin: "b", onB: true}},
		{"migrate: undone, claim not released", func(t *testing.T, s *state) {
			// The migration gave up (intent dropped) with the binding on
			// the source: recovery must not delete the source copy.
			claimMigrate(t, s, "M4")
		}, want{plugin: "a", onA: true}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			s := bound(t)
			row.setup(t, s)
			f := s.f
			f.manager(manager.Config{}, f.soft("a"), f.soft("b")) // restart: Recover
			b, err := s.st.Binding(ctx, s.kid)
			switch {
			case row.want.plugin == "" && !errors.Is(err, manager.ErrNotFound):
				t.Fatalf("binding %+v (%v), want none", b, err)
			case row.want.plugin != "" && (err != nil || b.Plugin != row.want.plugin):
				t.Fatalf("binding %+v (%v), want plugin %s", b, err, row.want.plugin)
			}
			has := func(p *softkey.Plugin) bool {
				keys, err := p.List(ctx, manager.Env{})
				if err != nil {
					t.Fatal(err)
				}
				for _, k := range keys {
					if k.Public.Equal(s.pub) {
						return true
					}
				}
				return false
			}
			if has(s.a) != row.want.onA || has(s.b) != row.want.onB {
				t.Fatalf("key on a: %v, on b: %v; want %v, %v", has(s.a), has(s.b), row.want.onA, row.want.onB)
			}
			intents, _ := s.st.Intents(ctx)
			claims, _ := s.st.Claims(ctx)
			if len(intents) != 0 || len(claims) != 0 {
				t.Fatalf("left %d intents, %d claims", len(intents), len(claims))
			}
			// Every key on a plugin has a binding and every binding a key.
			bs, _ := s.st.Bindings(ctx)
			n := 0
			for _, p := range []*softkey.Plugin{s.a, s.b} {
				keys, _ := p.List(ctx, manager.Env{})
				n += len(keys)
			}
			if n != len(bs) {
				t.Fatalf("%d keys on the plugins, %d bindings", n, len(bs))
			}
			if row.want.freshKeyOnA && len(bs) != 2 {
				t.Fatalf("%d bindings, want the old key and the recovered one", len(bs))
			}
			if row.want.plugin != "" {
				m := f.manager(manager.Config{}, f.soft("a"), f.soft("b"))
				sig, _, err := m.Sign(ctx, s.kid, digest("z"))
				if err != nil {
					t.Fatal(err)
				}
				verify(t, s.pub, digest("z"), sig)
			}
		})
	}
}

func testRecoverLeavesYoungRecordsAlone(t *testing.T, newFixture func(*testing.T) *fixture) {
	f := newFixture(t)
	st := f.store()
	if err := st.PutIntent(ctx, manager.Intent{Label: "young", Plugin: "a", Created: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	f.manager(manager.Config{Store: st, RecoverAfter: time.Hour}, f.soft("a"))
	if in, _ := st.Intents(ctx); len(in) != 1 {
		t.Fatalf("a young intent (another process's, maybe) was settled: %d left", len(in))
	}
}

func testMigrate(t *testing.T, newFixture func(*testing.T) *fixture) {
	f := newFixture(t)
	a, b := f.soft("a"), f.soft("b")
	hw := noImport{f.soft("hw")}
	m := f.manager(manager.Config{}, a, b, hw)
	k, _, err := m.Generate(ctx, manager.GenerateRequest{Plugin: "a"})
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := m.Migrate(ctx, k.KID, "hw")
	if err != nil || !res.ReEnrollmentRequired || res.Migrated || res.OldKID != k.KID {
		t.Fatalf("migrate to a plugin without import: %+v, %v", res, err)
	}
	if _, r, err := m.Sign(ctx, k.KID, digest("m")); err != nil || r.Plugin != "a" {
		t.Fatalf("after ReEnrollmentRequired the key must stay on a: %q, %v", r.Plugin, err)
	}
	res, r, err := m.Migrate(ctx, k.KID, "b")
	if err != nil || !res.Migrated || res.NewKey.KID != k.KID || r.Plugin != "b" {
		t.Fatalf("migrate a -> b: %+v, %v", res, err)
	}
	sig, r, err := m.Sign(ctx, k.KID, digest("m"))
	if err != nil || r.Plugin != "b" {
		t.Fatalf("after migration: %q, %v", r.Plugin, err)
	}
	verify(t, k.Public, digest("m"), sig)
	if keys, _ := a.List(ctx, manager.Env{}); len(keys) != 0 {
		t.Fatalf("a still holds %d keys", len(keys))
	}
	// Out of a plugin that cannot export: re-enrolment.
	hk, _, err := m.Generate(ctx, manager.GenerateRequest{Plugin: "hw"})
	if err != nil {
		t.Fatal(err)
	}
	if res, _, err := m.Migrate(ctx, hk.KID, "a"); err != nil || !res.ReEnrollmentRequired {
		t.Fatalf("migrate out of hw: %+v, %v", res, err)
	}
	if _, _, err := m.Migrate(ctx, k.KID, "b"); !errors.Is(err, manager.ErrInvalidInput) {
		t.Fatalf("migrate to where it is: %v", err)
	}
}

func testDeleteAndBusy(t *testing.T, newFixture func(*testing.T) *fixture) {
	f := newFixture(t)
	st := f.store()
	m := f.manager(manager.Config{Store: st}, f.soft("a"))
	k, _, err := m.Generate(ctx, manager.GenerateRequest{Plugin: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Claim(ctx, manager.Claim{KID: k.KID, Kind: manager.ClaimMigrate, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Delete(ctx, k.KID); !errors.Is(err, manager.ErrBusy) {
		t.Fatalf("delete during a migration: %v, want ErrBusy", err)
	}
	if err := st.Release(ctx, k.KID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Delete(ctx, k.KID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Sign(ctx, k.KID, digest("m")); !errors.Is(err, manager.ErrKeyNotFound) && !errors.Is(err, manager.ErrNoDefault) {
		t.Fatalf("sign after delete: %v", err)
	}
}

// The same key turning up in a second plugin cannot take over the kid.
func TestKIDCollision(t *testing.T) {
	f := newFixture(t)
	a, b := f.soft("a"), f.soft("b")
	st := f.store()
	m := f.manager(manager.Config{Store: st}, a, b)
	k, _, err := m.Generate(ctx, manager.GenerateRequest{Plugin: "a"})
	if err != nil {
		t.Fatal(err)
	}
	bd, _ := st.Binding(ctx, k.KID)
	ek, err := a.Export(ctx, bd.Handle, manager.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutIntent(ctx, manager.Intent{Label: "dup", Plugin: "b", Created: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Import(ctx, ek, "dup", manager.Env{}); err != nil {
		t.Fatal(err)
	}
	f.manager(manager.Config{Store: st}, a, b) // Recover binds "dup": a collision
	got, err := st.Binding(ctx, k.KID)
	if err != nil || got.Plugin != "a" || got.Handle != bd.Handle {
		t.Fatalf("binding after a collision: %+v, %v", got, err)
	}
	if keys, _ := b.List(ctx, manager.Env{}); len(keys) != 0 {
		t.Fatal("the colliding copy was kept")
	}
}

func TestListReportsPartialFailure(t *testing.T) {
	f := newFixture(t)
	a := f.soft("a")
	// c reads a's directory under another KEK: every file fails.
	c, err := softkey.Open(filepath.Join(f.dir, "soft-a"), bytes.Repeat([]byte{9}, softkey.KEKSize))
	if err != nil {
		t.Fatal(err)
	}
	m := f.manager(manager.Config{}, a, c.WithID("c"))
	if _, _, err := m.Generate(ctx, manager.GenerateRequest{Plugin: "a"}); err != nil {
		t.Fatal(err)
	}
	keys, err := m.List(ctx)
	var le *manager.ListError
	if !errors.As(err, &le) || len(le.Failed) != 1 || le.Failed["c"] == nil {
		t.Fatalf("List error %v, want a ListError naming c", err)
	}
	if len(keys) != 1 || keys[0].Plugin != "a" {
		t.Fatalf("List returned %+v, want a's key despite c", keys)
	}
}

func TestInputRefusals(t *testing.T) {
	f := newFixture(t)
	m := f.manager(manager.Config{Default: "a"}, f.soft("a"))
	k, _, err := m.Generate(ctx, manager.GenerateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Sign(ctx, k.KID, make([]byte, 31)); !errors.Is(err, manager.ErrInvalidInput) {
		t.Fatalf("short digest: %v", err)
	}
	x25519, _ := ecdh.X25519().GenerateKey(rand.Reader)
	if _, _, err := m.ECDH(ctx, k.KID, x25519.PublicKey()); !errors.Is(err, manager.ErrInvalidInput) {
		t.Fatalf("X25519 peer: %v", err)
	}
	if _, _, err := m.Attestation(ctx, []manager.KID{k.KID}, "n"); !errors.Is(err, manager.ErrUnsupported) {
		t.Fatalf("attestation from softkey: %v, want ErrUnsupported", err)
	}
	if _, err := manager.New(ctx, manager.Config{}); !errors.Is(err, manager.ErrInvalidInput) {
		t.Fatalf("no store: %v", err)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := manager.NewSecret([]byte("123456"))
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x", s, s, s, s, s, s)} {
		if bytes.Contains([]byte(out), []byte("123456")) || bytes.Contains([]byte(out), []byte("313233")) {
			t.Fatalf("secret printed: %s", out)
		}
	}
	b := s.Bytes()
	s.Wipe()
	if !bytes.Equal(b, make([]byte, 6)) || s.Bytes() != nil {
		t.Fatal("Wipe did not zero the secret")
	}
}

func TestDirStoreRefusesCorruptAndEscapes(t *testing.T) {
	dir := t.TempDir()
	st, err := manager.OpenDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	// An issuer that looks like a path stays inside choices/.
	c, err := st.Choose(ctx, manager.Choice{Issuer: "../../../../etc/passwd", CredentialType: "../x", Plugin: "a"})
	if err != nil || c.Plugin != "a" {
		t.Fatal(c, err)
	}
	var escaped bool
	_ = filepath.WalkDir(filepath.Dir(dir), func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && filepath.Dir(filepath.Dir(p)) != dir {
			escaped = true
		}
		return nil
	})
	if escaped {
		t.Fatal("a record was written outside the store")
	}
	// A record with an unknown member, or naming another kid, is corrupt.
	kid := manager.KID(b64(make([]byte, 32)))
	other := manager.KID(b64(bytes.Repeat([]byte{1}, 32)))
	if err := os.WriteFile(filepath.Join(dir, "keys", string(kid)+".json"), []byte(`{"kid":"`+string(other)+`","plugin":"a","handle":"h","created":"2026-01-01T00:00:00Z"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Binding(ctx, kid); !errors.Is(err, manager.ErrCorruptBinding) {
		t.Fatalf("binding naming another kid: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keys", string(kid)+".json"), []byte(`{"kid":"`+string(kid)+`","plugin":"a","handle":"h","evil":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Binding(ctx, kid); !errors.Is(err, manager.ErrCorruptBinding) {
		t.Fatalf("binding with an unknown member: %v", err)
	}
	if err := st.Bind(ctx, manager.Binding{KID: kid, Plugin: "b", Handle: "h2"}); !errors.Is(err, manager.ErrExists) {
		t.Fatalf("Bind over an existing record: %v, want ErrExists", err)
	}
}

func FuzzDirStoreRecord(f *testing.F) {
	f.Add([]byte(`{"kid":"x","plugin":"a","handle":"h"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		st, err := manager.OpenDirStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		kid := manager.KID(b64(make([]byte, 32)))
		if err := os.WriteFile(filepath.Join(dir, "keys", string(kid)+".json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := st.Binding(ctx, kid); err == nil && got.KID != kid {
			t.Fatalf("accepted a binding for %s", got.KID)
		}
		_, _ = st.Bindings(ctx)
	})
}

// A manager's cached binding goes stale when another process moves or
// deletes the key: the next use reads the store again.
func testStaleCacheAcrossProcesses(t *testing.T, newFixture func(*testing.T) *fixture) {
	f := newFixture(t)
	one := f.manager(manager.Config{}, f.soft("a"), f.soft("b"))
	two := f.manager(manager.Config{}, f.soft("a"), f.soft("b"))
	k, _, err := one.Generate(ctx, manager.GenerateRequest{Plugin: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := one.Sign(ctx, k.KID, digest("cached")); err != nil {
		t.Fatal(err)
	}
	if res, _, err := two.Migrate(ctx, k.KID, "b"); err != nil || !res.Migrated {
		t.Fatalf("migrate: %+v, %v", res, err)
	}
	sig, res, err := one.Sign(ctx, k.KID, digest("after move"))
	if err != nil || res.Plugin != "b" {
		t.Fatalf("sign after another process moved the key: %q, %v", res.Plugin, err)
	}
	verify(t, k.Public, digest("after move"), sig)
	if _, err := two.Delete(ctx, k.KID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := one.Sign(ctx, k.KID, digest("after delete")); !errors.Is(err, manager.ErrKeyNotFound) {
		t.Fatalf("sign after another process deleted the key: %v, want ErrKeyNotFound", err)
	}
}

type progressLog struct {
	mu  sync.Mutex
	got []manager.Progress
}

func (p *progressLog) OnProgress(pr manager.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, pr)
}

// A generation reports its start and end to the host, naming the plugin.
func testProgressReported(t *testing.T, newFixture func(*testing.T) *fixture) {
	f := newFixture(t)
	pl := &progressLog{}
	m := f.manager(manager.Config{Default: "a", Progress: pl}, f.soft("a"))
	if _, _, err := m.Generate(ctx, manager.GenerateRequest{}); err != nil {
		t.Fatal(err)
	}
	if len(pl.got) != 2 || pl.got[0].Stage != manager.StageStarted || pl.got[1].Stage != manager.StageComplete ||
		pl.got[0].Plugin != "a" || pl.got[0].Op != manager.OpGenerate {
		t.Fatalf("progress %+v", pl.got)
	}
}

// A migration that another process's recovery undid while it ran (a
// RecoverAfter too short for processes sharing the store) reports it and
// leaves the key where it was, with no copy on the target.
func testMigrateUndoneByAnotherRecovery(t *testing.T, newFixture func(*testing.T) *fixture) {
	f := newFixture(t)
	st := f.store()
	a, b := f.soft("a"), f.soft("b")
	m := f.manager(manager.Config{Store: st}, a, b)
	k, _, err := m.Generate(ctx, manager.GenerateRequest{Plugin: "a"})
	if err != nil {
		t.Fatal(err)
	}
	// The other process: its Recover runs as this migration's import is
	// under way, finds the intent with no key on the target yet, and
	// undoes it.
	other := f.manager(manager.Config{Store: st}, a, b)
	hook := &importHook{Plugin: b, before: func() {
		if err := other.Recover(ctx); err != nil {
			t.Error(err)
		}
	}}
	m2 := f.manager(manager.Config{Store: st}, a, hook)
	if _, _, err := m2.Migrate(ctx, k.KID, "b"); !errors.Is(err, manager.ErrBusy) {
		t.Fatalf("migrate undone meanwhile: %v, want ErrBusy", err)
	}
	if bd, err := st.Binding(ctx, k.KID); err != nil || bd.Plugin != "a" {
		t.Fatalf("binding %+v, %v", bd, err)
	}
	if keys, _ := b.List(ctx, manager.Env{}); len(keys) != 0 {
		t.Fatalf("b keeps %d orphaned copies", len(keys))
	}
	if _, _, err := m2.Sign(ctx, k.KID, digest("still")); err != nil {
		t.Fatal(err)
	}
}

// importHook is plugin b with a hook run just before it imports a key.
type importHook struct {
	*softkey.Plugin
	before func()
}

func (h *importHook) Import(ctx context.Context, k *manager.ExportedKey, label string, env manager.Env) (manager.PluginKey, []string, error) {
	h.before()
	return h.Plugin.Import(ctx, k, label, env)
}
