package store_test

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"testing/fstest"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wsca/wsca/internal/proccpu"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
)

func TestEvidence(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, dsn string)
	}{
		{"Sequence", testEvidenceSequence},
		{"ConcurrentInstances", testEvidenceConcurrent},
		{"Truncated", testEvidenceTruncated},
		{"Checkpoints", testEvidenceCheckpoints},
		{"SignatureInNonceStatement", testEvidenceInNonce},
		{"UpgradeFrom0010", testEvidenceUpgrade},
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

// memHashes is a tlog kept in memory, the independent reference.
type memHashes []tlog.Hash

func (m *memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = (*m)[x]
	}
	return out, nil
}

// reference returns the root of the tree of leaves computed in memory.
func reference(t *testing.T, leaves [][]byte) tlog.Hash {
	t.Helper()
	var m memHashes
	for i, l := range leaves {
		hs, err := tlog.StoredHashes(int64(i), l, &m)
		if err != nil {
			t.Fatal(err)
		}
		m = append(m, hs...)
	}
	root, err := tlog.TreeHash(int64(len(leaves)), &m)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// sequenced reads every sequenced leaf in index order.
func sequenced(t *testing.T, s *store.Store, n int64) [][]byte {
	t.Helper()
	var out [][]byte
	for i := range n {
		l, err := s.GetEvidenceLeaf(t.Context(), i)
		if err != nil {
			t.Fatalf("leaf %d: %v", i, err)
		}
		out = append(out, l)
	}
	if _, err := s.GetEvidenceLeaf(t.Context(), n); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("leaf past the tree: %v", err)
	}
	return out
}

// testEvidenceSequence: batches give leaves their indices in insert order;
// the stored tree's root and its proofs check against tlog in memory.
func testEvidenceSequence(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	var leaves [][]byte
	for i := range 23 {
		l := fmt.Appendf(nil, "event %d", i)
		leaves = append(leaves, l)
		if err := s.AppendEvent(ctx, l, at(0)); err != nil {
			t.Fatal(err)
		}
	}
	for want := int64(5); ; want += 5 {
		tree, n, err := s.SequenceEvidence(ctx, 5)
		if err != nil {
			t.Fatal(err)
		}
		if want > 23 {
			want = 23
		}
		if tree.Size != want || tree.Root != reference(t, leaves[:want]) {
			t.Fatalf("tree %d after a batch of %d, want %d", tree.Size, n, want)
		}
		if n == 0 {
			break
		}
	}
	got := sequenced(t, s, 23)
	for i := range got {
		if string(got[i]) != string(leaves[i]) {
			t.Fatalf("leaf %d = %q", i, got[i])
		}
	}
	tree, _ := s.GetEvidenceTree(ctx)
	for i := range int64(23) {
		p, err := tlog.ProveRecord(23, i, s.EvidenceHashes(ctx))
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(p, 23, tree.Root, i, tlog.RecordHash(leaves[i])); err != nil {
			t.Fatalf("inclusion %d: %v", i, err)
		}
	}
	for old := int64(1); old <= 23; old++ {
		p, err := tlog.ProveTree(23, old, s.EvidenceHashes(ctx))
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckTree(p, 23, tree.Root, old, reference(t, leaves[:old])); err != nil {
			t.Fatalf("consistency %d: %v", old, err)
		}
	}
	if err := s.AppendEvent(ctx, nil, at(0)); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("empty leaf: %v", err)
	}
	if n, _ := s.CountPendingEvidence(ctx); n != 0 {
		t.Fatalf("%d pending", n)
	}
}

// testEvidenceConcurrent: two instances (two stores on one database) append
// and sequence at once; the tree holds every event exactly once.
func testEvidenceConcurrent(t *testing.T, dsn string) {
	a, b := open(t, dsn), open(t, dsn)
	ctx := t.Context()
	const writers, per = 4, 40
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := []*store.Store{a, b}[w%2]
			for i := range per {
				if err := s.AppendEvent(ctx, fmt.Appendf(nil, "w%d-%d", w, i), at(0)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var seq sync.WaitGroup
	for _, s := range []*store.Store{a, b} {
		seq.Add(1)
		go func() {
			defer seq.Done()
			for {
				if _, _, err := s.SequenceEvidence(ctx, 7); err != nil {
					t.Error(err)
					return
				}
				// A sequencer runs every few milliseconds, not in a tight
				// loop: on SQLite a loop holding the write lock back to
				// back starves the appends past their busy timeout.
				select {
				case <-done:
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	seq.Wait()
	if _, _, err := a.SequenceEvidence(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	tree, err := b.GetEvidenceTree(ctx)
	if err != nil || tree.Size != writers*per {
		t.Fatalf("tree %d, %v", tree.Size, err)
	}
	leaves := sequenced(t, a, tree.Size)
	seen := map[string]bool{}
	for _, l := range leaves {
		if seen[string(l)] {
			t.Fatalf("%q twice", l)
		}
		seen[string(l)] = true
	}
	if tree.Root != reference(t, leaves) {
		t.Fatal("root is not the leaves' root")
	}
}

// testEvidenceTruncated: a tree record set back (a truncation) is found
// by the next batch: its indices are taken.
func testEvidenceTruncated(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	for i := range 4 {
		if err := s.AppendEvent(ctx, fmt.Appendf(nil, "e%d", i), at(0)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.SequenceEvidence(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := store.RawDB(s).ExecContext(ctx, `UPDATE evidence_tree SET size = 2`); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvent(ctx, []byte("next"), at(0)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SequenceEvidence(ctx, 10); !errors.Is(err, store.ErrEvidenceIntegrity) {
		t.Fatalf("sequence over a set-back tree: %v", err)
	}
	// A missing hash is an integrity failure too.
	if _, err := store.RawDB(s).ExecContext(ctx, `DELETE FROM evidence_hashes WHERE hash_index = 0`); err != nil {
		t.Fatal(err)
	}
	if _, err := tlog.ProveRecord(4, 1, s.EvidenceHashes(ctx)); !errors.Is(err, store.ErrEvidenceIntegrity) {
		t.Fatalf("proof over a missing hash: %v", err)
	}
}

func testEvidenceCheckpoints(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	if _, err := s.LatestEvidenceCheckpoint(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("none yet: %v", err)
	}
	for _, n := range []int64{3, 9, 5} {
		if err := s.PutEvidenceCheckpoint(ctx, store.EvidenceCheckpoint{Size: n, Note: fmt.Appendf(nil, "note %d", n), CreatedAt: at(time.Duration(n) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutEvidenceCheckpoint(ctx, store.EvidenceCheckpoint{Size: 9, Note: []byte("other"), CreatedAt: at(0)}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second checkpoint of a size: %v", err)
	}
	c, err := s.LatestEvidenceCheckpoint(ctx)
	if err != nil || c.Size != 9 || string(c.Note) != "note 9" || !c.CreatedAt.Equal(at(9*time.Second)) {
		t.Fatalf("latest = %+v, %v", c, err)
	}
}

// testEvidenceInNonce: the signature's event is appended with the nonce
// (one statement on PostgreSQL, one transaction on SQLite) only when the
// nonce is spent, the session has no task and the key is an active key of
// the session's active unit.
func testEvidenceInNonce(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	mustRecord(t, s, "u")
	mustRecord(t, s, "v")
	mine := newKey(t, "u", "0123456789abcdef0123456789abcdef", at(0))
	theirs := newKey(t, "v", "fedcba9876543210fedcba9876543210", at(0))
	retired := newKey(t, "u", "00112233445566778899aabbccddeeff", at(0))
	mustInsertKey(t, s, mine)
	mustInsertKey(t, s, theirs)
	mustInsertKey(t, s, retired)
	if err := s.SetKeyState(ctx, retired.KID, store.KeyDestroying); err != nil {
		t.Fatal(err)
	}
	mustSession(t, s, "u", "s")
	if err := s.VerifySession(ctx, hash("s"), []byte("k"), at(10*time.Minute), at(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, store.Session{IDHash: hash("tasked"), UnitID: "u", Context: "hsm", State: store.SessionVerified,
		Secret: []byte("x"), Task: "sign:00", UsesLeft: store.Unlimited, CreatedAt: at(0), ExpiresAt: at(time.Minute), RecordNonce: []byte("nonce-u-rec")}); err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		name, session, kid string
		leaf               []byte
		logged             bool
	}{
		{"own key", "s", mine.KID, []byte("leaf"), true},
		{"no leaf", "s", mine.KID, nil, false},
		{"another unit's key", "s", theirs.KID, []byte("leaf"), false},
		{"key not active", "s", retired.KID, []byte("leaf"), false},
		{"session with a task", "tasked", mine.KID, []byte("leaf"), false},
	} {
		before := countRows(t, s, "evidence_events")
		u, err := s.UseNonceInSessionEvent(ctx, hash(fmt.Sprint("n", i)), at(time.Hour), hash(tc.session), at(0), tc.kid, tc.leaf)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		added := countRows(t, s, "evidence_events") - before
		if u.Key.Logged != tc.logged || (added == 1) != tc.logged || added > 1 {
			t.Fatalf("%s: logged %v, %d events appended, want %v", tc.name, u.Key.Logged, added, tc.logged)
		}
		if !u.KeyFound || u.Key.UnitID == "" {
			t.Fatalf("%s: the key's access record was not read: %+v", tc.name, u)
		}
	}
	// A replayed nonce, or a session that is not valid, appends nothing.
	before := countRows(t, s, "evidence_events")
	if _, err := s.UseNonceInSessionEvent(ctx, hash("n0"), at(time.Hour), hash("s"), at(0), mine.KID, []byte("leaf")); !errors.Is(err, store.ErrExists) {
		t.Fatalf("replay: %v", err)
	}
	if _, err := s.UseNonceInSessionEvent(ctx, hash("fresh"), at(time.Hour), hash("no such session"), at(0), mine.KID, []byte("leaf")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no session: %v", err)
	}
	if countRows(t, s, "evidence_events") != before {
		t.Fatal("a refused nonce appended an event")
	}
}

// migrationsUpTo returns the embedded migrations of version ≤ v.
func migrationsUpTo(t testing.TB, v int) fs.FS {
	t.Helper()
	embedded := store.EmbeddedMigrations()
	entries, err := fs.ReadDir(embedded, ".")
	if err != nil {
		t.Fatal(err)
	}
	m := fstest.MapFS{}
	for _, e := range entries {
		if e.Name() > fmt.Sprintf("%04d_~", v) || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		b, err := fs.ReadFile(embedded, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = &fstest.MapFile{Data: b}
	}
	return m
}

// testEvidenceUpgrade: a log stored by schema 0010 (leaf_index on the
// events) keeps its leaves at their indices and its pending events, in
// insert order, through migration 0011, and grows on.
func testEvidenceUpgrade(t *testing.T, dsn string) {
	ctx := t.Context()
	old := open(t, dsn, store.WithMigrations(migrationsUpTo(t, 10)))
	if v, err := old.SchemaVersion(ctx); err != nil || v != 10 {
		t.Fatalf("schema %d, %v", v, err)
	}
	db := store.RawDB(old)
	// Insert order: a sequenced, a pending (committed late), two
	// sequenced, a pending.
	rows := []struct {
		leaf  string
		index int64 // -1: pending
	}{{"s0", 0}, {"pA", -1}, {"s1", 1}, {"s2", 2}, {"pB", -1}}
	var m memHashes
	for _, r := range rows {
		var idx any
		if r.index >= 0 {
			idx = r.index
			hs, err := tlog.StoredHashes(r.index, []byte(r.leaf), &m)
			if err != nil {
				t.Fatal(err)
			}
			m = append(m, hs...)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO evidence_events (leaf, created_at, leaf_index) VALUES ($1, 0, $2)`, []byte(r.leaf), idx); err != nil {
			t.Fatal(err)
		}
	}
	for i, h := range m {
		if _, err := db.ExecContext(ctx, `INSERT INTO evidence_hashes (hash_index, hash) VALUES ($1, $2)`, i, h[:]); err != nil {
			t.Fatal(err)
		}
	}
	root, err := tlog.TreeHash(3, &m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE evidence_tree SET size = 3, root = $1`, root[:]); err != nil {
		t.Fatal(err)
	}
	s := open(t, dsn)
	if n, err := s.CountPendingEvidence(ctx); err != nil || n != 2 {
		t.Fatalf("%d pending after the upgrade, %v", n, err)
	}
	if tree, err := s.GetEvidenceTree(ctx); err != nil || tree.Size != 3 || tree.Root != root {
		t.Fatalf("tree %+v, %v", tree, err)
	}
	if err := s.AppendEvent(ctx, []byte("new"), at(0)); err != nil {
		t.Fatal(err)
	}
	if tree, n, err := s.SequenceEvidence(ctx, 10); err != nil || n != 3 || tree.Size != 6 {
		t.Fatalf("sequenced %d, tree %+v, %v", n, tree, err)
	}
	want := []string{"s0", "s1", "s2", "pA", "pB", "new"}
	var leaves [][]byte
	for i, l := range sequenced(t, s, 6) {
		if string(l) != want[i] {
			t.Fatalf("leaf %d = %q, want %q", i, l, want[i])
		}
		leaves = append(leaves, l)
	}
	if tree, _ := s.GetEvidenceTree(ctx); tree.Root != reference(t, leaves) {
		t.Fatal("root is not the leaves' root")
	}
}

// BenchmarkEvidence: appends (the hot path, in parallel) and the
// sequencer (batches of 1000) on each backend.
func BenchmarkEvidence(b *testing.B) {
	leaf := make([]byte, 120)
	for _, be := range testenv.StoreBackends() {
		b.Run(be.Name+"/append", func(b *testing.B) {
			s := open(b, be.DSN(b))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.AppendEvent(b.Context(), leaf, at(0)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run(be.Name+"/sequence", func(b *testing.B) {
			s := open(b, be.DSN(b))
			for range b.N {
				if err := s.AppendEvent(b.Context(), leaf, at(0)); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for {
				_, n, err := s.SequenceEvidence(b.Context(), 1000)
				if err != nil {
					b.Fatal(err)
				}
				if n == 0 {
					break
				}
			}
		})
	}
}

// storeCPU is this process's CPU and, on PostgreSQL, that of the
// backends serving s's database (from /proc, in ticks of 10 ms: use
// thousands of operations).
func storeCPU(b *testing.B, s *store.Store) time.Duration {
	b.Helper()
	self, err := proccpu.Self()
	if err != nil {
		b.Skipf("no CPU time here: %v", err)
	}
	if s.Backend() != store.Postgres {
		return self
	}
	rows, err := store.RawDB(s).QueryContext(b.Context(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var pids []int
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		pids = append(pids, pid)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return self + proccpu.Proc{}.Sum(pids...)
}

// BenchmarkEvidenceAppendSchema: the CPU of one append (AppendEvent: the
// same statement on both schemas) on schema 0010 (leaf_index on the
// events, with its UNIQUE index and the partial pending index) and on the
// latest (0011: the queue under its primary key alone), with the database's
// CPU on PostgreSQL, in alternating batches within one run. Nothing is
// sequenced: the appends alone.
func BenchmarkEvidenceAppendSchema(b *testing.B) {
	const rounds = 8
	leaf := make([]byte, 120)
	for _, be := range testenv.StoreBackends() {
		b.Run(be.Name, func(b *testing.B) {
			stores := [2]*store.Store{open(b, be.DSN(b), store.WithMigrations(migrationsUpTo(b, 10))), open(b, be.DSN(b))}
			var cpu [2]time.Duration
			b.ResetTimer()
			for r := range rounds {
				n := (r+1)*b.N/rounds - r*b.N/rounds
				for j := range 2 {
					i := (r + j) % 2
					c0 := storeCPU(b, stores[i])
					for range n {
						if err := stores[i].AppendEvent(b.Context(), leaf, at(0)); err != nil {
							b.Fatal(err)
						}
					}
					cpu[i] += storeCPU(b, stores[i]) - c0
				}
			}
			b.StopTimer()
			per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) }
			b.ReportMetric(per(cpu[0]), "schema10-cpu-ns/op")
			b.ReportMetric(per(cpu[1]), "schema11-cpu-ns/op")
			b.ReportMetric(per(cpu[1])/per(cpu[0]), "11/10")
		})
	}
}

// BenchmarkNonceEvent: what the signature's event adds to the replay
// check of a sign_ecdsa (UseNonceInSessionEvent with a leaf against none),
// and the issue-6 floor's plain nonce insert (UseNonce) beside both: CPU
// per call, this process's and, on PostgreSQL, the database's, in
// alternating batches within one run. Nothing is sequenced.
func BenchmarkNonceEvent(b *testing.B) {
	const rounds = 8
	leaf := make([]byte, 120)
	for _, be := range testenv.StoreBackends() {
		b.Run(be.Name, func(b *testing.B) {
			s := open(b, be.DSN(b))
			ctx := b.Context()
			mustRecord(b, s, "u")
			k := newKey(b, "u", "0123456789abcdef0123456789abcdef", at(0))
			mustInsertKey(b, s, k)
			mustSession(b, s, "u", "s")
			if err := s.VerifySession(ctx, hash("s"), []byte("k"), at(10*time.Minute), at(0)); err != nil {
				b.Fatal(err)
			}
			var cpu [3]time.Duration // [0]: with the event, [1]: without, [2]: plain UseNonce
			var nonce [store.HashSize]byte
			seq := 0
			b.ResetTimer()
			for r := range rounds {
				n := (r+1)*b.N/rounds - r*b.N/rounds
				for j := range 3 {
					i := (r + j) % 3
					l := leaf
					if i == 1 {
						l = nil
					}
					c0 := storeCPU(b, s)
					for range n {
						seq++
						copy(nonce[:], fmt.Sprintf("%032d", seq))
						if i == 2 {
							if err := s.UseNonce(ctx, nonce[:], at(time.Hour)); err != nil {
								b.Fatal(err)
							}
							continue
						}
						u, err := s.UseNonceInSessionEvent(ctx, nonce[:], at(time.Hour), hash("s"), at(0), k.KID, l)
						if err != nil || u.Key.Logged != (i == 0) {
							b.Fatalf("logged %v, %v", u.Key.Logged, err)
						}
					}
					cpu[i] += storeCPU(b, s) - c0
				}
			}
			b.StopTimer()
			per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) }
			b.ReportMetric(per(cpu[0]), "event-cpu-ns/op")
			b.ReportMetric(per(cpu[1]), "none-cpu-ns/op")
			b.ReportMetric(per(cpu[0])-per(cpu[1]), "added-cpu-ns/op")
			b.ReportMetric(per(cpu[2]), "plain-cpu-ns/op")
		})
	}
}
