package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/statuslist"
	"github.com/wsca/wsca/store"
)

// TestStatusLists is the status list conformance suite, on every backend.
func TestStatusLists(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, dsn string)
	}{
		{"Allocate", testStatusAllocate},
		{"AllocateFills", testStatusAllocateFills},
		{"AllocateConcurrent", testStatusAllocateConcurrent},
		{"AllocateRefuses", testStatusAllocateRefuses},
		{"AllocateUnitState", testStatusAllocateUnitState},
		{"AllocateLimit", testStatusAllocateLimit},
		{"AllocateLimitConcurrent", testStatusAllocateLimitConcurrent},
		{"UnitStatuses", testUnitStatuses},
		{"RevocationFinal", testRevocationFinal},
		{"InTransaction", testStatusInTransaction},
		{"KeyStatus", testKeyStatus},
		{"Tokens", testStatusTokens},
		{"Retire", testStatusRetire},
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

var indexKey = bytes.Repeat([]byte{7}, statuslist.IndexKeySize)

// permIndex is the index function a publisher gives: the keyed permutation
// of each list.
func permIndex(listID string, size, counter int64) (int64, error) {
	k, err := statuslist.ListIndexKey(indexKey, listID)
	if err != nil {
		return 0, err
	}
	p, err := statuslist.NewPermutation(k, uint64(size))
	if err != nil {
		return 0, err
	}
	x, err := p.Index(uint64(counter))
	return int64(x), err
}

func alloc(unit string, kind store.StatusKind, kid string, pool int, size int64) store.StatusAllocation {
	return store.StatusAllocation{Unit: unit, Kind: kind, KID: kid, Pool: pool, Size: size, Bits: 2, Index: permIndex, At: at(0)}
}

// ensureUnit creates the active unit id unless it exists: an entry is
// allocated only for an active unit.
func ensureUnit(t testing.TB, s *store.Store, id string) {
	t.Helper()
	u := store.Unit{ID: id, State: store.UnitActive, CreatedAt: at(0), UpdatedAt: at(0)}
	if err := s.CreateUnit(context.Background(), u); err != nil && !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateUnit(%q): %v", id, err)
	}
}

func mustAllocate(t *testing.T, s *store.Store, a store.StatusAllocation) store.StatusEntry {
	t.Helper()
	ensureUnit(t, s, a.Unit)
	e, err := s.AllocateStatus(t.Context(), a)
	if err != nil {
		t.Fatalf("AllocateStatus: %v", err)
	}
	return e
}

func testStatusAllocate(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	const pool, size = 4, 10000
	seen := make(map[store.StatusEntry]bool)
	perList := make(map[string]int)
	// A seeded source of choices, so the balance below is the same on every
	// run (with crypto/rand a gap of 7 turned up now and then).
	choices := mathrand.NewChaCha8([32]byte{'w', 's', 'c', 'a'})
	for i := range 400 {
		a := alloc(fmt.Sprintf("u%d", i%50), store.StatusKindKey, fmt.Sprintf("k%d", i), pool, size)
		a.Rand = choices
		e := mustAllocate(t, s, a)
		if seen[e] || e.Index < 0 || e.Index >= size {
			t.Fatalf("entry %+v repeated or out of range", e)
		}
		seen[e] = true
		perList[e.ListID]++
		if want, _ := permIndex(e.ListID, size, e.Counter); want != e.Index {
			t.Fatalf("index %d is not the permutation of counter %d", e.Index, e.Counter)
		}
	}
	lists, err := s.StatusLists(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(lists) != pool || len(perList) != pool {
		t.Fatalf("%d lists (%d used), want %d", len(lists), len(perList), pool)
	}
	// Power of two choices keeps the lists level: with 400 entries over 4
	// lists, the fullest and emptiest differ by a few entries, where a
	// single random choice would differ by about 20.
	counts := make([]int, 0, pool)
	for _, l := range lists {
		if len(l.ID) != 26 || l.Bits != 2 || l.Size != size || l.State != store.StatusListActive || int(l.NextCounter) != perList[l.ID] {
			t.Fatalf("list %+v", l)
		}
		counts = append(counts, perList[l.ID])
	}
	if slices.Max(counts)-slices.Min(counts) > 6 {
		t.Errorf("fill levels %v are not balanced", counts)
	}
	// Changes and builds see every entry.
	if n, err := s.SetUnitStatuses(ctx, "u3", store.StatusSuspended, at(time.Second)); err != nil || n != 8 {
		t.Fatalf("SetUnitStatuses: %d, %v", n, err)
	}
	total := 0
	for _, l := range lists {
		st, _, err := s.ListStatuses(ctx, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		total += len(st)
	}
	if total != 8 {
		t.Fatalf("%d suspended entries listed, want 8", total)
	}
}

func testStatusAllocateFills(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	const size = 8
	var first string
	idx := make(map[int64]bool)
	for i := range size {
		e := mustAllocate(t, s, alloc("u", store.StatusKindWIA, "", 1, size))
		if first == "" {
			first = e.ListID
		}
		if e.ListID != first || e.Counter != int64(i) || idx[e.Index] {
			t.Fatalf("entry %d: %+v", i, e)
		}
		idx[e.Index] = true
	}
	l, err := s.GetStatusList(ctx, first)
	if err != nil || l.State != store.StatusListFull || l.NextCounter != size {
		t.Fatalf("full list: %+v, %v", l, err)
	}
	// Indices are all of [0,size), not in counter order.
	if len(idx) != size {
		t.Fatal("indices not a permutation")
	}
	e := mustAllocate(t, s, alloc("u", store.StatusKindWIA, "", 1, size))
	if e.ListID == first || e.Counter != 0 {
		t.Fatalf("after a full list: %+v", e)
	}
	lists, _ := s.StatusLists(ctx)
	if len(lists) != 2 {
		t.Fatalf("%d lists, want the full one and a new one", len(lists))
	}
}

// testStatusAllocateConcurrent: two store instances (two pools, as two
// processes) allocate at once; no index is handed out twice and every
// counter of every list is used once.
func testStatusAllocateConcurrent(t *testing.T, dsn string) {
	stores := []*store.Store{open(t, dsn), open(t, dsn)}
	const workers, each = 8, 25
	var (
		mu  sync.Mutex
		got []store.StatusEntry
		wg  sync.WaitGroup
	)
	errs := make(chan error, workers)
	for w := range workers {
		ensureUnit(t, stores[0], fmt.Sprintf("u%d", w))
	}
	for w := range workers {
		wg.Go(func() {
			s := stores[w%2]
			for i := range each {
				e, err := s.AllocateStatus(context.Background(), alloc(fmt.Sprintf("u%d", w), store.StatusKindKey, fmt.Sprintf("k%d-%d", w, i), 2, 64))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				got = append(got, e)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	type slot struct {
		list string
		n    int64
	}
	idx, ctr := make(map[slot]bool), make(map[string][]int64)
	for _, e := range got {
		if idx[slot{e.ListID, e.Index}] {
			t.Fatalf("index %d of list %s handed out twice", e.Index, e.ListID)
		}
		idx[slot{e.ListID, e.Index}] = true
		ctr[e.ListID] = append(ctr[e.ListID], e.Counter)
	}
	if len(got) != workers*each {
		t.Fatalf("%d entries", len(got))
	}
	for id, cs := range ctr {
		slices.Sort(cs)
		for i, c := range cs {
			if c != int64(i) {
				t.Fatalf("list %s counters %v have a gap or repeat", id, cs)
			}
		}
	}
}

func testStatusAllocateRefuses(t *testing.T, dsn string) {
	s := open(t, dsn)
	bad := func(mod func(*store.StatusAllocation)) store.StatusAllocation {
		a := alloc("u", store.StatusKindKey, "k", 2, 100)
		mod(&a)
		return a
	}
	cases := map[string]store.StatusAllocation{
		"no unit":      bad(func(a *store.StatusAllocation) { a.Unit = "" }),
		"kind":         bad(func(a *store.StatusAllocation) { a.Kind = "pid" }),
		"key no kid":   bad(func(a *store.StatusAllocation) { a.KID = "" }),
		"wia with kid": bad(func(a *store.StatusAllocation) { a.Kind = store.StatusKindWIA }),
		"pool 0":       bad(func(a *store.StatusAllocation) { a.Pool = 0 }),
		"bits 3":       bad(func(a *store.StatusAllocation) { a.Bits = 3 }),
		"no index":     bad(func(a *store.StatusAllocation) { a.Index = nil }),
		"no time":      bad(func(a *store.StatusAllocation) { a.At = time.Time{} }),
		"limit < 0":    bad(func(a *store.StatusAllocation) { a.Limit = -1 }),
		"no window":    bad(func(a *store.StatusAllocation) { a.Limit = 5 }),
		"index out of range": bad(func(a *store.StatusAllocation) {
			a.Index = func(string, int64, int64) (int64, error) { return 100, nil }
		}),
	}
	ensureUnit(t, s, "u")
	for name, a := range cases {
		if _, err := s.AllocateStatus(t.Context(), a); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// An index function that is not a bijection is caught by the key.
	constant := bad(func(a *store.StatusAllocation) {
		a.Index = func(string, int64, int64) (int64, error) { return 5, nil }
		a.Pool = 1
	})
	mustAllocate(t, s, constant)
	if _, err := s.AllocateStatus(t.Context(), constant); !errors.Is(err, store.ErrExists) {
		t.Errorf("repeated index: %v", err)
	}
}

// statusesOf returns idx → status of every non-VALID entry of the lists.
func statusesOf(t *testing.T, s *store.Store, lists ...string) map[int64]uint8 {
	t.Helper()
	m := make(map[int64]uint8)
	for _, id := range lists {
		cs, _, err := s.ListStatuses(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			m[c.Index] = c.Status
		}
	}
	return m
}

func testUnitStatuses(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	wia := mustAllocate(t, s, alloc("u1", store.StatusKindWIA, "", 1, 1000))
	k1 := mustAllocate(t, s, alloc("u1", store.StatusKindKey, "k1", 1, 1000))
	k2 := mustAllocate(t, s, alloc("u1", store.StatusKindKey, "k2", 1, 1000))
	other := mustAllocate(t, s, alloc("u2", store.StatusKindWIA, "", 1, 1000))
	list := wia.ListID

	_, v0, err := s.ListStatuses(ctx, list)
	if err != nil || v0 != 0 {
		t.Fatalf("fresh list version %d, %v", v0, err)
	}
	steps := []struct {
		status  uint8
		changed int64
		want    uint8
	}{
		{store.StatusSuspended, 3, store.StatusSuspended},
		{store.StatusSuspended, 0, store.StatusSuspended}, // no change, no new version
		{store.StatusValid, 3, store.StatusValid},
		{store.StatusInvalid, 3, store.StatusInvalid},
		{store.StatusValid, 0, store.StatusInvalid}, // revocation is final
		{store.StatusSuspended, 0, store.StatusInvalid},
	}
	var lastSeq int64
	for i, st := range steps {
		n, err := s.SetUnitStatuses(ctx, "u1", st.status, at(time.Duration(i)*time.Second))
		if err != nil || n != st.changed {
			t.Fatalf("step %d: %d changed, %v; want %d", i, n, err, st.changed)
		}
		got := statusesOf(t, s, list)
		for _, e := range []store.StatusEntry{wia, k1, k2} {
			if got[e.Index] != st.want {
				t.Fatalf("step %d: entry %d is %d, want %d", i, e.Index, got[e.Index], st.want)
			}
		}
		if got[other.Index] != 0 {
			t.Fatalf("step %d: another unit's entry changed", i)
		}
		changes, err := s.StatusChangesSince(ctx, list, lastSeq)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(changes)) != st.changed {
			t.Fatalf("step %d: %d changes since %d, want %d", i, len(changes), lastSeq, st.changed)
		}
		prev := lastSeq
		for _, c := range changes {
			if c.Seq <= prev || c.Status != st.want {
				t.Fatalf("step %d: change %+v", i, c)
			}
			lastSeq = c.Seq
		}
	}
	l, _ := s.GetStatusList(ctx, list)
	if l.Version != lastSeq || l.Version != 3 {
		t.Fatalf("version %d, last seq %d; want 3", l.Version, lastSeq)
	}
	if _, v, _ := s.ListStatuses(ctx, list); v != 3 {
		t.Fatalf("ListStatuses version %d", v)
	}
	es, err := s.UnitStatusEntries(ctx, "u1")
	if err != nil || len(es) != 3 || es[0].Kind != store.StatusKindKey || es[0].KID != "k1" || es[2].Kind != store.StatusKindWIA || es[2].Status != store.StatusInvalid {
		t.Fatalf("UnitStatusEntries: %+v, %v", es, err)
	}
}

// testRevocationFinal: the trigger refuses a statement that would bring a
// revoked entry back, whatever the code around it does.
func testRevocationFinal(t *testing.T, dsn string) {
	s := open(t, dsn)
	e := mustAllocate(t, s, alloc("u1", store.StatusKindWIA, "", 1, 1000))
	if _, err := s.SetUnitStatuses(t.Context(), "u1", store.StatusInvalid, at(0)); err != nil {
		t.Fatal(err)
	}
	_, err := store.RawDB(s).ExecContext(t.Context(), `UPDATE status_entries SET status = 0 WHERE list_id = $1`, e.ListID)
	if err == nil || !strings.Contains(err.Error(), "revocation is final") {
		t.Fatalf("raw un-revoke: %v", err)
	}
	if got := statusesOf(t, s, e.ListID); got[e.Index] != store.StatusInvalid {
		t.Fatal("revoked entry changed")
	}
	// Other columns may still change (purge bookkeeping, seq).
	if _, err := store.RawDB(s).ExecContext(t.Context(), `UPDATE status_entries SET updated_at = updated_at + 1`); err != nil {
		t.Fatal(err)
	}
}

// testStatusInTransaction: the statuses change with the caller's
// transaction, or not at all.
func testStatusInTransaction(t *testing.T, dsn string) {
	s := open(t, dsn)
	e := mustAllocate(t, s, alloc("u1", store.StatusKindWIA, "", 1, 1000))
	if n, err := store.SetUnitStatusesInTx(t.Context(), s, "u1", store.StatusSuspended, at(0), true); n != 1 || err == nil {
		t.Fatalf("rolled back: %d, %v", n, err)
	}
	if got := statusesOf(t, s, e.ListID); len(got) != 0 {
		t.Fatal("a rolled back change is visible")
	}
	if l, _ := s.GetStatusList(t.Context(), e.ListID); l.Version != 0 {
		t.Fatal("a rolled back change bumped the version")
	}
	if n, err := store.SetUnitStatusesInTx(t.Context(), s, "u1", store.StatusSuspended, at(0), false); n != 1 || err != nil {
		t.Fatalf("committed: %d, %v", n, err)
	}
	if got := statusesOf(t, s, e.ListID); got[e.Index] != store.StatusSuspended {
		t.Fatal("committed change not visible")
	}
}

func testKeyStatus(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	wia := mustAllocate(t, s, alloc("u1", store.StatusKindWIA, "", 1, 1000))
	k1 := mustAllocate(t, s, alloc("u1", store.StatusKindKey, "k1", 1, 1000))
	k2 := mustAllocate(t, s, alloc("u1", store.StatusKindKey, "k2", 1, 1000))
	foreign := mustAllocate(t, s, alloc("u2", store.StatusKindKey, "k1", 1, 1000))
	if n, err := s.SetKeyStatus(ctx, "u1", "k1", store.StatusInvalid, at(0)); err != nil || n != 1 {
		t.Fatalf("SetKeyStatus: %d, %v", n, err)
	}
	got := statusesOf(t, s, wia.ListID)
	if got[k1.Index] != store.StatusInvalid || got[k2.Index] != 0 || got[wia.Index] != 0 || got[foreign.Index] != 0 {
		t.Fatalf("statuses %v", got)
	}
	if n, _ := s.SetKeyStatus(ctx, "u1", "k1", store.StatusValid, at(time.Second)); n != 0 {
		t.Fatal("a destroyed key's entry came back")
	}
	// Suspending the unit leaves the destroyed key revoked.
	if n, _ := s.SetUnitStatuses(ctx, "u1", store.StatusSuspended, at(time.Second)); n != 2 {
		t.Fatalf("suspend changed %d entries, want 2", n)
	}
	if got := statusesOf(t, s, wia.ListID); got[k1.Index] != store.StatusInvalid {
		t.Fatal("suspension overwrote a revocation")
	}
}

func testStatusTokens(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	e := mustAllocate(t, s, alloc("u1", store.StatusKindWIA, "", 1, 1000))
	tok := func(v int64, iat time.Duration, body string) store.StatusToken {
		return store.StatusToken{ListID: e.ListID, Format: store.StatusFormatJWT, Version: v, IssuedAt: at(iat), ETag: `"` + body + `"`, Token: []byte(body)}
	}
	if _, err := s.GetStatusToken(ctx, e.ListID, store.StatusFormatJWT); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no token yet: %v", err)
	}
	steps := []struct {
		t      store.StatusToken
		stored bool
		body   string
	}{
		{tok(2, 0, "v2"), true, "v2"},
		{tok(1, time.Hour, "v1"), false, "v2"},              // older version, even if signed later
		{tok(2, 0, "v2-again"), false, "v2"},                // same version, not newer
		{tok(2, time.Minute, "v2-later"), true, "v2-later"}, // refreshed before exp
		{tok(3, 0, "v3"), true, "v3"},
	}
	for i, st := range steps {
		ok, err := s.PutStatusToken(ctx, st.t)
		if err != nil || ok != st.stored {
			t.Fatalf("step %d: stored %t, %v; want %t", i, ok, err, st.stored)
		}
		got, err := s.GetStatusToken(ctx, e.ListID, store.StatusFormatJWT)
		if err != nil || string(got.Token) != st.body || got.ETag != `"`+st.body+`"` {
			t.Fatalf("step %d: %q, %v; want %q", i, got.Token, err, st.body)
		}
	}
	if _, err := s.GetStatusToken(ctx, e.ListID, store.StatusFormatCWT); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("formats are not separate")
	}
	unknown := tok(1, 0, "x")
	unknown.ListID = "nosuchlist"
	if _, err := s.PutStatusToken(ctx, unknown); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown list: %v", err)
	}
	badFormat := tok(4, 0, "x")
	badFormat.Format = "xml"
	if _, err := s.PutStatusToken(ctx, badFormat); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad format: %v", err)
	}
}

func testStatusRetire(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	var first store.StatusEntry
	for i := range 4 {
		e := mustAllocate(t, s, alloc("u1", store.StatusKindWIA, "", 1, 4))
		if i == 0 {
			first = e
		}
	}
	active := mustAllocate(t, s, alloc("u1", store.StatusKindWIA, "", 1, 4))
	if err := s.RetireStatusList(ctx, active.ListID); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("retire an active list: %v", err)
	}
	if err := s.RetireStatusList(ctx, "nosuchlist"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("retire an unknown list: %v", err)
	}
	if _, err := s.PutStatusToken(ctx, store.StatusToken{ListID: first.ListID, Format: store.StatusFormatCWT, Version: 0, IssuedAt: at(0), ETag: "e", Token: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RetireStatusList(ctx, first.ListID); err != nil {
		t.Fatal(err)
	}
	lists, _ := s.StatusLists(ctx)
	if len(lists) != 1 || lists[0].ID != active.ListID {
		t.Fatalf("published lists %v", lists)
	}
	n, err := s.PurgeRetiredStatusLists(ctx)
	if err != nil || n != 4 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	l, err := s.GetStatusList(ctx, first.ListID)
	if err != nil || l.State != store.StatusListRetired {
		t.Fatalf("retired list row: %+v, %v", l, err)
	}
	if _, err := s.GetStatusToken(ctx, first.ListID, store.StatusFormatCWT); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("a retired list's token survived the purge")
	}
	if countRows(t, s, "status_entries") != 1 {
		t.Fatal("purge removed entries of an active list")
	}
}

// testStatusAllocateUnitState: an entry is allocated only for an active
// unit that exists; a refused allocation leaves nothing behind.
func testStatusAllocateUnitState(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	if _, err := s.AllocateStatus(ctx, alloc("nobody", store.StatusKindWIA, "", 1, 100)); !errors.Is(err, store.ErrUnitNotFound) {
		t.Errorf("unknown unit: %v", err)
	}
	for _, st := range []store.UnitState{store.UnitSuspended, store.UnitRevoked} {
		unit := "u-" + string(st)
		ensureUnit(t, s, unit)
		if err := s.SetUnitState(ctx, unit, st, at(time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AllocateStatus(ctx, alloc(unit, store.StatusKindWIA, "", 1, 100)); !errors.Is(err, store.ErrUnitNotActive) {
			t.Errorf("%s unit: %v", st, err)
		}
	}
	if lists, err := s.StatusLists(ctx); err != nil || len(lists) != 0 {
		t.Errorf("refused allocations left lists %v (%v)", lists, err)
	}
}

// testStatusAllocateLimit: with a Limit, a unit gets at most Limit entries
// within Window before At (key and WIA entries together); older entries
// and other units do not count.
func testStatusAllocateLimit(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	limited := func(unit string, kind store.StatusKind, kid string, when time.Duration) store.StatusAllocation {
		a := alloc(unit, kind, kid, 1, 1000)
		a.Limit, a.Window, a.At = 3, time.Hour, at(when)
		return a
	}
	ensureUnit(t, s, "u1")
	ensureUnit(t, s, "u2")
	mustAllocate(t, s, limited("u1", store.StatusKindWIA, "", 0))
	mustAllocate(t, s, limited("u1", store.StatusKindKey, "k1", time.Minute))
	mustAllocate(t, s, limited("u1", store.StatusKindKey, "k2", 2*time.Minute))
	if _, err := s.AllocateStatus(ctx, limited("u1", store.StatusKindWIA, "", 3*time.Minute)); !errors.Is(err, store.ErrQuota) {
		t.Fatalf("fourth entry within the window: %v", err)
	}
	mustAllocate(t, s, limited("u2", store.StatusKindWIA, "", 3*time.Minute))
	// An hour after the first, it no longer counts.
	mustAllocate(t, s, limited("u1", store.StatusKindWIA, "", time.Hour))
	if _, err := s.AllocateStatus(ctx, limited("u1", store.StatusKindWIA, "", time.Hour+time.Second)); !errors.Is(err, store.ErrQuota) {
		t.Fatalf("the window moved too far: %v", err)
	}
	// Without a limit, nothing is counted.
	mustAllocate(t, s, alloc("u1", store.StatusKindWIA, "", 1, 1000))
}

// testStatusAllocateLimitConcurrent: allocations for one unit from two
// store instances at once never exceed the limit.
func testStatusAllocateLimitConcurrent(t *testing.T, dsn string) {
	stores := []*store.Store{open(t, dsn), open(t, dsn)}
	ensureUnit(t, stores[0], "u")
	const limit, tries = 5, 32
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok int
	)
	for i := range tries {
		wg.Go(func() {
			a := alloc("u", store.StatusKindKey, fmt.Sprintf("k%d", i), 2, 1000)
			a.Limit, a.Window = limit, time.Hour
			_, err := stores[i%2].AllocateStatus(context.Background(), a)
			switch {
			case err == nil:
				mu.Lock()
				ok++
				mu.Unlock()
			case !errors.Is(err, store.ErrQuota):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok != limit {
		t.Errorf("%d allocations succeeded, want %d", ok, limit)
	}
}
