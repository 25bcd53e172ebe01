package store_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
)

// latestVersion is the schema version the embedded migrations reach.
var latestVersion = store.LatestVersion()

// TestStore is the conformance suite: every case runs on every backend, each
// on a fresh database.
func TestStore(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, dsn string)
	}{
		{"Migrations", testMigrations},
		{"ConcurrentOpen", testConcurrentOpen},
		{"SchemaTooNew", testSchemaTooNew},
		{"Upgrade", testUpgrade},
		{"Units", testUnits},
		{"UnitOrder", testUnitOrder},
		{"Keys", testKeys},
		{"KeyOrder", testKeyOrder},
		{"Isolation", testIsolation},
		{"UnitNotFound", testUnitNotFound},
		{"HasKeys", testHasKeys},
		{"Validation", testValidation},
		{"BytesCopied", testBytesCopied},
		{"Timestamps", testTimestamps},
		{"ConcurrentInsertKey", testConcurrentInsertKey},
		{"KeyAccess", testKeyAccess},
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

// at returns a fixed instant plus d, with nanoseconds the store drops.
func at(d time.Duration) time.Time {
	return time.Date(2026, 11, 22, 10, 0, 0, 123_456_000, time.UTC).Add(d)
}

func open(t testing.TB, dsn string, opts ...store.Option) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), dsn, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func point(t testing.TB) []byte {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey().Bytes()
}

func mustCreateUnit(t testing.TB, s *store.Store, id string) store.Unit {
	t.Helper()
	u := store.Unit{ID: id, State: store.UnitActive, CreatedAt: at(0), UpdatedAt: at(0)}
	if err := s.CreateUnit(t.Context(), u); err != nil {
		t.Fatalf("CreateUnit(%q): %v", id, err)
	}
	return u
}

func newKey(t testing.TB, unit, kid string, created time.Time) store.Key {
	return store.Key{
		KID:       kid,
		UnitID:    unit,
		PublicKey: point(t),
		Backend:   "soft",
		State:     store.KeyActive,
		CreatedAt: created,
	}
}

func mustInsertKey(t testing.TB, s *store.Store, k store.Key) {
	t.Helper()
	if err := s.InsertKey(t.Context(), k); err != nil {
		t.Fatalf("InsertKey(%q): %v", k.KID, err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func countRows(t *testing.T, s *store.Store, table string) int {
	t.Helper()
	var n int
	if err := store.RawDB(s).QueryRowContext(t.Context(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func testMigrations(t *testing.T, dsn string) {
	ctx := t.Context()
	for i := range 3 {
		s, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
		v, err := s.SchemaVersion(ctx)
		if err != nil || v != latestVersion {
			t.Errorf("Open #%d: SchemaVersion = %d, %v; want %d", i, v, err, latestVersion)
		}
		if n := countRows(t, s, "schema_migrations"); n != latestVersion {
			t.Errorf("Open #%d: %d schema_migrations rows, want %d", i, n, latestVersion)
		}
		if err := s.Ping(ctx); err != nil {
			t.Errorf("Ping: %v", err)
		}
		if !strings.HasPrefix(dsn, s.Backend()) {
			t.Errorf("Backend() = %q for %s DSN", s.Backend(), strings.SplitN(dsn, ":", 2)[0])
		}
		if i == 0 {
			mustCreateUnit(t, s, "survivor")
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	s := open(t, dsn)
	if _, err := s.GetUnit(ctx, "survivor"); err != nil {
		t.Errorf("data lost across re-open: %v", err)
	}
}

func testConcurrentOpen(t *testing.T, dsn string) {
	const n = 4
	var (
		wg     sync.WaitGroup
		stores [n]*store.Store
		errs   [n]error
	)
	for i := range n {
		wg.Go(func() {
			stores[i], errs[i] = store.Open(t.Context(), dsn, store.WithMaxOpenConns(2))
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open #%d: %v", i, errs[i])
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	if n := countRows(t, stores[0], "schema_migrations"); n != latestVersion {
		t.Errorf("%d schema_migrations rows, want %d", n, latestVersion)
	}
	// Every instance sees the schema.
	for i, s := range stores {
		if err := s.CreateUnit(t.Context(), store.Unit{ID: fmt.Sprint("u", i), State: store.UnitActive, CreatedAt: at(0)}); err != nil {
			t.Errorf("CreateUnit via instance %d: %v", i, err)
		}
	}
}

func testSchemaTooNew(t *testing.T, dsn string) {
	s := open(t, dsn)
	if _, err := store.RawDB(s).ExecContext(t.Context(),
		`INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, latestVersion+1, 0); err != nil {
		t.Fatal(err)
	}
	_, err := store.Open(t.Context(), dsn)
	wantErr(t, "Open of a newer schema", err, store.ErrSchemaTooNew)
}

func testUnits(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)

	u := store.Unit{ID: "unit-1", State: store.UnitActive, CreatedAt: at(0)}
	if err := s.CreateUnit(ctx, u); err != nil {
		t.Fatalf("CreateUnit: %v", err)
	}
	u.UpdatedAt = u.CreatedAt // a zero UpdatedAt is stored as CreatedAt
	got, err := s.GetUnit(ctx, u.ID)
	if err != nil || !sameUnit(got, u) {
		t.Fatalf("GetUnit = %+v, %v; want %+v", got, err, u)
	}
	wantErr(t, "duplicate CreateUnit", s.CreateUnit(ctx, u), store.ErrExists)
	_, err = s.GetUnit(ctx, "nope")
	wantErr(t, "GetUnit of a missing unit", err, store.ErrNotFound)

	for i, st := range []store.UnitState{store.UnitSuspended, store.UnitActive, store.UnitRevoked} {
		when := at(time.Duration(i+1) * time.Hour)
		if err := s.SetUnitState(ctx, u.ID, st, when); err != nil {
			t.Fatalf("SetUnitState(%s): %v", st, err)
		}
		got, err := s.GetUnit(ctx, u.ID)
		want := store.Unit{ID: u.ID, State: st, CreatedAt: u.CreatedAt, UpdatedAt: when}
		if err != nil || !sameUnit(got, want) {
			t.Fatalf("after SetUnitState(%s): GetUnit = %+v, %v; want %+v", st, got, err, want)
		}
	}
	wantErr(t, "SetUnitState of a missing unit", s.SetUnitState(ctx, "nope", store.UnitActive, at(0)), store.ErrNotFound)

	list, err := s.ListUnits(ctx)
	if err != nil || len(list) != 1 || list[0].ID != u.ID {
		t.Fatalf("ListUnits = %+v, %v", list, err)
	}

	if err := s.DeleteUnit(ctx, u.ID); err != nil {
		t.Fatalf("DeleteUnit: %v", err)
	}
	_, err = s.GetUnit(ctx, u.ID)
	wantErr(t, "GetUnit after DeleteUnit", err, store.ErrNotFound)
	wantErr(t, "DeleteUnit of a missing unit", s.DeleteUnit(ctx, u.ID), store.ErrNotFound)
	if list, err := s.ListUnits(ctx); err != nil || len(list) != 0 {
		t.Fatalf("ListUnits after delete = %+v, %v", list, err)
	}
	// The id is free again.
	mustCreateUnit(t, s, u.ID)
}

func sameUnit(a, b store.Unit) bool {
	return a.ID == b.ID && a.State == b.State && a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func sameKey(a, b store.Key) bool {
	return a.KID == b.KID && a.UnitID == b.UnitID && bytes.Equal(a.PublicKey, b.PublicKey) &&
		a.Backend == b.Backend && a.State == b.State && a.CreatedAt.Equal(b.CreatedAt)
}

// testUnitOrder checks that ids sort bytewise on every backend, whatever the
// database's locale.
func testUnitOrder(t *testing.T, dsn string) {
	s := open(t, dsn)
	ids := []string{"b", "a-2", "B", "_x", "a10", "a2", "Z", "é"}
	for _, id := range ids {
		mustCreateUnit(t, s, id)
	}
	list, err := s.ListUnits(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range list {
		got = append(got, u.ID)
	}
	want := slices.Clone(ids)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("ListUnits order = %q, want %q", got, want)
	}
}

func testKeys(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	mustCreateUnit(t, s, "u1")
	mustCreateUnit(t, s, "u2")

	k := newKey(t, "u1", "kid-1", at(time.Minute))
	mustInsertKey(t, s, k)
	got, err := s.GetKey(ctx, k.KID)
	if err != nil || !sameKey(got, k) {
		t.Fatalf("GetKey = %+v, %v; want %+v", got, err, k)
	}

	dup := newKey(t, "u1", k.KID, at(0))
	wantErr(t, "InsertKey of a taken kid", s.InsertKey(ctx, dup), store.ErrExists)
	dup.UnitID = "u2"
	wantErr(t, "InsertKey of a kid taken by another unit", s.InsertKey(ctx, dup), store.ErrExists)
	if got, _ := s.GetKey(ctx, k.KID); !sameKey(got, k) {
		t.Fatalf("a failed InsertKey changed the key: %+v", got)
	}

	_, err = s.GetKey(ctx, "nope")
	wantErr(t, "GetKey of a missing key", err, store.ErrNotFound)

	if err := s.SetKeyState(ctx, k.KID, store.KeyDestroying); err != nil {
		t.Fatalf("SetKeyState: %v", err)
	}
	if got, err := s.GetKey(ctx, k.KID); err != nil || got.State != store.KeyDestroying {
		t.Fatalf("after SetKeyState: %+v, %v", got, err)
	}
	wantErr(t, "SetKeyState of a missing key", s.SetKeyState(ctx, "nope", store.KeyActive), store.ErrNotFound)

	list, err := s.ListKeys(ctx, "u1")
	if err != nil || len(list) != 1 || list[0].KID != k.KID {
		t.Fatalf("ListKeys = %+v, %v", list, err)
	}

	if err := s.DeleteKey(ctx, k.KID); err != nil {
		t.Fatalf("DeleteKey: %v", err)
	}
	_, err = s.GetKey(ctx, k.KID)
	wantErr(t, "GetKey after DeleteKey", err, store.ErrNotFound)
	wantErr(t, "DeleteKey of a missing key", s.DeleteKey(ctx, k.KID), store.ErrNotFound)
	if list, err := s.ListKeys(ctx, "u1"); err != nil || len(list) != 0 {
		t.Fatalf("ListKeys after delete = %+v, %v", list, err)
	}
}

func testKeyOrder(t *testing.T, dsn string) {
	s := open(t, dsn)
	mustCreateUnit(t, s, "u")
	// Inserted out of order; two share a creation time and sort by kid.
	for _, k := range []struct {
		kid string
		d   time.Duration
	}{{"k3", 3}, {"k1b", 1}, {"k0", -5}, {"k1a", 1}, {"k2", 2}} {
		mustInsertKey(t, s, newKey(t, "u", k.kid, at(k.d*time.Second)))
	}
	list, err := s.ListKeys(t.Context(), "u")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range list {
		got = append(got, k.KID)
	}
	if want := []string{"k0", "k1a", "k1b", "k2", "k3"}; !slices.Equal(got, want) {
		t.Errorf("ListKeys order = %q, want %q", got, want)
	}
}

func testIsolation(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	owners := map[string][]string{"A": {"a1", "a2", "a3"}, "B": {"b1"}, "C": nil}
	for unit, kids := range owners {
		mustCreateUnit(t, s, unit)
		for _, kid := range kids {
			mustInsertKey(t, s, newKey(t, unit, kid, at(0)))
		}
	}
	for unit, kids := range owners {
		list, err := s.ListKeys(ctx, unit)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, k := range list {
			if k.UnitID != unit {
				t.Errorf("ListKeys(%q) returned %q of unit %q", unit, k.KID, k.UnitID)
			}
			got = append(got, k.KID)
		}
		if !slices.Equal(got, kids) {
			t.Errorf("ListKeys(%q) = %q, want %q", unit, got, kids)
		}
	}
	if list, err := s.ListKeys(ctx, "nobody"); err != nil || len(list) != 0 {
		t.Errorf("ListKeys of a missing unit = %+v, %v", list, err)
	}
	if k, err := s.GetKey(ctx, "a1"); err != nil || k.UnitID != "A" {
		t.Errorf("GetKey(a1) = %+v, %v; want owner A", k, err)
	}
}

func testUnitNotFound(t *testing.T, dsn string) {
	s := open(t, dsn)
	mustCreateUnit(t, s, "real")
	wantErr(t, "InsertKey for a missing unit", s.InsertKey(t.Context(), newKey(t, "ghost", "k", at(0))), store.ErrUnitNotFound)
	if _, err := s.GetKey(t.Context(), "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a key of a missing unit was stored: %v", err)
	}
}

func testHasKeys(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	mustCreateUnit(t, s, "u")
	mustInsertKey(t, s, newKey(t, "u", "k1", at(0)))
	mustInsertKey(t, s, newKey(t, "u", "k2", at(0)))

	for _, kid := range []string{"k1", "k2"} {
		wantErr(t, "DeleteUnit with keys", s.DeleteUnit(ctx, "u"), store.ErrHasKeys)
		if _, err := s.GetUnit(ctx, "u"); err != nil {
			t.Fatalf("a refused DeleteUnit removed the unit: %v", err)
		}
		if err := s.DeleteKey(ctx, kid); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteUnit(ctx, "u"); err != nil {
		t.Fatalf("DeleteUnit without keys: %v", err)
	}
}

func testValidation(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	mustCreateUnit(t, s, "u")
	good := newKey(t, "u", "k", at(0))
	key := func(f func(*store.Key)) store.Key {
		k := good
		k.PublicKey = slices.Clone(good.PublicKey)
		f(&k)
		return k
	}
	unit := func(f func(*store.Unit)) store.Unit {
		u := store.Unit{ID: "v", State: store.UnitActive, CreatedAt: at(0)}
		f(&u)
		return u
	}
	compressed := slices.Clone(good.PublicKey[:33])
	compressed[0] = 0x02
	cases := []struct {
		name string
		call func() error
	}{
		{"unit empty id", func() error { return s.CreateUnit(ctx, unit(func(u *store.Unit) { u.ID = "" })) }},
		{"unit long id", func() error {
			return s.CreateUnit(ctx, unit(func(u *store.Unit) { u.ID = strings.Repeat("x", store.MaxIDLen+1) }))
		}},
		{"unit NUL in id", func() error { return s.CreateUnit(ctx, unit(func(u *store.Unit) { u.ID = "a\x00b" })) }},
		{"unit bad UTF-8", func() error { return s.CreateUnit(ctx, unit(func(u *store.Unit) { u.ID = "a\xffb" })) }},
		{"unit unknown state", func() error { return s.CreateUnit(ctx, unit(func(u *store.Unit) { u.State = "frozen" })) }},
		{"unit empty state", func() error { return s.CreateUnit(ctx, unit(func(u *store.Unit) { u.State = "" })) }},
		{"unit state case", func() error { return s.CreateUnit(ctx, unit(func(u *store.Unit) { u.State = "Active" })) }},
		{"unit zero created", func() error { return s.CreateUnit(ctx, unit(func(u *store.Unit) { u.CreatedAt = time.Time{} })) }},
		{"unit updated before created", func() error {
			return s.CreateUnit(ctx, unit(func(u *store.Unit) { u.UpdatedAt = at(-time.Second) }))
		}},
		{"unit time out of range", func() error {
			return s.CreateUnit(ctx, unit(func(u *store.Unit) { u.CreatedAt = time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC) }))
		}},
		{"GetUnit empty id", func() error { _, err := s.GetUnit(ctx, ""); return err }},
		{"SetUnitState unknown state", func() error { return s.SetUnitState(ctx, "u", "gone", at(0)) }},
		{"SetUnitState zero time", func() error { return s.SetUnitState(ctx, "u", store.UnitRevoked, time.Time{}) }},
		{"SetUnitState empty id", func() error { return s.SetUnitState(ctx, "", store.UnitRevoked, at(0)) }},
		{"DeleteUnit empty id", func() error { return s.DeleteUnit(ctx, "") }},
		{"key empty kid", func() error { return s.InsertKey(ctx, key(func(k *store.Key) { k.KID = "" })) }},
		{"key empty unit", func() error { return s.InsertKey(ctx, key(func(k *store.Key) { k.UnitID = "" })) }},
		{"key empty backend", func() error { return s.InsertKey(ctx, key(func(k *store.Key) { k.Backend = "" })) }},
		{"key nil point", func() error { return s.InsertKey(ctx, key(func(k *store.Key) { k.PublicKey = nil })) }},
		{"key compressed point", func() error { return s.InsertKey(ctx, key(func(k *store.Key) { k.PublicKey = compressed })) }},
		{"key 64 bytes", func() error { return s.InsertKey(ctx, key(func(k *store.Key) { k.PublicKey = k.PublicKey[1:] })) }},
		{"key 66 bytes", func() error {
			return s.InsertKey(ctx, key(func(k *store.Key) { k.PublicKey = append(k.PublicKey, 0) }))
		}},
		{"key wrong prefix", func() error { return s.InsertKey(ctx, key(func(k *store.Key) { k.PublicKey[0] = 0x06 })) }},
		{"key unknown state", func() error { return s.InsertKey(ctx, key(func(k *store.Key) { k.State = "destroyed" })) }},
		{"key zero created", func() error { return s.InsertKey(ctx, key(func(k *store.Key) { k.CreatedAt = time.Time{} })) }},
		{"GetKey empty kid", func() error { _, err := s.GetKey(ctx, ""); return err }},
		{"ListKeys empty unit", func() error { _, err := s.ListKeys(ctx, ""); return err }},
		{"SetKeyState unknown state", func() error { return s.SetKeyState(ctx, "k", "x") }},
		{"SetKeyState empty kid", func() error { return s.SetKeyState(ctx, "", store.KeyActive) }},
		{"DeleteKey empty kid", func() error { return s.DeleteKey(ctx, "") }},
		{"WithMaxOpenConns(0)", func() error { _, err := store.Open(ctx, dsn, store.WithMaxOpenConns(0)); return err }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
			if !strings.HasPrefix(err.Error(), "store: invalid ") {
				t.Errorf("message %q lacks the store: invalid prefix", err)
			}
		})
	}
	if n := countRows(t, s, "units"); n != 1 {
		t.Errorf("%d units after invalid calls, want 1", n)
	}
	if n := countRows(t, s, "keys"); n != 0 {
		t.Errorf("%d keys after invalid calls, want 0", n)
	}
}

func testBytesCopied(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	mustCreateUnit(t, s, "u")
	k := newKey(t, "u", "k", at(0))
	orig := slices.Clone(k.PublicKey)
	mustInsertKey(t, s, k)
	k.PublicKey[1] ^= 0xff

	got, err := s.GetKey(ctx, "k")
	if err != nil || !bytes.Equal(got.PublicKey, orig) {
		t.Fatalf("GetKey after mutating the input = %x, %v; want %x", got.PublicKey, err, orig)
	}
	got.PublicKey[1] ^= 0xff
	list, err := s.ListKeys(ctx, "u")
	if err != nil || len(list) != 1 || !bytes.Equal(list[0].PublicKey, orig) {
		t.Fatalf("ListKeys after mutating a result = %+v, %v", list, err)
	}
	again, err := s.GetKey(ctx, "k")
	if err != nil || !bytes.Equal(again.PublicKey, orig) {
		t.Fatalf("GetKey after mutating a result = %x, %v", again.PublicKey, err)
	}
}

func testTimestamps(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	zone := time.FixedZone("UTC+5:30", 5*3600+30*60)
	times := []time.Time{
		time.Date(2026, 3, 29, 2, 30, 0, 999_999_999, zone),
		time.Date(1969, 12, 31, 23, 59, 59, 1_500, time.UTC), // before the epoch
		time.Date(1, 1, 1, 0, 0, 0, 1_000, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_000, zone),
		time.Unix(0, 0).Add(time.Microsecond),
	}
	for i, tm := range times {
		want := tm.Truncate(time.Microsecond).UTC()
		id := fmt.Sprint("u", i)
		if err := s.CreateUnit(ctx, store.Unit{ID: id, State: store.UnitActive, CreatedAt: tm, UpdatedAt: tm}); err != nil {
			t.Fatalf("CreateUnit at %v: %v", tm, err)
		}
		k := newKey(t, id, fmt.Sprint("k", i), tm)
		mustInsertKey(t, s, k)

		u, err := s.GetUnit(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		gk, err := s.GetKey(ctx, k.KID)
		if err != nil {
			t.Fatal(err)
		}
		for what, got := range map[string]time.Time{"unit created": u.CreatedAt, "unit updated": u.UpdatedAt, "key created": gk.CreatedAt} {
			if !got.Equal(want) || got.Location() != time.UTC {
				t.Errorf("%s: stored %v, got %v (%v), want %v UTC", what, tm, got, got.Location(), want)
			}
		}
	}
}

func testConcurrentInsertKey(t *testing.T, dsn string) {
	const workers, perWorker = 8, 10
	s := open(t, dsn)
	mustCreateUnit(t, s, "u")
	var keys [workers][perWorker]store.Key
	for w := range workers {
		for i := range perWorker {
			keys[w][i] = newKey(t, "u", fmt.Sprintf("k-%d-%d", w, i), at(time.Duration(i)))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Go(func() {
			for _, k := range keys[w] {
				if err := s.InsertKey(t.Context(), k); err != nil {
					errs <- fmt.Errorf("InsertKey(%s): %w", k.KID, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list, err := s.ListKeys(t.Context(), "u")
	if err != nil || len(list) != workers*perWorker {
		t.Fatalf("ListKeys: %d keys, %v; want %d", len(list), err, workers*perWorker)
	}
}

// testUpgrade opens a database with the embedded migrations, then with one
// more step, as a newer binary would.
func testUpgrade(t *testing.T, dsn string) {
	ctx := t.Context()
	s := open(t, dsn)
	mustCreateUnit(t, s, "u")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A failing step is rolled back whole, including its earlier statements.
	bad := withExtraMigration(t, "bad.sql",
		"CREATE TABLE half (x INTEGER);\nINSERT INTO missing_table (x) VALUES (1);\n")
	if _, err := store.Open(ctx, dsn, store.WithMigrations(bad)); err == nil {
		t.Fatal("Open with a failing migration succeeded")
	}
	s = open(t, dsn)
	if v, err := s.SchemaVersion(ctx); err != nil || v != latestVersion {
		t.Fatalf("SchemaVersion after a failed upgrade = %d, %v", v, err)
	}
	if _, err := store.RawDB(s).ExecContext(ctx, "SELECT x FROM half"); err == nil {
		t.Error("a failed migration left its table behind")
	}

	next := withExtraMigration(t, "notes.sql",
		"CREATE TABLE notes (id TEXT NOT NULL PRIMARY KEY, body TEXT NOT NULL);\n"+
			"INSERT INTO notes (id, body) SELECT id, state FROM units;\n")
	s2 := open(t, dsn, store.WithMigrations(next))
	if v, err := s2.SchemaVersion(ctx); err != nil || v != latestVersion+1 {
		t.Fatalf("SchemaVersion after upgrade = %d, %v", v, err)
	}
	if n := countRows(t, s2, "notes"); n != 1 {
		t.Errorf("upgrade step saw %d units, want 1", n)
	}
	// The instance opened before the upgrade still works on its tables.
	if _, err := s.GetUnit(ctx, "u"); err != nil {
		t.Errorf("GetUnit after upgrade: %v", err)
	}
	// The older binary refuses the upgraded database.
	_, err := store.Open(ctx, dsn)
	wantErr(t, "Open by the older binary", err, store.ErrSchemaTooNew)
}

// withExtraMigration returns the embedded migrations plus one step.
func withExtraMigration(t *testing.T, name, body string) fs.FS {
	t.Helper()
	name = fmt.Sprintf("%04d_test_%s", latestVersion+1, name)
	m := fstest.MapFS{name: &fstest.MapFile{Data: []byte(body)}}
	embedded := store.EmbeddedMigrations()
	entries, err := fs.ReadDir(embedded, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := fs.ReadFile(embedded, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = &fstest.MapFile{Data: b}
	}
	return m
}

func testKeyAccess(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	now := at(0)
	if err := s.CreateUnit(ctx, store.Unit{ID: "u", State: store.UnitActive, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertKey(ctx, store.Key{KID: "k", UnitID: "u", PublicKey: point(t), Backend: "soft", State: store.KeyActive, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	a, err := s.GetKeyAccess(ctx, "k")
	if err != nil || !reflect.DeepEqual(a, store.KeyAccess{UnitID: "u", KeyState: store.KeyActive, UnitState: store.UnitActive}) {
		t.Fatalf("%+v %v", a, err)
	}
	s.SetUnitState(ctx, "u", store.UnitSuspended, now)
	s.SetKeyState(ctx, "k", store.KeyDestroying)
	if a, err := s.GetKeyAccess(ctx, "k"); err != nil || a.UnitState != store.UnitSuspended || a.KeyState != store.KeyDestroying {
		t.Fatalf("%+v %v", a, err)
	}
	if _, err := s.GetKeyAccess(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
}
