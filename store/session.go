package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SessionState is where a PIN session stands.
type SessionState string

const (
	// SessionPending: the server sent KE2 and waits for KE3.
	SessionPending SessionState = "pending"
	// SessionVerified: the client proved the PIN; the session authorises
	// operations until it expires or its uses run out.
	SessionVerified SessionState = "verified"
)

func (st SessionState) valid() bool { return st == SessionPending || st == SessionVerified }

// Unlimited is the UsesLeft of a session that is not bound to a number of
// operations.
const Unlimited = -1

// Session is a PIN-authenticated session shared by all instances.
type Session struct {
	// IDHash is the SHA-256 of the session id the client holds.
	IDHash  []byte
	UnitID  string
	Context string
	State   SessionState
	// Secret is the sealed session key and expected client MAC.
	Secret []byte
	// Task restricts what the session may do ("" for nothing special).
	Task string
	// UsesLeft counts the operations a task-bound session still allows,
	// or is Unlimited.
	UsesLeft int
	// RecordNonce is the credential nonce of the PIN record the login was
	// started against: VerifySession succeeds only while that record is
	// still the unit's (empty for a fake record: never verifies).
	RecordNonce []byte
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// CreateSession records a new session.
func (s *Store) CreateSession(ctx context.Context, se Session) error {
	if len(se.IDHash) != HashSize {
		return invalidf("session", "id hash must be %d bytes", HashSize)
	}
	if err := checkPINKey(se.UnitID, se.Context); err != nil {
		return err
	}
	if !se.State.valid() {
		return invalidf("session", "unknown state %q", se.State)
	}
	if len(se.Secret) == 0 {
		return invalidf("session", "empty secret")
	}
	if se.UsesLeft < Unlimited {
		return invalidf("session", "uses left below %d", Unlimited)
	}
	created, err := toMicros("session", "created at", se.CreatedAt)
	if err != nil {
		return err
	}
	expires, err := toMicros("session", "expires at", se.ExpiresAt)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx,
		`INSERT INTO sessions (id_hash, unit_id, context, state, secret, task, uses_left, created_at, expires_at, record_nonce)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		bytes.Clone(se.IDHash), se.UnitID, se.Context, string(se.State), bytes.Clone(se.Secret), se.Task, se.UsesLeft, created, expires, append([]byte{}, se.RecordNonce...))
	if classify(err) == uniqueViolation {
		return fmt.Errorf("%w: session", ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	return nil
}

// GetSession returns the session whose id hashes to idHash if it has not
// expired at now, or [ErrNotFound].
func (s *Store) GetSession(ctx context.Context, idHash []byte, now time.Time) (Session, error) {
	if len(idHash) != HashSize {
		return Session{}, invalidf("session", "id hash must be %d bytes", HashSize)
	}
	at, err := toMicros("session", "now", now)
	if err != nil {
		return Session{}, err
	}
	se := Session{IDHash: bytes.Clone(idHash)}
	var state string
	var created, expires int64
	err = s.db.QueryRowContext(ctx,
		`SELECT unit_id, context, state, secret, task, uses_left, created_at, expires_at, record_nonce
		 FROM sessions WHERE id_hash = $1 AND expires_at > $2`, idHash, at).
		Scan(&se.UnitID, &se.Context, &state, &se.Secret, &se.Task, &se.UsesLeft, &created, &expires, &se.RecordNonce)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("%w: session", ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("store: get session: %w", err)
	}
	se.State, se.CreatedAt, se.ExpiresAt = SessionState(state), fromMicros(created), fromMicros(expires)
	return se, nil
}

// VerifySession moves a pending, unexpired session to verified with a new
// expiry and secret (the MAC is no longer needed), or fails with
// [ErrNotFound]. Only one caller can verify a session, and only while the
// PIN record it was started against is still the unit's: a PIN change
// between KE2 and KE3 ends the login.
func (s *Store) VerifySession(ctx context.Context, idHash, secret []byte, expiresAt, now time.Time) error {
	expires, err := toMicros("session", "expires at", expiresAt)
	if err != nil {
		return err
	}
	at, err := toMicros("session", "now", now)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx,
		`UPDATE sessions SET state = $2, secret = $3, expires_at = $4 WHERE id_hash = $1 AND state = $5 AND expires_at > $6
		 AND EXISTS (SELECT 1 FROM pin_records p WHERE p.unit_id = sessions.unit_id AND p.context = sessions.context
		             AND p.cred_nonce = sessions.record_nonce)`,
		idHash, string(SessionVerified), bytes.Clone(secret), expires, string(SessionPending), at)
	return affectedOne(res, err, "verify session")
}

// UseSession spends one use of a verified session bound to a number of
// uses (sessions with Unlimited uses are not changed), or fails with
// [ErrNotFound] if the session is gone, expired, not verified or used up.
func (s *Store) UseSession(ctx context.Context, idHash []byte, now time.Time) error {
	at, err := toMicros("session", "now", now)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx,
		`UPDATE sessions SET uses_left = CASE WHEN uses_left = -1 THEN -1 ELSE uses_left - 1 END
		 WHERE id_hash = $1 AND state = $2 AND expires_at > $3 AND uses_left <> 0`,
		idHash, string(SessionVerified), at)
	return affectedOne(res, err, "use session")
}

// DeleteSession ends one session; a missing one is not an error.
func (s *Store) DeleteSession(ctx context.Context, idHash []byte) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = $1`, idHash); err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}

// DeleteUnitSessions ends every session of a unit.
func (s *Store) DeleteUnitSessions(ctx context.Context, unitID string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE unit_id = $1`, unitID); err != nil {
		return fmt.Errorf("store: delete sessions: %w", err)
	}
	return nil
}

// UseNonce records a request nonce (by hash) until expiresAt, or fails
// with [ErrExists] if it was seen before: a replay.
func (s *Store) UseNonce(ctx context.Context, nonceHash []byte, expiresAt time.Time) error {
	if len(nonceHash) != HashSize {
		return invalidf("nonce", "hash must be %d bytes", HashSize)
	}
	expires, err := toMicros("nonce", "expires at", expiresAt)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO nonces (nonce_hash, expires_at) VALUES ($1, $2)`, bytes.Clone(nonceHash), expires)
	if classify(err) == uniqueViolation {
		return fmt.Errorf("%w: nonce", ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store: use nonce: %w", err)
	}
	return nil
}

// UseNonceForKey records a request nonce like UseNonce and reads the access
// record of the key the request names. On PostgreSQL it is one statement
// (INSERT … RETURNING with scalar subqueries), so a key operation's replay
// check and ownership read cost one round trip; on SQLite, in-process, two
// statements measured faster (BenchmarkStore/*/UseNonceForKey). The nonce
// is spent even when the key does not exist ([ErrNotFound]); a replay is
// [ErrExists] and reads nothing.
func (s *Store) UseNonceForKey(ctx context.Context, nonceHash []byte, expiresAt time.Time, kid string) (KeyAccess, error) {
	if len(nonceHash) != HashSize {
		return KeyAccess{}, invalidf("nonce", "hash must be %d bytes", HashSize)
	}
	if err := checkID("key", "kid", kid); err != nil {
		return KeyAccess{}, err
	}
	expires, err := toMicros("nonce", "expires at", expiresAt)
	if err != nil {
		return KeyAccess{}, err
	}
	if s.backend != Postgres {
		if err := s.UseNonce(ctx, nonceHash, expiresAt); err != nil {
			return KeyAccess{}, err
		}
		return s.GetKeyAccess(ctx, kid)
	}
	var a KeyAccess
	var ks, us string
	err = s.db.QueryRowContext(ctx,
		`INSERT INTO nonces (nonce_hash, expires_at) VALUES ($1, $2)
		 RETURNING (SELECT k.unit_id FROM keys k WHERE k.kid = $3),
		           (SELECT k.context FROM keys k WHERE k.kid = $3),
		           (SELECT k.state FROM keys k WHERE k.kid = $3),
		           (SELECT u.state FROM keys k JOIN units u ON u.id = k.unit_id WHERE k.kid = $3),
		           (SELECT k.wrapped FROM keys k WHERE k.kid = $3),
		           (SELECT k.wrapped_mac FROM keys k WHERE k.kid = $3)`,
		bytes.Clone(nonceHash), expires, kid).Scan(&nullString{&a.UnitID}, &nullString{&a.Context}, &nullString{&ks}, &nullString{&us},
		&a.Wrapped, &a.WrappedMAC)
	if classify(err) == uniqueViolation {
		return KeyAccess{}, fmt.Errorf("%w: nonce", ErrExists)
	}
	if err != nil {
		return KeyAccess{}, fmt.Errorf("store: use nonce: %w", err)
	}
	if a.UnitID == "" || us == "" {
		return KeyAccess{}, fmt.Errorf("%w: key %q", ErrNotFound, kid)
	}
	a.KeyState, a.UnitState = KeyState(ks), UnitState(us)
	a.Wrapped, a.WrappedMAC = emptyNil(a.Wrapped), emptyNil(a.WrappedMAC)
	return a, nil
}

// SessionUse is what UseNonceInSession reads with the nonce: the mutable
// part of the session, its unit's state and, for a key operation, the
// access record of the key.
type SessionUse struct {
	Task      string
	UsesLeft  int
	ExpiresAt time.Time
	UnitState UnitState
	// Key is the access record of the key named (KeyFound false: there is
	// no such key, or none was named).
	Key      KeyAccess
	KeyFound bool
}

// sessionValid is the condition, on sessions s, of a session that may
// serve a request at $4: verified, unexpired, with uses left, and started
// against the PIN record that is still its unit's in its context.
const sessionValid = `s.id_hash = $3 AND s.state = 'verified' AND s.expires_at > $4 AND s.uses_left <> 0
	AND EXISTS (SELECT 1 FROM pin_records p WHERE p.unit_id = s.unit_id AND p.context = s.context AND p.cred_nonce = s.record_nonce)`

// postgresNonceInSession is UseNonceInSession on PostgreSQL: the
// conditional insert in a data-modifying WITH, joined with one read of the
// session, its unit and the key (the read sees the statement's snapshot,
// as scalar subqueries in RETURNING would, at one index lookup per table
// instead of one per column). No row: the session is not valid.
const postgresNonceInSession = `WITH ins AS (
		INSERT INTO nonces (nonce_hash, expires_at) SELECT $1, $2 FROM sessions s WHERE ` + sessionValid + `
		RETURNING 1)
	SELECT s.task, s.uses_left, s.expires_at, u.state, k.unit_id, k.context, k.state, ku.state, k.wrapped, k.wrapped_mac
	FROM ins, sessions s JOIN units u ON u.id = s.unit_id
	LEFT JOIN keys k ON k.kid = $5 LEFT JOIN units ku ON ku.id = k.unit_id
	WHERE s.id_hash = $3`

// The statements of UseNonceInSessionEvent on SQLite, prepared once
// (Store.prepared): parsing them cost about as much as running them.
// sqliteSessionEvent is the event insert of postgresNonceInSessionEvent
// (store/evidence.go), with the same conditions, run after the nonce's in
// the same transaction.
const (
	sqliteNonceInSession = `INSERT INTO nonces (nonce_hash, expires_at) SELECT $1, $2 FROM sessions s WHERE ` + sessionValid
	sqliteSessionEvent   = `INSERT INTO evidence_events (leaf, created_at)
		SELECT $1, $2 FROM sessions s JOIN units u ON u.id = s.unit_id AND u.state = 'active'
		JOIN keys k ON k.kid = $4 AND k.unit_id = s.unit_id AND k.state = 'active' AND (k.context = '' OR k.context = s.context)
		WHERE s.id_hash = $3 AND s.task = ''`
	sqliteSessionUse = `SELECT s.task, s.uses_left, s.expires_at, u.state, k.unit_id, k.context, k.state, ku.state, k.wrapped, k.wrapped_mac
		FROM sessions s JOIN units u ON u.id = s.unit_id
		LEFT JOIN keys k ON k.kid = $2 LEFT JOIN units ku ON ku.id = k.unit_id
		WHERE s.id_hash = $1`
)

// sqliteNonceInSession runs UseNonceInSessionEvent on SQLite: the
// conditional nonce insert and the read into dest, prepared once; with a
// leaf and a kid also the conditional event insert (logged says whether it
// inserted), and then the three in one transaction, so that the nonce and
// its event are one commit. No valid session: sql.ErrNoRows.
func (s *Store) sqliteNonceInSession(ctx context.Context, nonceHash []byte, expires int64, idHash []byte, at int64, kid string, leaf []byte, logged *bool, dest ...any) error {
	if leaf == nil || kid == "" {
		res, err := s.execPrepared(ctx, sqliteNonceInSession, nonceHash, expires, idHash, at)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return sql.ErrNoRows
		}
		return s.queryRowPrepared(ctx, sqliteSessionUse, idHash, kid).Scan(dest...)
	}
	var stmts [3]*sql.Stmt
	for i, q := range []string{sqliteNonceInSession, sqliteSessionEvent, sqliteSessionUse} {
		st, err := s.prepared(ctx, q)
		if err != nil {
			return err
		}
		stmts[i] = st
	}
	// BEGIN IMMEDIATE (sqliteParams): the write lock from the start.
	tx, done, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	defer tx.Rollback()
	res, err := tx.StmtContext(ctx, stmts[0]).ExecContext(ctx, nonceHash, expires, idHash, at)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return sql.ErrNoRows
	}
	if res, err = tx.StmtContext(ctx, stmts[1]).ExecContext(ctx, bytes.Clone(leaf), at, idHash, kid); err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if err := tx.StmtContext(ctx, stmts[2]).QueryRowContext(ctx, idHash, kid).Scan(dest...); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	*logged = n == 1
	return nil
}

// UseNonceInSession records a request nonce (as UseNonce) only if the
// session whose id hashes to idHash is valid at now (verified, unexpired,
// uses left, its PIN record unchanged), and reads the session's task, uses
// left and expiry, its unit's state and, when kid is not "", the access
// record of that key. On PostgreSQL it is one statement (INSERT … SELECT
// … RETURNING with scalar subqueries); on SQLite, in-process, the
// conditional insert and one read, both prepared once per database. A session that is not valid gives
// [ErrNotFound] and spends no nonce; a replay in a valid session gives
// [ErrExists].
func (s *Store) UseNonceInSession(ctx context.Context, nonceHash []byte, expiresAt time.Time, idHash []byte, now time.Time, kid string) (SessionUse, error) {
	return s.UseNonceInSessionEvent(ctx, nonceHash, expiresAt, idHash, now, kid, nil)
}

// UseNonceInSessionEvent is UseNonceInSession that also appends an
// evidence event (leaf, AppendEvent) for the key operation on kid, with
// the nonce (in the same statement on PostgreSQL, in the same transaction
// on SQLite): only when the nonce is spent, the session has no task (a
// task's rule is applied after this read) and kid is an active key of the
// session's active unit usable in the session's context; Key.Logged says
// whether it was. With a nil leaf nothing is appended.
func (s *Store) UseNonceInSessionEvent(ctx context.Context, nonceHash []byte, expiresAt time.Time, idHash []byte, now time.Time, kid string, leaf []byte) (SessionUse, error) {
	if len(leaf) > MaxEvidenceLeaf {
		return SessionUse{}, invalidf("evidence", "leaf of %d bytes", len(leaf))
	}
	if len(nonceHash) != HashSize {
		return SessionUse{}, invalidf("nonce", "hash must be %d bytes", HashSize)
	}
	if len(idHash) != HashSize {
		return SessionUse{}, invalidf("session", "id hash must be %d bytes", HashSize)
	}
	if kid != "" {
		if err := checkID("key", "kid", kid); err != nil {
			return SessionUse{}, err
		}
	}
	expires, err := toMicros("nonce", "expires at", expiresAt)
	if err != nil {
		return SessionUse{}, err
	}
	at, err := toMicros("session", "now", now)
	if err != nil {
		return SessionUse{}, err
	}
	var (
		u                SessionUse
		task, us, kc, ks string
		uses, sExpires   sql.NullInt64
	)
	if s.backend == Postgres && leaf != nil && kid != "" {
		err = s.db.QueryRowContext(ctx, postgresNonceInSessionEvent, bytes.Clone(nonceHash), expires, idHash, at, kid, bytes.Clone(leaf)).
			Scan(&nullString{&task}, &uses, &sExpires, &nullString{&us}, &nullString{&u.Key.UnitID}, &nullString{&u.Key.Context}, &nullString{&ks}, &nullString{&kc},
				&u.Key.Wrapped, &u.Key.WrappedMAC, &u.Key.Logged)
		if errors.Is(err, sql.ErrNoRows) {
			return SessionUse{}, fmt.Errorf("%w: session", ErrNotFound)
		}
	} else if s.backend == Postgres {
		err = s.db.QueryRowContext(ctx, postgresNonceInSession, bytes.Clone(nonceHash), expires, idHash, at, kid).
			Scan(&nullString{&task}, &uses, &sExpires, &nullString{&us}, &nullString{&u.Key.UnitID}, &nullString{&u.Key.Context}, &nullString{&ks}, &nullString{&kc},
				&u.Key.Wrapped, &u.Key.WrappedMAC)
		if errors.Is(err, sql.ErrNoRows) {
			return SessionUse{}, fmt.Errorf("%w: session", ErrNotFound)
		}
	} else {
		err = s.sqliteNonceInSession(ctx, bytes.Clone(nonceHash), expires, idHash, at, kid, leaf, &u.Key.Logged,
			&task, &uses, &sExpires, &us, &nullString{&u.Key.UnitID}, &nullString{&u.Key.Context}, &nullString{&ks}, &nullString{&kc},
			&u.Key.Wrapped, &u.Key.WrappedMAC)
		if errors.Is(err, sql.ErrNoRows) {
			// No valid session (the insert spent no nonce), or it ended
			// between the two statements.
			return SessionUse{}, fmt.Errorf("%w: session", ErrNotFound)
		}
	}
	if classify(err) == uniqueViolation {
		return SessionUse{}, fmt.Errorf("%w: nonce", ErrExists)
	}
	if err != nil {
		return SessionUse{}, fmt.Errorf("store: use nonce in session: %w", err)
	}
	if !uses.Valid || !sExpires.Valid || us == "" {
		// Ended between the insert and the read (PostgreSQL reads in one
		// snapshot, so only SQLite can get here).
		return SessionUse{}, fmt.Errorf("%w: session", ErrNotFound)
	}
	u.Task, u.UsesLeft, u.ExpiresAt, u.UnitState = task, int(uses.Int64), fromMicros(sExpires.Int64), UnitState(us)
	u.Key.KeyState, u.Key.UnitState = KeyState(ks), UnitState(kc)
	u.Key.Wrapped, u.Key.WrappedMAC = emptyNil(u.Key.Wrapped), emptyNil(u.Key.WrappedMAC)
	u.KeyFound = kid != "" && u.Key.UnitID != "" && kc != ""
	if !u.KeyFound {
		u.Key = KeyAccess{}
	}
	return u, nil
}

// nullString scans a nullable text column into a string ("" for NULL).
type nullString struct{ s *string }

func (n *nullString) Scan(v any) error {
	var ns sql.NullString
	if err := ns.Scan(v); err != nil {
		return err
	}
	*n.s = ns.String
	return nil
}

// Purge deletes expired sessions, nonces, activation codes and pending
// registrations (whose HSM OPRF keys it retires first), and PIN attempt
// counters that are back at zero, and returns how many rows went.
func (s *Store) Purge(ctx context.Context, now time.Time) (int64, error) {
	at, err := toMicros("purge", "now", now)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, q := range []string{
		`DELETE FROM sessions WHERE expires_at <= $1`,
		`DELETE FROM nonces WHERE expires_at <= $1`,
		`DELETE FROM activation_codes WHERE expires_at <= $1`,
		retirePendingKeys + `expires_at <= $1 ON CONFLICT (unit_id, public) DO NOTHING`,
		`DELETE FROM pin_registrations WHERE expires_at <= $1`,
		// Counters back at zero (after a success or an unlock) carry no
		// state: the next attempt makes them again.
		`DELETE FROM pin_attempts WHERE failures = 0 AND locked = 0 AND not_before <= $1`,
	} {
		res, err := s.db.ExecContext(ctx, q, at)
		if err != nil {
			return total, fmt.Errorf("store: purge: %w", err)
		}
		if n, _ := res.RowsAffected(); !strings.HasPrefix(q, "INSERT") {
			total += n
		}
	}
	return total, nil
}

// ServerKey is one of the server's own device keys, by purpose.
type ServerKey struct {
	Purpose   string
	KID       string
	PublicKey []byte
	// Wrapped is the key's blob when the device keeps keys wrapped
	// (docs/wrapped-keys.md); empty for a token object.
	Wrapped   []byte
	CreatedAt time.Time
}

// GetServerKey returns the server key for a purpose, or [ErrNotFound].
func (s *Store) GetServerKey(ctx context.Context, purpose string) (ServerKey, error) {
	if err := checkID("server key", "purpose", purpose); err != nil {
		return ServerKey{}, err
	}
	k := ServerKey{Purpose: purpose}
	var created int64
	err := s.db.QueryRowContext(ctx,
		`SELECT kid, public_key, wrapped, created_at FROM server_keys WHERE purpose = $1`, purpose).
		Scan(&k.KID, &k.PublicKey, &k.Wrapped, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return ServerKey{}, fmt.Errorf("%w: server key %q", ErrNotFound, purpose)
	}
	if err != nil {
		return ServerKey{}, fmt.Errorf("store: get server key: %w", err)
	}
	k.CreatedAt = fromMicros(created)
	k.Wrapped = emptyNil(k.Wrapped)
	return k, nil
}

// PutServerKey records the server key for a purpose, or fails with
// [ErrExists] if another instance recorded one first (it should then use
// that one).
func (s *Store) PutServerKey(ctx context.Context, k ServerKey) error {
	if err := checkID("server key", "purpose", k.Purpose); err != nil {
		return err
	}
	if err := checkID("server key", "kid", k.KID); err != nil {
		return err
	}
	created, err := toMicros("server key", "created at", k.CreatedAt)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx,
		`INSERT INTO server_keys (purpose, kid, public_key, wrapped, created_at) VALUES ($1, $2, $3, $4, $5)`,
		k.Purpose, k.KID, bytes.Clone(k.PublicKey), nonNil(k.Wrapped), created)
	if classify(err) == uniqueViolation {
		return fmt.Errorf("%w: server key %q", ErrExists, k.Purpose)
	}
	if err != nil {
		return fmt.Errorf("store: put server key: %w", err)
	}
	return nil
}

// GetServerSecret returns a sealed server secret, or [ErrNotFound].
func (s *Store) GetServerSecret(ctx context.Context, name string) ([]byte, error) {
	if err := checkID("server secret", "name", name); err != nil {
		return nil, err
	}
	var v []byte
	err := s.db.QueryRowContext(ctx, `SELECT value FROM server_secrets WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: server secret %q", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get server secret: %w", err)
	}
	return v, nil
}

// PutServerSecret records a sealed server secret once, or fails with
// [ErrExists] if another instance was first.
func (s *Store) PutServerSecret(ctx context.Context, name string, value []byte, now time.Time) error {
	if err := checkID("server secret", "name", name); err != nil {
		return err
	}
	created, err := toMicros("server secret", "now", now)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3)`,
		name, bytes.Clone(value), created)
	if classify(err) == uniqueViolation {
		return fmt.Errorf("%w: server secret %q", ErrExists, name)
	}
	if err != nil {
		return fmt.Errorf("store: put server secret: %w", err)
	}
	return nil
}
