package store_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
)

// TestSECDSAState runs the SECDSA tables through one suite on every
// backend.
func TestSECDSAState(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, dsn string)
	}{
		{"Activation", testSECDSAActivation},
		{"Counters", testSECDSACounters},
		{"AdmitConcurrent", testSECDSAAdmitConcurrent},
		{"Erase", testSECDSAErase},
		{"Reset", testSECDSAReset},
	}
	for _, b := range testenv.StoreBackends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, b.DSN(t)) })
			}
		})
	}
}

func secdsaUnit(t *testing.T, s *store.Store, id string) {
	t.Helper()
	if err := s.CreateUnit(t.Context(), store.Unit{ID: id, State: store.UnitActive, CreatedAt: at(0)}); err != nil {
		t.Fatal(err)
	}
}

func bind(t *testing.T, s *store.Store, unit, kid string) {
	t.Helper()
	if _, _, err := s.PutSECDSA(t.Context(), store.SECDSAUnit{UnitID: unit, KID: kid, Cert: []byte("ic-" + kid), MAC: []byte("m"), UpdatedAt: at(0)}); err != nil {
		t.Fatal(err)
	}
}

// testSECDSAActivation: a nonce is spent once, only before it expires and
// only the one issued; a new nonce replaces an activation in progress and
// hands back its aU; the pending aU is taken once; a binding replaces the
// previous one, handing it back, and keeps last_sn.
func testSECDSAActivation(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	secdsaUnit(t, s, "u")
	if _, err := s.PutSECDSANonce(ctx, "nobody", []byte("n1"), at(time.Minute)); !errors.Is(err, store.ErrUnitNotFound) {
		t.Fatalf("nonce for no unit = %v", err)
	}
	if _, err := s.PutSECDSANonce(ctx, "u", []byte("n1"), at(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		nonce string
		now   time.Duration
	}{{"n2", 0}, {"", 0}, {"n1", time.Minute}, {"n1", 2 * time.Minute}} {
		if err := s.TakeSECDSANonce(ctx, "u", []byte(tc.nonce), at(tc.now)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("take %q at %v = %v, want ErrNotFound", tc.nonce, tc.now, err)
		}
	}
	if err := s.TakeSECDSANonce(ctx, "u", []byte("n1"), at(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.TakeSECDSANonce(ctx, "u", []byte("n1"), at(0)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("nonce taken twice: %v", err)
	}
	if _, err := s.TakeSECDSAPending(ctx, "u"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("pending before an aU = %v", err)
	}
	if err := s.SetSECDSAPending(ctx, store.SECDSAPending{UnitID: "u", KID: "k1", Wrapped: []byte("b"), MAC: []byte("m")}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSECDSAPending(ctx, store.SECDSAPending{UnitID: "u", KID: "k9"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second aU for one nonce = %v", err)
	}
	// A new nonce replaces it and hands the aU back.
	prev, err := s.PutSECDSANonce(ctx, "u", []byte("n3"), at(time.Minute))
	if err != nil || prev.KID != "k1" || string(prev.Wrapped) != "b" {
		t.Fatalf("replaced activation = %+v, %v", prev, err)
	}
	// An aU made for a spent nonce of a replaced activation is refused.
	if err := s.SetSECDSAPending(ctx, store.SECDSAPending{UnitID: "u", KID: "k1"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("aU for an unspent nonce = %v", err)
	}
	if err := s.TakeSECDSANonce(ctx, "u", []byte("n3"), at(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSECDSAPending(ctx, store.SECDSAPending{UnitID: "u", KID: "k2", MAC: []byte("m2")}); err != nil {
		t.Fatal(err)
	}
	p, err := s.TakeSECDSAPending(ctx, "u")
	if err != nil || p.KID != "k2" || string(p.MAC) != "m2" || !p.ExpiresAt.Equal(at(time.Minute)) {
		t.Fatalf("pending = %+v, %v", p, err)
	}
	if _, err := s.TakeSECDSAPending(ctx, "u"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("pending taken twice: %v", err)
	}
	if _, found, err := s.PutSECDSA(ctx, store.SECDSAUnit{UnitID: "u", KID: "k2", Cert: []byte("ic2"), MAC: []byte("m"), UpdatedAt: at(0)}); err != nil || found {
		t.Fatalf("first binding: found %v, %v", found, err)
	}
	if _, err := s.AdmitSECDSA(ctx, "u", "k2", 7, 5, at(0)); err != nil {
		t.Fatal(err)
	}
	prevU, found, err := s.PutSECDSA(ctx, store.SECDSAUnit{UnitID: "u", KID: "k3", Cert: []byte("ic3"), MAC: []byte("m"), UpdatedAt: at(0)})
	if err != nil || !found || prevU.KID != "k2" || string(prevU.Cert) != "ic2" {
		t.Fatalf("re-activation: %+v, %v, %v", prevU, found, err)
	}
	u, err := s.GetSECDSA(ctx, "u")
	if err != nil || u.KID != "k3" || u.LastSN != 7 || u.Failures != 0 || u.Locked {
		t.Fatalf("after re-activation: %+v, %v", u, err)
	}
	if _, err := s.AdmitSECDSA(ctx, "u", "k2", 8, 5, at(0)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("instruction under the replaced aU = %v", err)
	}
	if _, err := s.AdmitSECDSA(ctx, "u", "k3", 7, 5, at(0)); !errors.Is(err, store.ErrSNUsed) {
		t.Fatalf("SN spent under the old certificate = %v", err)
	}
}

// testSECDSACounters: admission consumes the SN and counts in advance;
// replays are refused without counting; a success clears; a device error
// gives the failure back; the lock comes at max and holds (also for a
// fresh store handle: a restart).
func testSECDSACounters(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	secdsaUnit(t, s, "u")
	bind(t, s, "u", "k")
	const max = 3
	c, err := s.AdmitSECDSA(ctx, "u", "k", 5, max, at(0))
	if err != nil || c.LastSN != 5 || c.Failures != 1 || c.Locked {
		t.Fatalf("admit = %+v, %v", c, err)
	}
	for _, sn := range []uint64{5, 4} {
		if c, err := s.AdmitSECDSA(ctx, "u", "k", sn, max, at(0)); !errors.Is(err, store.ErrSNUsed) || c.Failures != 1 {
			t.Fatalf("replay %d = %+v, %v", sn, c, err)
		}
	}
	for _, sn := range []uint64{0, store.MaxSN + 1} {
		if _, err := s.AdmitSECDSA(ctx, "u", "k", sn, max, at(0)); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("SN %d = %v", sn, err)
		}
	}
	if err := s.SECDSASucceeded(ctx, "u", "k", at(0)); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.GetSECDSA(ctx, "u"); u.Failures != 0 || u.LastSN != 5 {
		t.Fatalf("after success: %+v", u)
	}
	if _, err := s.AdmitSECDSA(ctx, "u", "k", 6, max, at(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.SECDSAUncount(ctx, "u", "k", max, at(0)); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.GetSECDSA(ctx, "u"); u.Failures != 0 || u.LastSN != 6 {
		t.Fatalf("after a device error: %+v", u)
	}
	for i := range max {
		c, err := s.AdmitSECDSA(ctx, "u", "k", uint64(10+i), max, at(0))
		if err != nil || c.Failures != i+1 || c.Locked != (i+1 == max) {
			t.Fatalf("failure %d: %+v, %v", i+1, c, err)
		}
	}
	s2 := open(t, dsn)
	if c, err := s2.AdmitSECDSA(ctx, "u", "k", 100, max, at(0)); !errors.Is(err, store.ErrLocked) || c.Failures != max || c.LastSN != 12 {
		t.Fatalf("locked after restart: %+v, %v", c, err)
	}
	if _, err := s2.AdmitSECDSA(ctx, "u", "k", 100, max+5, at(0)); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("a higher limit lifts the lock: %v", err)
	}
}

// testSECDSAAdmitConcurrent: concurrent instructions (distinct SNs) from
// two store handles are each counted, and no more than max are admitted;
// of concurrent uses of one SN exactly one is admitted.
func testSECDSAAdmitConcurrent(t *testing.T, dsn string) {
	a, b := open(t, dsn), open(t, dsn)
	ctx := t.Context()
	secdsaUnit(t, a, "u")
	bind(t, a, "u", "k")
	const n, max = 16, 5
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for i := range n {
		wg.Go(func() {
			s := a
			if i%2 == 1 {
				s = b
			}
			_, err := s.AdmitSECDSA(ctx, "u", "k", uint64(1+i), max, at(0))
			if err != nil && !errors.Is(err, store.ErrLocked) && !errors.Is(err, store.ErrSNUsed) {
				t.Error(err)
			}
			if err == nil {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	u, err := a.GetSECDSA(ctx, "u")
	if err != nil || admitted > max || u.Failures != admitted || admitted == max && !u.Locked {
		t.Fatalf("admitted %d, binding %+v, %v", admitted, u, err)
	}
	// One SN, many instances: one wins.
	secdsaUnit(t, a, "v")
	bind(t, a, "v", "k")
	admitted = 0
	for i := range n {
		wg.Go(func() {
			s := a
			if i%2 == 1 {
				s = b
			}
			if _, err := s.AdmitSECDSA(ctx, "v", "k", 42, max, at(0)); err == nil {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if u, _ := a.GetSECDSA(ctx, "v"); admitted != 1 || u.Failures != 1 {
		t.Fatalf("one SN admitted %d times, binding %+v", admitted, u)
	}
}

// testSECDSAErase: SECDSAKeys names the aU keys without changing
// anything; a revoked unit's erasure takes its SECDSA rows too; a unit
// that is not active gets no new aU (pending or bound), so that its
// destruction cannot miss one.
func testSECDSAErase(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	secdsaUnit(t, s, "u")
	bind(t, s, "u", "k")
	if _, err := s.PutSECDSANonce(ctx, "u", []byte("n"), at(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.TakeSECDSANonce(ctx, "u", []byte("n"), at(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSECDSAPending(ctx, store.SECDSAPending{UnitID: "u", KID: "kp", Wrapped: []byte("bp"), MAC: []byte("m")}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		bound, pending, err := s.SECDSAKeys(ctx, "u")
		if err != nil || bound.KID != "k" || pending.KID != "kp" || string(pending.Wrapped) != "bp" {
			t.Fatalf("keys = %+v, %+v, %v", bound, pending, err)
		}
	}
	if err := s.SetUnitState(ctx, "u", store.UnitSuspended, at(0)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutSECDSA(ctx, store.SECDSAUnit{UnitID: "u", KID: "k2", Cert: []byte("ic"), MAC: []byte("m"), UpdatedAt: at(0)}); !errors.Is(err, store.ErrUnitNotActive) {
		t.Fatalf("binding for a suspended unit = %v", err)
	}
	if _, err := s.TakeSECDSAPending(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutSECDSANonce(ctx, "u", []byte("n2"), at(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.TakeSECDSANonce(ctx, "u", []byte("n2"), at(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSECDSAPending(ctx, store.SECDSAPending{UnitID: "u", KID: "kq"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("aU for a suspended unit = %v", err)
	}
	if b, p, err := s.SECDSAKeys(ctx, "u"); err != nil || b.KID != "k" || p.KID != "" {
		t.Fatalf("keys after the refusals = %+v, %+v, %v", b, p, err)
	}
	if err := s.SetUnitState(ctx, "u", store.UnitRevoked, at(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.EraseUnit(ctx, "u", at(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSECDSA(ctx, "u"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("binding after erase = %v", err)
	}
	if b, p, err := s.SECDSAKeys(ctx, "u"); err != nil || b.KID != "" || p.KID != "" {
		t.Fatalf("keys after erase = %+v, %+v, %v", b, p, err)
	}
}

// testSECDSAReset: a reset hands back the bound and pending aU, leaves no
// binding (GetSECDSA, SECDSAKeys, AdmitSECDSA) and keeps the last serial
// number, which the next binding keeps too; a second reset finds nothing.
func testSECDSAReset(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	secdsaUnit(t, s, "u")
	bind(t, s, "u", "k")
	for range 3 {
		if _, err := s.AdmitSECDSA(ctx, "u", "k", 9, 3, at(0)); err != nil && !errors.Is(err, store.ErrSNUsed) {
			t.Fatal(err)
		}
	}
	if u, _ := s.GetSECDSA(ctx, "u"); u.LastSN != 9 || u.Failures != 1 {
		t.Fatalf("before the reset: %+v", u)
	}
	if _, err := s.PutSECDSANonce(ctx, "u", []byte("n"), at(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.TakeSECDSANonce(ctx, "u", []byte("n"), at(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSECDSAPending(ctx, store.SECDSAPending{UnitID: "u", KID: "kp", Wrapped: []byte("bp"), MAC: []byte("m")}); err != nil {
		t.Fatal(err)
	}
	bound, pending, err := s.ResetSECDSA(ctx, "u", at(time.Second))
	if err != nil || bound.KID != "k" || pending.KID != "kp" || string(pending.Wrapped) != "bp" {
		t.Fatalf("reset = %+v, %+v, %v", bound, pending, err)
	}
	if _, _, err := s.ResetSECDSA(ctx, "u", at(time.Second)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second reset = %v", err)
	}
	if _, err := s.GetSECDSA(ctx, "u"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("binding after the reset = %v", err)
	}
	if b, p, err := s.SECDSAKeys(ctx, "u"); err != nil || b.KID != "" || p.KID != "" {
		t.Fatalf("keys after the reset = %+v, %+v, %v", b, p, err)
	}
	if _, err := s.AdmitSECDSA(ctx, "u", "", 10, 3, at(0)); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("admission after the reset = %v", err)
	}
	prev, found, err := s.PutSECDSA(ctx, store.SECDSAUnit{UnitID: "u", KID: "k2", Cert: []byte("ic2"), MAC: []byte("m"), UpdatedAt: at(0)})
	if err != nil || found || prev.KID != "" {
		t.Fatalf("binding after the reset: %+v, found %v, %v", prev, found, err)
	}
	u, err := s.GetSECDSA(ctx, "u")
	if err != nil || u.KID != "k2" || u.LastSN != 9 || u.Failures != 0 || u.Locked {
		t.Fatalf("after re-activation: %+v, %v", u, err)
	}
	if _, err := s.AdmitSECDSA(ctx, "u", "k2", 9, 3, at(0)); !errors.Is(err, store.ErrSNUsed) {
		t.Fatalf("SN spent before the reset = %v", err)
	}
}
