package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// The evidence log (docs/evidence.md). Appending an event is one insert
// into the queue evidence_events, under its primary key alone;
// SequenceEvidence, run by one instance at a time under the lock of the
// evidence_tree row, moves pending events in batches into evidence_leaves
// at their leaf indices and stores the tree's hashes; checkpoints are kept
// as signed notes.

// MaxEvidenceLeaf bounds an event's leaf (the event package bounds it
// further).
const MaxEvidenceLeaf = 4 << 10

// ErrEvidenceIntegrity means the stored log does not add up: a hash or
// the tree's record was changed or removed outside wsca.
var ErrEvidenceIntegrity = errors.New("store: evidence log fails its integrity check")

// AppendEvent inserts an event's leaf into the queue, to be sequenced
// later. It is the hot path of every logged operation: one insert under
// one index, no lock held.
func (s *Store) AppendEvent(ctx context.Context, leaf []byte, at time.Time) error {
	if len(leaf) == 0 || len(leaf) > MaxEvidenceLeaf {
		return invalidf("evidence", "leaf of %d bytes", len(leaf))
	}
	created, err := toMicros("evidence", "created at", at)
	if err != nil {
		return err
	}
	if _, err := s.execPrepared(ctx, `INSERT INTO evidence_events (leaf, created_at) VALUES ($1, $2)`, bytes.Clone(leaf), created); err != nil {
		return fmt.Errorf("store: append event: %w", err)
	}
	return nil
}

// EvidenceTree is the sequenced tree: its size and root hash (the zero
// hash for the empty tree).
type EvidenceTree struct {
	Size int64
	Root tlog.Hash
}

// SequenceEvidence moves up to max pending events, oldest insert first,
// out of the queue to the next leaf indices, stores the tree's new hashes,
// size and root, and
// returns the tree and how many events it sequenced. One instance at a
// time sequences (the evidence_tree row is locked for the transaction:
// a row lock on PostgreSQL, the write lock on SQLite); appends go on
// meanwhile.
func (s *Store) SequenceEvidence(ctx context.Context, max int) (EvidenceTree, int, error) {
	if max < 1 {
		return EvidenceTree{}, 0, invalidf("evidence", "batch of %d", max)
	}
	tx, done, err := s.begin(ctx)
	if err != nil {
		return EvidenceTree{}, 0, fmt.Errorf("store: sequence evidence: %w", err)
	}
	defer done()
	defer tx.Rollback()
	var (
		size int64
		root []byte
	)
	// The no-op update takes the lock first, so two sequencers never read
	// the same size.
	if err := tx.QueryRowContext(ctx, `UPDATE evidence_tree SET size = size WHERE id = 1 RETURNING size, root`).Scan(&size, &root); err != nil {
		return EvidenceTree{}, 0, fmt.Errorf("store: sequence evidence: %w", err)
	}
	tree := EvidenceTree{Size: size}
	if size > 0 && len(root) != tlog.HashSize || size == 0 && len(root) != 0 {
		return EvidenceTree{}, 0, fmt.Errorf("%w: tree root of %d bytes", ErrEvidenceIntegrity, len(root))
	}
	copy(tree.Root[:], root)
	rows, err := tx.QueryContext(ctx, `SELECT id, leaf FROM evidence_events ORDER BY id LIMIT $1`, max)
	if err != nil {
		return EvidenceTree{}, 0, fmt.Errorf("store: sequence evidence: %w", err)
	}
	var (
		ids    []int64
		leaves [][]byte
	)
	for rows.Next() {
		var id int64
		var leaf []byte
		if err := rows.Scan(&id, &leaf); err != nil {
			rows.Close()
			return EvidenceTree{}, 0, fmt.Errorf("store: sequence evidence: %w", err)
		}
		ids, leaves = append(ids, id), append(leaves, leaf)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return EvidenceTree{}, 0, fmt.Errorf("store: sequence evidence: %w", err)
	}
	if len(ids) == 0 {
		return tree, 0, nil
	}
	// The new hashes, read back by later leaves of the batch before they
	// are written.
	added := make(map[int64]tlog.Hash)
	var order []int64
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		var missing []int64
		for i, x := range idx {
			if h, ok := added[x]; ok {
				out[i] = h
			} else {
				missing = append(missing, x)
			}
		}
		if len(missing) == 0 {
			return out, nil
		}
		got, err := readHashes(ctx, tx, missing)
		if err != nil {
			return nil, err
		}
		for i, x := range idx {
			if _, ok := added[x]; !ok {
				out[i], got = got[0], got[1:]
			}
		}
		return out, nil
	})
	for i, leaf := range leaves {
		hs, err := tlog.StoredHashes(size+int64(i), leaf, reader)
		if err != nil {
			return EvidenceTree{}, 0, fmt.Errorf("%w: %v", ErrEvidenceIntegrity, err)
		}
		first := tlog.StoredHashCount(size + int64(i))
		for j, h := range hs {
			added[first+int64(j)] = h
			order = append(order, first+int64(j))
		}
	}
	newSize := size + int64(len(leaves))
	newRoot, err := tlog.TreeHash(newSize, reader)
	if err != nil {
		return EvidenceTree{}, 0, fmt.Errorf("%w: %v", ErrEvidenceIntegrity, err)
	}
	if err := s.writeSequenced(ctx, tx, size, ids, leaves, order, added); err != nil {
		return EvidenceTree{}, 0, err
	}
	res, err := tx.ExecContext(ctx, `UPDATE evidence_tree SET size = $1, root = $2 WHERE id = 1 AND size = $3`, newSize, newRoot[:], size)
	if err != nil {
		return EvidenceTree{}, 0, fmt.Errorf("store: sequence evidence: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return EvidenceTree{}, 0, fmt.Errorf("%w: tree record changed under the lock", ErrEvidenceIntegrity)
	}
	if err := tx.Commit(); err != nil {
		return EvidenceTree{}, 0, fmt.Errorf("store: sequence evidence: %w", err)
	}
	return EvidenceTree{Size: newSize, Root: newRoot}, len(ids), nil
}

// writeSequenced stores a batch: the events move from the queue to their
// leaf indices, and the new hashes are written. PostgreSQL takes each as
// one statement over arrays; SQLite, in process, runs prepared statements
// per row. The leaves stored are the ones hashed (leaves[i] was read as
// the row of ids[i], under the tree's lock).
func (s *Store) writeSequenced(ctx context.Context, tx *sql.Tx, size int64, ids []int64, leaves [][]byte, order []int64, added map[int64]tlog.Hash) error {
	idx := make([]int64, len(ids))
	for i := range ids {
		idx[i] = size + int64(i)
	}
	hashes := make([][]byte, len(order))
	for i, x := range order {
		h := added[x]
		hashes[i] = h[:]
	}
	if s.backend == Postgres {
		res, err := tx.ExecContext(ctx, `WITH moved AS (
				DELETE FROM evidence_events e USING unnest($1::bigint[], $2::bigint[]) AS v(id, idx)
				WHERE e.id = v.id RETURNING v.idx, e.leaf)
			INSERT INTO evidence_leaves (leaf_index, leaf) SELECT idx, leaf FROM moved`, ids, idx)
		if err != nil {
			return sequenceErr(err)
		}
		if n, err := res.RowsAffected(); err != nil || n != int64(len(ids)) {
			return fmt.Errorf("%w: %d of %d events moved to the leaves", ErrEvidenceIntegrity, n, len(ids))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO evidence_hashes (hash_index, hash) SELECT * FROM unnest($1::bigint[], $2::bytea[])`, order, hashes); err != nil {
			return sequenceErr(err)
		}
		return nil
	}
	del, err := tx.PrepareContext(ctx, `DELETE FROM evidence_events WHERE id = $1`)
	if err != nil {
		return fmt.Errorf("store: sequence evidence: %w", err)
	}
	defer del.Close()
	leaf, err := tx.PrepareContext(ctx, `INSERT INTO evidence_leaves (leaf_index, leaf) VALUES ($1, $2)`)
	if err != nil {
		return fmt.Errorf("store: sequence evidence: %w", err)
	}
	defer leaf.Close()
	for i, id := range ids {
		res, err := del.ExecContext(ctx, id)
		if err != nil {
			return sequenceErr(err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("%w: event %d left the queue under the lock", ErrEvidenceIntegrity, id)
		}
		if _, err := leaf.ExecContext(ctx, idx[i], leaves[i]); err != nil {
			return sequenceErr(err)
		}
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO evidence_hashes (hash_index, hash) VALUES ($1, $2)`)
	if err != nil {
		return fmt.Errorf("store: sequence evidence: %w", err)
	}
	defer ins.Close()
	for i, x := range order {
		if _, err := ins.ExecContext(ctx, x, hashes[i]); err != nil {
			return sequenceErr(err)
		}
	}
	return nil
}

// sequenceErr: a hash or index already taken means the tree's record is
// behind the hashes (it was set back: a truncation).
func sequenceErr(err error) error {
	if classify(err) == uniqueViolation {
		return fmt.Errorf("%w: an index the tree says is free is taken", ErrEvidenceIntegrity)
	}
	return fmt.Errorf("store: sequence evidence: %w", err)
}

// readHashes reads stored hashes in the order asked; a missing one is an
// integrity failure.
func readHashes(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, idx []int64) ([]tlog.Hash, error) {
	if len(idx) == 0 {
		return nil, nil
	}
	var b strings.Builder
	args := make([]any, len(idx))
	b.WriteString(`SELECT hash_index, hash FROM evidence_hashes WHERE hash_index IN (`)
	for i, x := range idx {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(i+1))
		args[i] = x
	}
	b.WriteString(")")
	rows, err := q.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("store: read evidence hashes: %w", err)
	}
	defer rows.Close()
	got := make(map[int64]tlog.Hash, len(idx))
	for rows.Next() {
		var x int64
		var h []byte
		if err := rows.Scan(&x, &h); err != nil {
			return nil, fmt.Errorf("store: read evidence hashes: %w", err)
		}
		if len(h) != tlog.HashSize {
			return nil, fmt.Errorf("%w: hash %d of %d bytes", ErrEvidenceIntegrity, x, len(h))
		}
		got[x] = tlog.Hash(h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read evidence hashes: %w", err)
	}
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		h, ok := got[x]
		if !ok {
			return nil, fmt.Errorf("%w: hash %d missing", ErrEvidenceIntegrity, x)
		}
		out[i] = h
	}
	return out, nil
}

// EvidenceHashes returns a tlog.HashReader over the stored hashes, for
// proofs. Each ReadHashes is one query.
func (s *Store) EvidenceHashes(ctx context.Context) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return readHashes(ctx, s.db, idx) })
}

// GetEvidenceTree returns the sequenced tree's size and root.
func (s *Store) GetEvidenceTree(ctx context.Context) (EvidenceTree, error) {
	var t EvidenceTree
	var root []byte
	if err := s.db.QueryRowContext(ctx, `SELECT size, root FROM evidence_tree WHERE id = 1`).Scan(&t.Size, &root); err != nil {
		return EvidenceTree{}, fmt.Errorf("store: evidence tree: %w", err)
	}
	if t.Size > 0 && len(root) != tlog.HashSize {
		return EvidenceTree{}, fmt.Errorf("%w: tree root of %d bytes", ErrEvidenceIntegrity, len(root))
	}
	copy(t.Root[:], root)
	return t, nil
}

// GetEvidenceLeaf returns the leaf at a leaf index, or [ErrNotFound].
func (s *Store) GetEvidenceLeaf(ctx context.Context, index int64) ([]byte, error) {
	if index < 0 {
		return nil, invalidf("evidence", "negative index")
	}
	var leaf []byte
	err := s.db.QueryRowContext(ctx, `SELECT leaf FROM evidence_leaves WHERE leaf_index = $1`, index).Scan(&leaf)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: leaf %d", ErrNotFound, index)
	}
	if err != nil {
		return nil, fmt.Errorf("store: evidence leaf: %w", err)
	}
	return leaf, nil
}

// CountPendingEvidence returns how many events await sequencing.
func (s *Store) CountPendingEvidence(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM evidence_events`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: pending evidence: %w", err)
	}
	return n, nil
}

// EvidenceCheckpoint is a signed checkpoint as kept.
type EvidenceCheckpoint struct {
	Size      int64
	Note      []byte
	CreatedAt time.Time
}

// PutEvidenceCheckpoint keeps a signed checkpoint. A checkpoint of that
// size already kept (another instance's) stays: [ErrExists].
func (s *Store) PutEvidenceCheckpoint(ctx context.Context, c EvidenceCheckpoint) error {
	if c.Size < 1 || len(c.Note) == 0 || len(c.Note) > MaxEvidenceLeaf {
		return invalidf("evidence", "checkpoint of size %d, %d bytes", c.Size, len(c.Note))
	}
	at, err := toMicros("evidence", "created at", c.CreatedAt)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO evidence_checkpoints (size, note, created_at) VALUES ($1, $2, $3)`, c.Size, bytes.Clone(c.Note), at)
	if classify(err) == uniqueViolation {
		return fmt.Errorf("%w: checkpoint %d", ErrExists, c.Size)
	}
	if err != nil {
		return fmt.Errorf("store: put checkpoint: %w", err)
	}
	return nil
}

// LatestEvidenceCheckpoint returns the checkpoint of the largest size, or
// [ErrNotFound].
func (s *Store) LatestEvidenceCheckpoint(ctx context.Context) (EvidenceCheckpoint, error) {
	var c EvidenceCheckpoint
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT size, note, created_at FROM evidence_checkpoints ORDER BY size DESC LIMIT 1`).Scan(&c.Size, &c.Note, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return EvidenceCheckpoint{}, fmt.Errorf("%w: checkpoint", ErrNotFound)
	}
	if err != nil {
		return EvidenceCheckpoint{}, fmt.Errorf("store: latest checkpoint: %w", err)
	}
	c.CreatedAt = fromMicros(at)
	return c, nil
}

// postgresNonceInSessionEvent is postgresNonceInSession with the evidence
// event of a key operation appended in the same statement ($6: its leaf):
// only when the nonce is spent, the session has no task (a task's rule is
// the dispatcher's, applied after this read) and $5 is an active key of
// the session's active unit usable in the session's context (the key
// service's own checks, wscd.Keys). The last column says whether it was.
// sqliteSessionEvent (store/session.go) is the same insert on SQLite.
const postgresNonceInSessionEvent = `WITH ins AS (
		INSERT INTO nonces (nonce_hash, expires_at) SELECT $1, $2 FROM sessions s WHERE ` + sessionValid + `
		RETURNING 1),
	ev AS (
		INSERT INTO evidence_events (leaf, created_at)
		SELECT $6, $4 FROM ins, sessions s JOIN units u ON u.id = s.unit_id AND u.state = 'active'
		JOIN keys k ON k.kid = $5 AND k.unit_id = s.unit_id AND k.state = 'active' AND (k.context = '' OR k.context = s.context)
		WHERE s.id_hash = $3 AND s.task = ''
		RETURNING 1)
	SELECT s.task, s.uses_left, s.expires_at, u.state, k.unit_id, k.context, k.state, ku.state, k.wrapped, k.wrapped_mac,
		EXISTS (SELECT 1 FROM ev)
	FROM ins, sessions s JOIN units u ON u.id = s.unit_id
	LEFT JOIN keys k ON k.kid = $5 LEFT JOIN units ku ON ku.id = k.unit_id
	WHERE s.id_hash = $3`
