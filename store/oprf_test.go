package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
)

// oprfKey is a made-up HSM OPRF key reference: the store only carries it.
func oprfKey(name string) store.OPRFKey {
	return store.OPRFKey{Public: []byte("pub-" + name), Wrapped: []byte("blob-" + name), MAC: []byte("mac-" + name)}
}

func retiredNames(t *testing.T, s *store.Store, unit string) []string {
	t.Helper()
	ks, err := s.RetiredOPRFKeys(t.Context(), unit, 100)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range ks {
		if !bytes.Equal(k.Wrapped, []byte("blob-"+string(k.Public[4:]))) || !bytes.Equal(k.MAC, []byte("mac-"+string(k.Public[4:]))) {
			t.Fatalf("retired key %q: blob %q, MAC %q", k.Public, k.Wrapped, k.MAC)
		}
		names = append(names, k.UnitID+"/"+string(k.Public[4:]))
	}
	return names
}

func wantRetired(t *testing.T, s *store.Store, unit string, want ...string) {
	t.Helper()
	got := retiredNames(t, s, unit)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("retired OPRF keys: %q, want %q", got, want)
	}
}

// TestOPRFKeys: a PIN record and a pending registration carry their HSM
// OPRF key; every way of letting go of one (PIN change, re-enrolment, a
// requester's new evaluate, eviction, an expired take, a purge) moves it
// to the retired keys in the same transaction, and nothing else does; a
// unit's erasure erases its retired keys.
func TestOPRFKeys(t *testing.T) {
	for _, b := range testenv.StoreBackends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			s := open(t, b.DSN(t))
			ctx := t.Context()
			mustCreateUnit(t, s, "u")
			mustCreateUnit(t, s, "v")

			// Key and MAC are refused half-filled.
			bad := store.PINRecord{Record: []byte("r"), CredNonce: []byte("n"), MAC: []byte("m"), OPRF: store.OPRFKey{Public: []byte("p")}}
			wantErr(t, "OPRF key without MAC", s.PutFirstPINRecord(ctx, "u", "hsm", bad, at(0)), store.ErrInvalid)
			bad.OPRF = store.OPRFKey{Wrapped: []byte("w")}
			wantErr(t, "blob without key", s.PutFirstPINRecord(ctx, "u", "hsm", bad, at(0)), store.ErrInvalid)

			rec := store.PINRecord{Record: []byte("r1"), CredNonce: []byte("n1"), MAC: []byte("m"), OPRF: oprfKey("k1")}
			if err := s.PutFirstPINRecord(ctx, "u", "hsm", rec, at(0)); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetPINRecord(ctx, "u", "hsm")
			if err != nil || !bytes.Equal(got.OPRF.Public, rec.OPRF.Public) || !bytes.Equal(got.OPRF.Wrapped, rec.OPRF.Wrapped) || !bytes.Equal(got.OPRF.MAC, rec.OPRF.MAC) {
				t.Fatalf("record: %+v, %v", got, err)
			}
			// A software record reads back with a zero key.
			if err := s.PutFirstPINRecord(ctx, "v", "hsm", store.PINRecord{Record: []byte("r"), CredNonce: []byte("n"), MAC: []byte("m")}, at(0)); err != nil {
				t.Fatal(err)
			}
			if got, err := s.GetPINRecord(ctx, "v", "hsm"); err != nil || !got.OPRF.IsZero() || got.OPRF.Wrapped != nil || got.OPRF.MAC != nil {
				t.Fatalf("software record: %+v, %v", got.OPRF, err)
			}
			wantRetired(t, s, "")
			if n, err := s.SoftwareOPRFRecords(ctx); err != nil || n != 1 {
				t.Fatalf("software OPRF records: %d, %v; want 1", n, err)
			}

			pending := func(requester, key string, ttl time.Duration) {
				t.Helper()
				p := store.PendingRegistration{UnitID: "u", Context: "hsm", Requester: requester, CredNonce: []byte("n-" + key), ExpiresAt: at(ttl)}
				if key != "" {
					p.OPRF = oprfKey(key)
				}
				if err := s.PutPendingRegistration(ctx, p, 2); err != nil {
					t.Fatal(err)
				}
			}
			pending("a", "k2", time.Minute)
			p, err := s.TakePendingRegistration(ctx, "u", "hsm", "a", at(0))
			if err != nil || string(p.OPRF.Public) != "pub-k2" || string(p.OPRF.MAC) != "mac-k2" || string(p.CredNonce) != "n-k2" {
				t.Fatalf("take: %+v, %v", p, err)
			}
			wantRetired(t, s, "") // taken, not retired: the caller uses it

			pending("a", "k3", time.Minute)
			pending("a", "k4", time.Minute) // the requester's new evaluate
			wantRetired(t, s, "u", "u/k3")
			pending("b", "k5", 2*time.Minute)
			pending("c", "k6", 3*time.Minute) // evicts a's (the oldest)
			wantRetired(t, s, "u", "u/k3", "u/k4")
			_, err = s.TakePendingRegistration(ctx, "u", "hsm", "b", at(2*time.Minute)) // expired
			wantErr(t, "expired take", err, store.ErrNotFound)
			wantRetired(t, s, "u", "u/k3", "u/k4", "u/k5")
			if _, err := s.Purge(ctx, at(time.Hour)); err != nil {
				t.Fatal(err)
			}
			wantRetired(t, s, "u", "u/k3", "u/k4", "u/k5", "u/k6")
			pending("d", "", time.Minute) // a software registration retires nothing
			pending("d", "k7", time.Minute)
			wantRetired(t, s, "u", "u/k3", "u/k4", "u/k5", "u/k6")

			// A PIN change retires the old record's key and the pending
			// registrations' keys.
			rec2 := store.PINRecord{Record: []byte("r2"), CredNonce: []byte("n2"), MAC: []byte("m"), OPRF: oprfKey("k8")}
			if err := s.ReplacePINRecord(ctx, "u", "hsm", rec2, at(0)); err != nil {
				t.Fatal(err)
			}
			wantRetired(t, s, "u", "u/k1", "u/k3", "u/k4", "u/k5", "u/k6", "u/k7")
			// So does a re-enrolment.
			if err := s.PutActivationCode(ctx, store.ActivationCode{CodeHash: hash("c"), UnitID: "u", Purpose: store.PurposePINReset, CreatedAt: at(0), ExpiresAt: at(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			e := enrolment(t, "u", "c", at(time.Minute))
			e.Record.OPRF = oprfKey("k9")
			if _, err := s.Enrol(ctx, e); err != nil {
				t.Fatal(err)
			}
			wantRetired(t, s, "u", "u/k1", "u/k3", "u/k4", "u/k5", "u/k6", "u/k7", "u/k8")
			wantRetired(t, s, "v")

			all, err := s.OPRFKeys(ctx, "u")
			if err != nil || len(all) != 8 {
				t.Fatalf("OPRF keys of u: %d, %v", len(all), err)
			}
			if err := s.DeleteRetiredOPRFKey(ctx, "u", []byte("pub-k1")); err != nil {
				t.Fatal(err)
			}
			wantRetired(t, s, "u", "u/k3", "u/k4", "u/k5", "u/k6", "u/k7", "u/k8")

			if err := s.SetUnitState(ctx, "u", store.UnitRevoked, at(0)); err != nil {
				t.Fatal(err)
			}
			// A revoked unit gets no new key: its destruction, which read
			// its keys after the revocation, would miss it.
			late := store.PendingRegistration{UnitID: "u", Context: "hsm", Requester: "late", CredNonce: []byte("n"), ExpiresAt: at(time.Hour), OPRF: oprfKey("late")}
			wantErr(t, "evaluate of a revoked unit", s.PutPendingRegistration(ctx, late, 10), store.ErrUnitNotFound)
			lateRec := store.PINRecord{Record: []byte("r"), CredNonce: []byte("n"), MAC: []byte("m"), OPRF: oprfKey("late-record")}
			wantErr(t, "PIN change of a revoked unit", s.ReplacePINRecord(ctx, "u", "hsm", lateRec, at(0)), store.ErrUnitNotFound)
			if all, err := s.OPRFKeys(ctx, "u"); err != nil || len(all) != 7 {
				t.Fatalf("OPRF keys of the revoked unit: %d, %v", len(all), err)
			}
			if err := s.EraseUnit(ctx, "u", at(0)); err != nil {
				t.Fatal(err)
			}
			wantRetired(t, s, "")
			if all, err := s.OPRFKeys(ctx, "u"); err != nil || len(all) != 0 {
				t.Fatalf("OPRF keys after erasure: %d, %v", len(all), err)
			}
		})
	}
}

// TestOPRFKeysConcurrent: concurrent evaluates of one unit by a few
// requesters (each evicting others, each requester replacing its own)
// and concurrent PIN changes of that unit lose no key and fail none, and
// a key a finishing registration takes is never retired: every key put is, at the end, in a pending registration, in the
// record or among the retired keys. (On PostgreSQL, under READ
// COMMITTED, a retire and the delete after it see different rows.)
func TestOPRFKeysConcurrent(t *testing.T) {
	for _, b := range testenv.StoreBackends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			s := open(t, b.DSN(t))
			ctx := t.Context()
			mustCreateUnit(t, s, "u")
			const workers, rounds = 8, 25
			rec := func(name string) store.PINRecord {
				return store.PINRecord{Record: []byte("r"), CredNonce: []byte("n"), MAC: []byte("m"), OPRF: oprfKey(name)}
			}
			if err := s.PutFirstPINRecord(ctx, "u", "hsm", rec("r0"), at(0)); err != nil {
				t.Fatal(err)
			}
			put := map[string]bool{"r0": true}
			taken := map[string]bool{} // by TakePendingRegistration: now the caller's
			var mu sync.Mutex
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range rounds {
						name := fmt.Sprintf("w%d-%d", w, i)
						var err error
						if i%5 == w%5 {
							err = s.ReplacePINRecord(ctx, "u", "hsm", rec(name), at(0))
						} else {
							err = s.PutPendingRegistration(ctx, store.PendingRegistration{
								UnitID: "u", Context: "hsm", Requester: fmt.Sprintf("req-%d", i%3), CredNonce: []byte("n"),
								ExpiresAt: at(time.Hour + time.Duration(w*rounds+i)*time.Millisecond), OPRF: oprfKey(name),
							}, 2)
						}
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						put[name] = true
						mu.Unlock()
						// Another requester's registration finishes.
						tp, err := s.TakePendingRegistration(ctx, "u", "hsm", fmt.Sprintf("req-%d", (i+1)%3), at(0))
						if err == nil {
							mu.Lock()
							taken[string(tp.OPRF.Public[4:])] = true
							mu.Unlock()
						} else if !errors.Is(err, store.ErrNotFound) {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			ks, err := s.OPRFKeys(ctx, "u")
			if err != nil {
				t.Fatal(err)
			}
			named := map[string]bool{}
			for _, k := range ks {
				named[string(k.Public[4:])] = true
			}
			for name := range put {
				if !named[name] && !taken[name] {
					t.Errorf("key %s is named nowhere", name)
				}
			}
			for _, r := range retiredNames(t, s, "u") {
				if taken[r[2:]] {
					t.Errorf("key %s was taken for a record and retired", r[2:])
				}
			}
		})
	}
}
