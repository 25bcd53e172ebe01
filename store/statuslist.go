package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Status values of status list entries (draft-ietf-oauth-status-list-21
// §7.1; the statuslist package names them too).
const (
	StatusValid     uint8 = 0
	StatusInvalid   uint8 = 1
	StatusSuspended uint8 = 2
)

// StatusKind says what a status entry is the status of.
type StatusKind string

const (
	// StatusKindWIA is a unit's wallet instance attestation.
	StatusKindWIA StatusKind = "wia"
	// StatusKindKey is one key's attestation (key_storage_status).
	StatusKindKey StatusKind = "key"
)

// StatusListState is the lifecycle state of a status list.
type StatusListState string

const (
	// StatusListActive lists receive new entries.
	StatusListActive StatusListState = "active"
	// StatusListFull lists have handed out every entry and are still
	// published.
	StatusListFull StatusListState = "full"
	// StatusListRetired lists are no longer published (HTTP 410).
	StatusListRetired StatusListState = "retired"
)

// Status token formats.
const (
	StatusFormatJWT = "jwt"
	StatusFormatCWT = "cwt"
)

// StatusList is a status list shard.
type StatusList struct {
	ID          string
	Bits        int
	Size        int64
	CreatedAt   time.Time
	State       StatusListState
	NextCounter int64
	// Version grows with every status change of the list.
	Version int64
}

// StatusChange is an entry's status as of seq (the list version that set
// it).
type StatusChange struct {
	Index  int64
	Status uint8
	Seq    int64
}

// StatusEntry is an allocated entry.
type StatusEntry struct {
	ListID string
	// Counter is the allocation counter; Index = permutation(Counter) is
	// what referenced tokens carry.
	Counter, Index int64
}

// StatusAllocation asks [Store.AllocateStatus] for an entry.
type StatusAllocation struct {
	Unit string
	Kind StatusKind
	KID  string // for StatusKindKey; empty for StatusKindWIA
	// Attested, for a key attestation's entry, are all the keys it names
	// (KID among them), recorded with the entry in its transaction (see
	// RecordAttestedKeys).
	Attested []string
	// Pool is the number of lists kept active (K); Size and Bits are those
	// of a list created when fewer than Pool are active.
	Pool int
	Size int64
	Bits int
	// Index maps a list's allocation counter to the published index: a
	// bijection of [0,size) (statuslist.Permutation under the list's key).
	// The store never sees the key.
	Index func(listID string, size int64, counter int64) (int64, error)
	// Rand supplies the list ids and the choice of list; nil means
	// crypto/rand.
	Rand io.Reader
	At   time.Time
	// Limit, when above 0, is how many entries the unit may be given
	// within Window before At; one more fails with [ErrQuota].
	Limit  int
	Window time.Duration
}

// lockUnit reads the unit's state in a transaction, locking its row on
// PostgreSQL (FOR NO KEY UPDATE, as the UPDATE of a state change takes): a
// state change that committed first is seen here, and one that comes later
// waits for this transaction (for a status allocation: and then sets the
// new entry too, SetUnitStateBy), and two such transactions for one unit
// take turns (so an allocation Limit holds across instances). On SQLite
// the transaction holds the write lock already.
func (s *Store) lockUnit(ctx context.Context, tx *sql.Tx, unit string) (UnitState, error) {
	q := `SELECT state FROM units WHERE id = $1`
	if s.backend == Postgres {
		q += ` FOR NO KEY UPDATE`
	}
	var st string
	err := tx.QueryRowContext(ctx, q, unit).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("%w: %q", ErrUnitNotFound, unit)
	}
	if err != nil {
		return "", fmt.Errorf("store: unit state: %w", err)
	}
	return UnitState(st), nil
}

// maxAllocateTries bounds the retries when the chosen list fills up
// between reading and taking its counter.
const maxAllocateTries = 8

// AllocateStatus hands out one entry (status VALID) for a unit's WIA or
// key. It keeps Pool lists active, creating lists (with random ids) while
// fewer are, and picks among the active ones by the power of two choices:
// two at random, the less full wins, so lists fill evenly and an entry's
// list says little about when it was issued. The list's counter is taken
// by a conditional UPDATE, so concurrent allocations, on any number of
// instances, never share a counter, hence never an index; a list whose
// last counter is taken becomes full. The unit must be active
// ([ErrUnitNotActive], [ErrUnitNotFound]) and, with a Limit, have been
// given fewer than Limit entries within Window ([ErrQuota]); both are
// decided in the allocation's transaction with the unit's row locked.
func (s *Store) AllocateStatus(ctx context.Context, a StatusAllocation) (StatusEntry, error) {
	if err := a.check(); err != nil {
		return StatusEntry{}, err
	}
	at, err := toMicros("status entry", "time", a.At)
	if err != nil {
		return StatusEntry{}, err
	}
	rnd := a.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	for range maxAllocateTries {
		e, ok, err := s.tryAllocate(ctx, a, rnd, at)
		if err != nil {
			return StatusEntry{}, err
		}
		if ok {
			return e, nil
		}
	}
	return StatusEntry{}, fmt.Errorf("store: allocate status: lists kept filling up, %d tries", maxAllocateTries)
}

func (a *StatusAllocation) check() error {
	if err := checkID("status entry", "unit", a.Unit); err != nil {
		return err
	}
	switch a.Kind {
	case StatusKindWIA:
		if a.KID != "" || len(a.Attested) > 0 {
			return invalidf("status entry", "a wia entry has no kid")
		}
	case StatusKindKey:
		if err := checkID("status entry", "kid", a.KID); err != nil {
			return err
		}
		for _, k := range a.Attested {
			if err := checkID("attested keys", "kid", k); err != nil {
				return err
			}
		}
	default:
		return invalidf("status entry", "unknown kind %q", a.Kind)
	}
	if a.Pool < 1 || a.Size < 2 || a.Index == nil {
		return invalidf("status entry", "pool %d, size %d, index function set %t", a.Pool, a.Size, a.Index != nil)
	}
	if a.Bits != 1 && a.Bits != 2 && a.Bits != 4 && a.Bits != 8 {
		return invalidf("status entry", "bits %d", a.Bits)
	}
	if a.Limit < 0 || (a.Limit > 0 && a.Window <= 0) {
		return invalidf("status entry", "limit %d per %v", a.Limit, a.Window)
	}
	return nil
}

// tryAllocate makes one attempt; ok is false when the chosen list filled
// up in between.
func (s *Store) tryAllocate(ctx context.Context, a StatusAllocation, rnd io.Reader, at int64) (StatusEntry, bool, error) {
	tx, done, err := s.begin(ctx)
	if err != nil {
		return StatusEntry{}, false, fmt.Errorf("store: allocate status: %w", err)
	}
	defer done()
	defer tx.Rollback()
	state, err := s.lockUnit(ctx, tx, a.Unit)
	if err != nil {
		return StatusEntry{}, false, err
	}
	if state != UnitActive {
		return StatusEntry{}, false, fmt.Errorf("%w: unit %q is %s", ErrUnitNotActive, a.Unit, state)
	}
	if a.Limit > 0 {
		var n int
		if err := tx.QueryRowContext(ctx,
			`SELECT count(*) FROM (SELECT 1 FROM status_entries WHERE unit_id = $1 AND created_at > $2 LIMIT $3) AS recent`,
			a.Unit, at-a.Window.Microseconds(), a.Limit).Scan(&n); err != nil {
			return StatusEntry{}, false, fmt.Errorf("store: allocate status: count: %w", err)
		}
		if n >= a.Limit {
			return StatusEntry{}, false, fmt.Errorf("%w: unit %q got %d status entries within %v", ErrQuota, a.Unit, n, a.Window)
		}
	}
	active, err := activeLists(ctx, tx)
	if err != nil {
		return StatusEntry{}, false, err
	}
	for len(active) < a.Pool {
		id, err := randomListID(rnd)
		if err != nil {
			return StatusEntry{}, false, err
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO status_lists (id, bits, size, created_at, state, next_counter, version)
			 VALUES ($1, $2, $3, $4, $5, 0, 0)`,
			id, a.Bits, a.Size, at, string(StatusListActive)); err != nil {
			return StatusEntry{}, false, fmt.Errorf("store: create status list: %w", err)
		}
		active = append(active, StatusList{ID: id, Bits: a.Bits, Size: a.Size, State: StatusListActive})
	}
	l, err := choose(active, rnd)
	if err != nil {
		return StatusEntry{}, false, err
	}
	var next int64
	err = tx.QueryRowContext(ctx,
		`UPDATE status_lists
		 SET next_counter = next_counter + 1,
		     state = CASE WHEN next_counter + 1 >= size THEN $2 ELSE state END
		 WHERE id = $1 AND state = $3 AND next_counter < size
		 RETURNING next_counter`,
		l.ID, string(StatusListFull), string(StatusListActive)).Scan(&next)
	if errors.Is(err, sql.ErrNoRows) {
		return StatusEntry{}, false, nil
	}
	if err != nil {
		return StatusEntry{}, false, fmt.Errorf("store: allocate status: %w", err)
	}
	e := StatusEntry{ListID: l.ID, Counter: next - 1}
	if e.Index, err = a.Index(l.ID, l.Size, e.Counter); err != nil {
		return StatusEntry{}, false, fmt.Errorf("store: allocate status: index: %w", err)
	}
	if e.Index < 0 || e.Index >= l.Size {
		return StatusEntry{}, false, invalidf("status entry", "index %d outside [0,%d)", e.Index, l.Size)
	}
	var kid any
	if a.KID != "" {
		kid = a.KID
	}
	_, err = tx.ExecContext(ctx,
		`INSERT INTO status_entries (list_id, idx, unit_id, kind, kid, status, seq, updated_at, created_at)
		 VALUES ($1, $2, $3, $4, $5, 0, 0, $6, $6)`,
		e.ListID, e.Index, a.Unit, string(a.Kind), kid, at)
	if classify(err) == uniqueViolation {
		// Only an Index function that is not a bijection gets here.
		return StatusEntry{}, false, fmt.Errorf("%w: index %d of list %q", ErrExists, e.Index, e.ListID)
	}
	if err != nil {
		return StatusEntry{}, false, fmt.Errorf("store: allocate status: %w", err)
	}
	if err := recordAttested(ctx, tx, e.ListID, e.Index, a.Attested); err != nil {
		return StatusEntry{}, false, fmt.Errorf("store: allocate status: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return StatusEntry{}, false, fmt.Errorf("store: allocate status: commit: %w", err)
	}
	return e, true, nil
}

func activeLists(ctx context.Context, tx *sql.Tx) ([]StatusList, error) {
	return queryStatusLists(ctx, tx, `state = $1`, string(StatusListActive))
}

// rowsQueryer is what *sql.DB and *sql.Tx have in common for reads of
// several rows.
type rowsQueryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryStatusLists returns the lists matching where (its argument is $1),
// by id.
func queryStatusLists(ctx context.Context, q rowsQueryer, where string, arg any) ([]StatusList, error) {
	rows, err := q.QueryContext(ctx,
		`SELECT id, bits, size, created_at, state, next_counter, version
		 FROM status_lists WHERE `+where+` ORDER BY id`, arg)
	if err != nil {
		return nil, fmt.Errorf("store: status lists: %w", err)
	}
	defer rows.Close()
	var ls []StatusList
	for rows.Next() {
		l, err := scanStatusList(rows)
		if err != nil {
			return nil, fmt.Errorf("store: status lists: %w", err)
		}
		ls = append(ls, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: status lists: %w", err)
	}
	return ls, nil
}

// choose picks two lists at random (with replacement) and returns the less
// full one.
func choose(ls []StatusList, rnd io.Reader) (StatusList, error) {
	var b [16]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return StatusList{}, fmt.Errorf("store: allocate status: random: %w", err)
	}
	n := uint64(len(ls))
	x := ls[binary.BigEndian.Uint64(b[:8])%n]
	y := ls[binary.BigEndian.Uint64(b[8:])%n]
	// Compare fill ratios without division: x.next/x.size ≤ y.next/y.size.
	if x.NextCounter*y.Size <= y.NextCounter*x.Size {
		return x, nil
	}
	return y, nil
}

// randomListID returns 128 random bits in base32 (26 characters).
func randomListID(rnd io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", fmt.Errorf("store: status list id: %w", err)
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	out := make([]byte, 0, 26)
	var acc uint32
	bits := 0
	for _, c := range b {
		acc = acc<<8 | uint32(c)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out = append(out, alphabet[acc>>bits&31])
		}
	}
	out = append(out, alphabet[acc<<(5-bits)&31])
	return string(out), nil
}

// execer is what *sql.DB and *sql.Tx have in common for writes.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// UnitStatus is the status entries of a unit in state st carry.
func UnitStatus(st UnitState) uint8 {
	switch st {
	case UnitRevoked:
		return StatusInvalid
	case UnitSuspended:
		return StatusSuspended
	}
	return StatusValid
}

// SetUnitStatuses sets every status entry of a unit (its WIA and all its
// keys) to status in one transaction and returns how many changed. An
// entry at INVALID keeps it: revocation is final.
func (s *Store) SetUnitStatuses(ctx context.Context, unit string, status uint8, at time.Time) (int64, error) {
	if err := checkID("unit", "id", unit); err != nil {
		return 0, err
	}
	us, err := toMicros("status entry", "time", at)
	if err != nil {
		return 0, err
	}
	tx, done, err := s.begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: set unit statuses: %w", err)
	}
	defer done()
	defer tx.Rollback()
	n, err := s.setUnitStatuses(ctx, tx, unit, status, us)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: set unit statuses: commit: %w", err)
	}
	return n, nil
}

// setUnitStatuses is SetUnitStatuses inside the caller's transaction (at
// in unix microseconds), so that a unit's state and its statuses change
// together. First it bumps the version of every list the change touches
// (taking their row locks, so changes of one list commit in version
// order), then it sets every entry in one statement, stamping each with
// its list's new version as seq.
func (s *Store) setUnitStatuses(ctx context.Context, q execer, unit string, status uint8, at int64) (int64, error) {
	return s.setStatuses(ctx, q, `unit_id = $1`, []any{unit}, status, at)
}

// setStatuses changes the entries matching where (its arguments are $1…)
// that are neither revoked nor already at status. On PostgreSQL the lists'
// rows are first locked in id order, so that two changes touching the same
// lists cannot deadlock; SQLite has one writer at a time.
func (s *Store) setStatuses(ctx context.Context, q execer, where string, args []any, status uint8, at int64) (int64, error) {
	k := len(args)
	sArg, tArg := fmt.Sprintf("$%d", k+1), fmt.Sprintf("$%d", k+2)
	match := where + ` AND status <> 1 AND status <> ` + sArg
	if s.backend == Postgres {
		if _, err := q.ExecContext(ctx,
			`SELECT id FROM status_lists
			 WHERE id IN (SELECT list_id FROM status_entries WHERE `+match+`)
			 ORDER BY id FOR UPDATE`,
			append(args, int(status))...); err != nil {
			return 0, fmt.Errorf("store: set statuses: lock: %w", err)
		}
	}
	if _, err := q.ExecContext(ctx,
		`UPDATE status_lists SET version = version + 1
		 WHERE id IN (SELECT list_id FROM status_entries WHERE `+match+`)`,
		append(args, int(status))...); err != nil {
		return 0, fmt.Errorf("store: set statuses: %w", err)
	}
	res, err := q.ExecContext(ctx,
		`UPDATE status_entries
		 SET status = `+sArg+`, updated_at = `+tArg+`,
		     seq = (SELECT version FROM status_lists WHERE status_lists.id = status_entries.list_id)
		 WHERE `+match,
		append(args, int(status), at)...)
	if err != nil {
		return 0, fmt.Errorf("store: set statuses: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: set statuses: %w", err)
	}
	return n, nil
}

// SetKeyStatus sets the status entries of one key of a unit (INVALID when
// the key is destroyed) and returns how many changed. A revoked entry
// keeps INVALID.
func (s *Store) SetKeyStatus(ctx context.Context, unit, kid string, status uint8, at time.Time) (int64, error) {
	if err := checkID("unit", "id", unit); err != nil {
		return 0, err
	}
	if err := checkID("key", "kid", kid); err != nil {
		return 0, err
	}
	us, err := toMicros("status entry", "time", at)
	if err != nil {
		return 0, err
	}
	tx, done, err := s.begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: set key status: %w", err)
	}
	defer done()
	defer tx.Rollback()
	// The entries allocated for the key, and those of attestations that
	// also name it (RecordAttestedKeys).
	n, err := s.setStatuses(ctx, tx, `unit_id = $1 AND kind = $2 AND (kid = $3 OR EXISTS (
		SELECT 1 FROM attested_keys a WHERE a.list_id = status_entries.list_id AND a.idx = status_entries.idx AND a.kid = $3))`,
		[]any{unit, string(StatusKindKey), kid}, status, us)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: set key status: commit: %w", err)
	}
	return n, nil
}

// RecordAttestedKeys records the keys a key attestation names, by its
// status entry, so that destroying any of them invalidates it
// (SetKeyStatus).
func (s *Store) RecordAttestedKeys(ctx context.Context, listID string, idx int64, kids []string) error {
	if err := checkID("status entry", "list id", listID); err != nil {
		return err
	}
	if len(kids) == 0 {
		return invalidf("attested keys", "no kid")
	}
	for _, kid := range kids {
		if err := checkID("attested keys", "kid", kid); err != nil {
			return err
		}
	}
	return s.inTx(ctx, "record attested keys", func(tx *sql.Tx) error {
		return recordAttested(ctx, tx, listID, idx, kids)
	})
}

// recordAttested inserts the attested keys of an entry in tx.
func recordAttested(ctx context.Context, tx *sql.Tx, listID string, idx int64, kids []string) error {
	for _, kid := range kids {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO attested_keys (list_id, idx, kid) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			listID, idx, kid); err != nil {
			return err
		}
	}
	return nil
}

// UnitStatusEntries returns the entries of a unit, for attestations that
// carry them: kind, kid ("" for the WIA), list and index.
func (s *Store) UnitStatusEntries(ctx context.Context, unit string) ([]UnitStatusEntry, error) {
	if err := checkID("unit", "id", unit); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT kind, COALESCE(kid, ''), list_id, idx, status FROM status_entries
		 WHERE unit_id = $1 ORDER BY kind, kid, list_id, idx`, unit)
	if err != nil {
		return nil, fmt.Errorf("store: unit status entries: %w", err)
	}
	defer rows.Close()
	var es []UnitStatusEntry
	for rows.Next() {
		var e UnitStatusEntry
		var kind string
		if err := rows.Scan(&kind, &e.KID, &e.ListID, &e.Index, &e.Status); err != nil {
			return nil, fmt.Errorf("store: unit status entries: %w", err)
		}
		e.Kind = StatusKind(kind)
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: unit status entries: %w", err)
	}
	return es, nil
}

// UnitStatusEntry is one status entry of a unit.
type UnitStatusEntry struct {
	Kind   StatusKind
	KID    string
	ListID string
	Index  int64
	Status uint8
}

// StatusChangesSince returns the entries of a list changed after version
// seq, by seq. Changes of one list commit in seq order, so a publisher that
// applied everything up to the largest seq it saw misses nothing by asking
// from there next time.
func (s *Store) StatusChangesSince(ctx context.Context, listID string, seq int64) ([]StatusChange, error) {
	if err := checkID("status list", "id", listID); err != nil {
		return nil, err
	}
	return s.statusRows(ctx,
		`SELECT idx, status, seq FROM status_entries WHERE list_id = $1 AND seq > $2 ORDER BY seq, idx`,
		listID, seq)
}

// ListStatuses returns the entries of a list that are not VALID, and the
// version they are current as of (one statement, one snapshot), for a
// full build; continue with StatusChangesSince(version).
func (s *Store) ListStatuses(ctx context.Context, listID string) ([]StatusChange, int64, error) {
	if err := checkID("status list", "id", listID); err != nil {
		return nil, 0, err
	}
	rows, err := s.statusRows(ctx,
		`SELECT -1, 0, COALESCE(MAX(seq), 0) FROM status_entries WHERE list_id = $1
		 UNION ALL
		 SELECT idx, status, seq FROM status_entries WHERE list_id = $1 AND status <> 0`,
		listID)
	if err != nil {
		return nil, 0, err
	}
	var version int64
	out := rows[:0]
	for _, r := range rows {
		if r.Index == -1 {
			version = r.Seq
			continue
		}
		out = append(out, r)
	}
	return out, version, nil
}

func (s *Store) statusRows(ctx context.Context, query string, args ...any) ([]StatusChange, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: status entries: %w", err)
	}
	defer rows.Close()
	var cs []StatusChange
	for rows.Next() {
		var c StatusChange
		if err := rows.Scan(&c.Index, &c.Status, &c.Seq); err != nil {
			return nil, fmt.Errorf("store: status entries: %w", err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: status entries: %w", err)
	}
	return cs, nil
}

// GetStatusList returns a list, or [ErrNotFound].
func (s *Store) GetStatusList(ctx context.Context, id string) (StatusList, error) {
	if err := checkID("status list", "id", id); err != nil {
		return StatusList{}, err
	}
	l, err := scanStatusList(s.db.QueryRowContext(ctx,
		`SELECT id, bits, size, created_at, state, next_counter, version FROM status_lists WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return StatusList{}, fmt.Errorf("%w: status list %q", ErrNotFound, id)
	}
	if err != nil {
		return StatusList{}, fmt.Errorf("store: get status list: %w", err)
	}
	return l, nil
}

// StatusLists returns every list that is not retired, by id: what a
// publisher keeps published.
func (s *Store) StatusLists(ctx context.Context) ([]StatusList, error) {
	return queryStatusLists(ctx, s.db, `state <> $1`, string(StatusListRetired))
}

func scanStatusList(row scanner) (StatusList, error) {
	var (
		l       StatusList
		state   string
		created int64
	)
	if err := row.Scan(&l.ID, &l.Bits, &l.Size, &created, &state, &l.NextCounter, &l.Version); err != nil {
		return StatusList{}, err
	}
	l.State, l.CreatedAt = StatusListState(state), fromMicros(created)
	return l, nil
}

// RetireStatusList stops publishing a list that is full (once every token
// referring to it has expired): it is then served as gone, and
// [Store.PurgeRetiredStatusLists] may drop its entries.
func (s *Store) RetireStatusList(ctx context.Context, id string) error {
	if err := checkID("status list", "id", id); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx,
		`UPDATE status_lists SET state = $1 WHERE id = $2 AND state = $3`,
		string(StatusListRetired), id, string(StatusListFull))
	if err != nil {
		return fmt.Errorf("store: retire status list: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if _, gerr := s.GetStatusList(ctx, id); gerr != nil {
			return gerr
		}
		return fmt.Errorf("%w: status list %q is not full", ErrInvalid, id)
	}
	return nil
}

// PurgeRetiredStatusLists deletes the entries and tokens of retired lists
// and returns how many entries went. The list rows stay (a few bytes
// each), so their URIs keep answering 410 Gone rather than 404.
func (s *Store) PurgeRetiredStatusLists(ctx context.Context) (int64, error) {
	tx, done, err := s.begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: purge status lists: %w", err)
	}
	defer done()
	defer tx.Rollback()
	retired := `SELECT id FROM status_lists WHERE state = $1`
	if _, err := tx.ExecContext(ctx, `DELETE FROM status_tokens WHERE list_id IN (`+retired+`)`, string(StatusListRetired)); err != nil {
		return 0, fmt.Errorf("store: purge status lists: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM status_entries WHERE list_id IN (`+retired+`)`, string(StatusListRetired))
	if err != nil {
		return 0, fmt.Errorf("store: purge status lists: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: purge status lists: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: purge status lists: commit: %w", err)
	}
	return n, nil
}

// StatusToken is a signed status list token as served.
type StatusToken struct {
	ListID string
	Format string // StatusFormatJWT or StatusFormatCWT
	// Version is the list version the token shows.
	Version  int64
	IssuedAt time.Time
	ETag     string
	Token    []byte
}

// PutStatusToken stores a token unless a newer one (greater version, or
// the same version issued later) is stored, and reports whether it was
// stored. Instances publishing at once thus converge on the newest token.
func (s *Store) PutStatusToken(ctx context.Context, t StatusToken) (bool, error) {
	if err := checkID("status token", "list", t.ListID); err != nil {
		return false, err
	}
	if t.Format != StatusFormatJWT && t.Format != StatusFormatCWT {
		return false, invalidf("status token", "format %q", t.Format)
	}
	if len(t.Token) == 0 || t.ETag == "" || t.Version < 0 {
		return false, invalidf("status token", "empty token or etag, or negative version")
	}
	iat, err := toMicros("status token", "issued at", t.IssuedAt)
	if err != nil {
		return false, err
	}
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO status_tokens (list_id, format, version, issued_at, etag, token)
		 VALUES ($1, $2, $3, $4, $5, $6)
		 ON CONFLICT (list_id, format) DO UPDATE
		 SET version = excluded.version, issued_at = excluded.issued_at, etag = excluded.etag, token = excluded.token
		 WHERE status_tokens.version < excluded.version
		    OR (status_tokens.version = excluded.version AND status_tokens.issued_at < excluded.issued_at)`,
		t.ListID, t.Format, t.Version, iat, t.ETag, t.Token)
	if classify(err) == foreignKeyViolation {
		return false, fmt.Errorf("%w: status list %q", ErrNotFound, t.ListID)
	}
	if err != nil {
		return false, fmt.Errorf("store: put status token: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: put status token: %w", err)
	}
	return n == 1, nil
}

// GetStatusToken returns the stored token of a list in a format, or
// [ErrNotFound].
func (s *Store) GetStatusToken(ctx context.Context, listID, format string) (StatusToken, error) {
	if err := checkID("status token", "list", listID); err != nil {
		return StatusToken{}, err
	}
	t := StatusToken{ListID: listID, Format: format}
	var iat int64
	err := s.db.QueryRowContext(ctx,
		`SELECT version, issued_at, etag, token FROM status_tokens WHERE list_id = $1 AND format = $2`,
		listID, format).Scan(&t.Version, &iat, &t.ETag, &t.Token)
	if errors.Is(err, sql.ErrNoRows) {
		return StatusToken{}, fmt.Errorf("%w: %s token of status list %q", ErrNotFound, format, listID)
	}
	if err != nil {
		return StatusToken{}, fmt.Errorf("store: get status token: %w", err)
	}
	t.IssuedAt = fromMicros(iat)
	return t, nil
}
