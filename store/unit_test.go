package store_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
)

// TestUnitStates runs the unit lifecycle cases on every backend.
func TestUnitStates(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, dsn string)
	}{
		{"Transitions", testUnitTransitions},
		{"RevokeRacesResume", testRevokeRacesResume},
		{"RevokedDoesNotEnrol", testRevokedDoesNotEnrol},
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

// testUnitTransitions: suspend only an active unit, resume only a
// suspended one, revoke either; nothing leaves revoked; asking for the
// current state changes nothing.
func testUnitTransitions(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	states := []store.UnitState{store.UnitActive, store.UnitSuspended, store.UnitRevoked}
	allowed := map[[2]store.UnitState]bool{
		{store.UnitActive, store.UnitSuspended}:  true,
		{store.UnitSuspended, store.UnitActive}:  true,
		{store.UnitActive, store.UnitRevoked}:    true,
		{store.UnitSuspended, store.UnitRevoked}: true,
	}
	for _, from := range states {
		for _, to := range states {
			id := fmt.Sprintf("u-%s-%s", from, to)
			mustCreateUnit(t, s, id)
			// Reach from through allowed changes.
			switch from {
			case store.UnitSuspended:
				must(t, s.SetUnitState(ctx, id, store.UnitSuspended, at(time.Minute)))
			case store.UnitRevoked:
				must(t, s.SetUnitState(ctx, id, store.UnitRevoked, at(time.Minute)))
			}
			err := s.SetUnitState(ctx, id, to, at(time.Hour))
			got, gerr := s.GetUnit(ctx, id)
			must(t, gerr)
			switch {
			case allowed[[2]store.UnitState{from, to}]:
				if err != nil || got.State != to || !got.UpdatedAt.Equal(at(time.Hour)) {
					t.Errorf("%s → %s: %v, unit %+v", from, to, err, got)
				}
			case from == to:
				if err != nil || got.State != to || got.UpdatedAt.Equal(at(time.Hour)) {
					t.Errorf("%s → %s (no change): %v, unit %+v", from, to, err, got)
				}
			default:
				wantErr(t, fmt.Sprintf("%s → %s", from, to), err, store.ErrStateChange)
				if got.State != from {
					t.Errorf("%s → %s refused, but the unit is now %s", from, to, got.State)
				}
			}
		}
	}
	wantErr(t, "missing unit", s.SetUnitState(ctx, "nope", store.UnitRevoked, at(0)), store.ErrNotFound)
}

// testRevokeRacesResume: a revocation and a resume of a suspended unit
// race, many times; whatever the order, the unit ends revoked (a resume
// after the revocation is refused, never applied).
func testRevokeRacesResume(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	const rounds = 40
	for i := range rounds {
		id := fmt.Sprintf("race-%d", i)
		mustCreateUnit(t, s, id)
		must(t, s.SetUnitState(ctx, id, store.UnitSuspended, at(time.Minute)))
		var wg sync.WaitGroup
		var revokeErr, resumeErr error
		start := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			revokeErr = s.SetUnitState(ctx, id, store.UnitRevoked, at(time.Hour))
		}()
		go func() { defer wg.Done(); <-start; resumeErr = s.SetUnitState(ctx, id, store.UnitActive, at(time.Hour)) }()
		close(start)
		wg.Wait()
		if revokeErr != nil {
			t.Fatalf("round %d: revoke: %v", i, revokeErr)
		}
		if resumeErr != nil {
			wantErr(t, "resume after revoke", resumeErr, store.ErrStateChange)
		}
		u, err := s.GetUnit(ctx, id)
		if err != nil || u.State != store.UnitRevoked {
			t.Fatalf("round %d: unit %+v, %v; want revoked", i, u, err)
		}
	}
}

// testRevokedDoesNotEnrol: a code issued before the revocation does not
// enrol the revoked unit, and is not spent trying.
func testRevokedDoesNotEnrol(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	mustCreateUnit(t, s, "u1")
	must(t, s.PutActivationCode(ctx, store.ActivationCode{CodeHash: hash("code-r"), UnitID: "u1", Purpose: store.PurposeActivation, CreatedAt: at(0), ExpiresAt: at(time.Hour)}))
	must(t, s.SetUnitState(ctx, "u1", store.UnitRevoked, at(time.Second)))
	_, err := s.Enrol(ctx, enrolment(t, "u1", "code-r", at(time.Minute)))
	wantErr(t, "enrolment of a revoked unit", err, store.ErrNotFound)
	if n := countRows(t, s, "client_keys"); n != 0 {
		t.Fatalf("%d client keys registered for a revoked unit", n)
	}
	if n := countRows(t, s, "pin_records"); n != 0 {
		t.Fatalf("%d PIN records stored for a revoked unit", n)
	}
	// A suspended unit still enrols (a PIN reset while suspended).
	mustCreateUnit(t, s, "u2")
	must(t, s.PutActivationCode(ctx, store.ActivationCode{CodeHash: hash("code-s"), UnitID: "u2", Purpose: store.PurposeActivation, CreatedAt: at(0), ExpiresAt: at(time.Hour)}))
	must(t, s.SetUnitState(ctx, "u2", store.UnitSuspended, at(time.Second)))
	if _, err := s.Enrol(ctx, enrolment(t, "u2", "code-s", at(time.Minute))); err != nil {
		t.Fatalf("enrolment of a suspended unit: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
