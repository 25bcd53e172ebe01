package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
)

// TestWSCAStore runs the WSCA role's store cases on every backend.
func TestWSCAStore(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, dsn string)
	}{
		{"Pseudonyms", testPseudonyms},
		{"PseudonymQuota", testPseudonymQuota},
		{"EraseUnit", testEraseUnit},
		{"StateMovesStatuses", testStateMovesStatuses},
		{"AttestedKeys", testAttestedKeys},
		{"SuspendedBy", testSuspendedBy},
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

// testPseudonyms: put, replace, get, list, delete; one unit never sees
// another's slot; bad input is refused before the database.
func testPseudonyms(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	mustCreateUnit(t, s, "u1")
	mustCreateUnit(t, s, "u2")

	created, err := s.PutPseudonym(ctx, "u1", "rp.example", []byte("v1"), at(time.Minute), 0)
	if err != nil || !created {
		t.Fatalf("first put = %v, %v; want created", created, err)
	}
	created, err = s.PutPseudonym(ctx, "u1", "rp.example", []byte("v2"), at(time.Hour), 0)
	if err != nil || created {
		t.Fatalf("second put = %v, %v; want replaced", created, err)
	}
	p, err := s.GetPseudonym(ctx, "u1", "rp.example")
	must(t, err)
	if !bytes.Equal(p.Value, []byte("v2")) || !p.CreatedAt.Equal(at(time.Minute)) || !p.UpdatedAt.Equal(at(time.Hour)) {
		t.Fatalf("get = %+v", p)
	}
	_, err = s.GetPseudonym(ctx, "u2", "rp.example")
	wantErr(t, "another unit's slot", err, store.ErrNotFound)

	_, err = s.PutPseudonym(ctx, "u1", "a", []byte("x"), at(time.Minute), 0)
	must(t, err)
	list, err := s.ListPseudonyms(ctx, "u1")
	must(t, err)
	if len(list) != 2 || list[0].Slot != "a" || list[1].Slot != "rp.example" || list[0].Value != nil {
		t.Fatalf("list = %+v", list)
	}
	if l2, err := s.ListPseudonyms(ctx, "u2"); err != nil || len(l2) != 0 {
		t.Fatalf("other unit's list = %v, %v", l2, err)
	}

	wantErr(t, "delete another unit's slot", s.DeletePseudonym(ctx, "u2", "a"), store.ErrNotFound)
	must(t, s.DeletePseudonym(ctx, "u1", "a"))
	wantErr(t, "delete twice", s.DeletePseudonym(ctx, "u1", "a"), store.ErrNotFound)

	_, err = s.PutPseudonym(ctx, "nobody", "a", []byte("x"), at(time.Minute), 0)
	wantErr(t, "unknown unit", err, store.ErrUnitNotFound)
	for name, put := range map[string]func() error{
		"empty value": func() error { _, err := s.PutPseudonym(ctx, "u1", "a", nil, at(time.Minute), 0); return err },
		"huge value": func() error {
			_, err := s.PutPseudonym(ctx, "u1", "a", make([]byte, store.MaxPseudonymSize+1), at(time.Minute), 0)
			return err
		},
		"empty slot": func() error { _, err := s.PutPseudonym(ctx, "u1", "", []byte("x"), at(time.Minute), 0); return err },
		"zero time":  func() error { _, err := s.PutPseudonym(ctx, "u1", "a", []byte("x"), time.Time{}, 0); return err },
		"neg quota":  func() error { _, err := s.PutPseudonym(ctx, "u1", "a", []byte("x"), at(time.Minute), -1); return err },
		"control chr": func() error {
			_, err := s.PutPseudonym(ctx, "u1", "a\x00", []byte("x"), at(time.Minute), 0)
			return err
		},
	} {
		wantErr(t, name, put(), store.ErrInvalid)
	}
}

// testPseudonymQuota: a new slot over the quota is refused, replacing an
// existing slot at the quota is not.
func testPseudonymQuota(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	mustCreateUnit(t, s, "u1")
	for _, slot := range []string{"a", "b"} {
		if _, err := s.PutPseudonym(ctx, "u1", slot, []byte("x"), at(time.Minute), 2); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.PutPseudonym(ctx, "u1", "c", []byte("x"), at(time.Minute), 2)
	wantErr(t, "third slot over a quota of 2", err, store.ErrQuota)
	if _, err := s.PutPseudonym(ctx, "u1", "b", []byte("y"), at(time.Minute), 2); err != nil {
		t.Fatalf("replace at the quota: %v", err)
	}
}

// testEraseUnit: only a revoked unit is erased; everything of it goes, the
// row stays as destroyed, another unit is untouched, and erasing again
// changes nothing.
func testEraseUnit(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	for _, u := range []string{"victim", "bystander"} {
		mustCreateUnit(t, s, u)
		mustInsertKey(t, s, newKey(t, u, u+"-k1", at(time.Minute)))
		if _, err := s.PutPseudonym(ctx, u, "slot", []byte("x"), at(time.Minute), 0); err != nil {
			t.Fatal(err)
		}
		code := bytes.Repeat([]byte(u[:1]), store.HashSize)
		must(t, s.PutActivationCode(ctx, store.ActivationCode{CodeHash: code, UnitID: u, Purpose: store.PurposeActivation,
			CreatedAt: at(time.Minute), ExpiresAt: at(time.Hour)}))
		must(t, s.PutFirstPINRecord(ctx, u, "hsm", store.PINRecord{Record: []byte("r"), CredNonce: []byte("n"), MAC: []byte("m")}, at(time.Minute)))
	}

	err := s.EraseUnit(ctx, "victim", at(time.Hour))
	if !errors.Is(err, store.ErrStateChange) {
		t.Fatalf("erase an active unit = %v, want ErrStateChange", err)
	}
	if keys, _ := s.ListKeys(ctx, "victim"); len(keys) != 1 {
		t.Fatalf("a refused erase removed keys: %v", keys)
	}

	must(t, s.SetUnitState(ctx, "victim", store.UnitRevoked, at(time.Hour)))
	for range 2 {
		must(t, s.EraseUnit(ctx, "victim", at(2*time.Hour)))
	}
	u, err := s.GetUnit(ctx, "victim")
	if err != nil || u.State != store.UnitDestroyed {
		t.Fatalf("erased unit = %+v, %v; want destroyed", u, err)
	}
	db := store.RawDB(s)
	for _, table := range []string{"keys", "pseudonyms", "activation_codes", "pin_records"} {
		var victim, bystander int
		must(t, db.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE unit_id = 'victim'`).Scan(&victim))
		must(t, db.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE unit_id = 'bystander'`).Scan(&bystander))
		if victim != 0 || bystander != 1 {
			t.Errorf("%s: victim has %d rows, bystander %d; want 0 and 1", table, victim, bystander)
		}
	}
	wantErr(t, "resume a destroyed unit", s.SetUnitState(ctx, "victim", store.UnitActive, at(3*time.Hour)), store.ErrStateChange)
	wantErr(t, "recreate a destroyed unit", s.CreateUnit(ctx, store.Unit{ID: "victim", State: store.UnitActive, CreatedAt: at(0)}), store.ErrExists)
	wantErr(t, "erase a missing unit", s.EraseUnit(ctx, "nobody", at(time.Hour)), store.ErrNotFound)
}

// statuses returns a unit's entries' statuses by kind and kid.
func statuses(t *testing.T, s *store.Store, unit string) map[string]uint8 {
	t.Helper()
	es, err := s.UnitStatusEntries(t.Context(), unit)
	must(t, err)
	out := map[string]uint8{}
	for _, e := range es {
		out[string(e.Kind)+":"+e.KID] = e.Status
	}
	return out
}

// testStateMovesStatuses: suspending, resuming and revoking a unit set
// its status entries in the same transaction; a destroyed key's entry
// stays invalid through a resume; another unit's entries do not move.
func testStateMovesStatuses(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	for _, u := range []string{"u1", "u2"} {
		mustCreateUnit(t, s, u)
		for _, a := range []store.StatusAllocation{alloc(u, store.StatusKindWIA, "", 1, 10000), alloc(u, store.StatusKindKey, u+"-k1", 1, 10000), alloc(u, store.StatusKindKey, u+"-k2", 1, 10000)} {
			if _, err := s.AllocateStatus(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.SetKeyStatus(ctx, "u1", "u1-k2", store.StatusInvalid, at(time.Minute)); err != nil {
		t.Fatal(err)
	}
	check := func(step string, want map[string]uint8) {
		t.Helper()
		if got := statuses(t, s, "u1"); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: u1 statuses = %v, want %v", step, got, want)
		}
		if got := statuses(t, s, "u2"); got["wia:"] != 0 || got["key:u2-k1"] != 0 || got["key:u2-k2"] != 0 {
			t.Fatalf("%s: u2 statuses moved: %v", step, got)
		}
	}
	must(t, s.SetUnitState(ctx, "u1", store.UnitSuspended, at(time.Hour)))
	check("suspended", map[string]uint8{"wia:": 2, "key:u1-k1": 2, "key:u1-k2": 1})
	must(t, s.SetUnitState(ctx, "u1", store.UnitActive, at(2*time.Hour)))
	check("resumed", map[string]uint8{"wia:": 0, "key:u1-k1": 0, "key:u1-k2": 1})
	must(t, s.SetUnitState(ctx, "u1", store.UnitRevoked, at(3*time.Hour)))
	check("revoked", map[string]uint8{"wia:": 1, "key:u1-k1": 1, "key:u1-k2": 1})
	wantErr(t, "resume revoked", s.SetUnitState(ctx, "u1", store.UnitActive, at(4*time.Hour)), store.ErrStateChange)
	check("after a refused resume", map[string]uint8{"wia:": 1, "key:u1-k1": 1, "key:u1-k2": 1})
}

// testAttestedKeys: destroying any key an attestation names invalidates
// it, not only the key its entry was allocated for.
func testAttestedKeys(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	mustCreateUnit(t, s, "u1")
	e, err := s.AllocateStatus(ctx, alloc("u1", store.StatusKindKey, "first", 1, 10000))
	must(t, err)
	other, err := s.AllocateStatus(ctx, alloc("u1", store.StatusKindKey, "lone", 1, 10000))
	must(t, err)
	must(t, s.RecordAttestedKeys(ctx, e.ListID, e.Index, []string{"first", "second"}))
	must(t, s.RecordAttestedKeys(ctx, e.ListID, e.Index, []string{"second"})) // again: no error
	wantErr(t, "no kids", s.RecordAttestedKeys(ctx, e.ListID, e.Index, nil), store.ErrInvalid)
	n, err := s.SetKeyStatus(ctx, "u1", "second", store.StatusInvalid, at(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("destroy second: %d entries, %v; want 1", n, err)
	}
	got := statuses(t, s, "u1")
	if got["key:first"] != store.StatusInvalid || got["key:lone"] != store.StatusValid {
		t.Fatalf("statuses = %v (entries %v, %v)", got, e, other)
	}
	// Recorded with the entry, in its transaction.
	a := alloc("u1", store.StatusKindKey, "head", 1, 10000)
	a.Attested = []string{"head", "tail"}
	if _, err := s.AllocateStatus(ctx, a); err != nil {
		t.Fatal(err)
	}
	if n, err := s.SetKeyStatus(ctx, "u1", "tail", store.StatusInvalid, at(time.Hour)); err != nil || n != 1 {
		t.Fatalf("destroy tail: %d entries, %v; want 1", n, err)
	}
	if got := statuses(t, s, "u1"); got["key:head"] != store.StatusInvalid {
		t.Fatalf("the entry naming tail: %v", got)
	}
	w := alloc("u1", store.StatusKindWIA, "", 1, 10000)
	w.Attested = []string{"x"}
	_, err = s.AllocateStatus(ctx, w)
	wantErr(t, "a WIA entry with attested keys", err, store.ErrInvalid)
}

// testSuspendedBy: the holder lifts only its own suspension; the operator
// lifts any; an unknown actor is refused.
func testSuspendedBy(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	mustCreateUnit(t, s, "u1")
	must(t, s.SetUnitStateBy(ctx, "u1", store.UnitSuspended, store.ByOperator, at(time.Minute)))
	wantErr(t, "holder lifts the operator's suspension", s.SetUnitStateBy(ctx, "u1", store.UnitActive, store.ByHolder, at(time.Hour)), store.ErrStateChange)
	if u, _ := s.GetUnit(ctx, "u1"); u.State != store.UnitSuspended {
		t.Fatalf("state after a refused lift: %s", u.State)
	}
	must(t, s.SetUnitStateBy(ctx, "u1", store.UnitActive, store.ByOperator, at(time.Hour)))
	must(t, s.SetUnitStateBy(ctx, "u1", store.UnitSuspended, store.ByHolder, at(2*time.Hour)))
	must(t, s.SetUnitStateBy(ctx, "u1", store.UnitActive, store.ByHolder, at(3*time.Hour)))
	must(t, s.SetUnitStateBy(ctx, "u1", store.UnitSuspended, store.ByHolder, at(4*time.Hour)))
	must(t, s.SetUnitState(ctx, "u1", store.UnitActive, at(5*time.Hour))) // the operator lifts the holder's too
	wantErr(t, "unknown actor", s.SetUnitStateBy(ctx, "u1", store.UnitSuspended, "someone", at(6*time.Hour)), store.ErrInvalid)
}
