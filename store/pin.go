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

// GetPINRecord returns the OPAQUE record of a unit in a context, or
// [ErrNotFound].
func (s *Store) GetPINRecord(ctx context.Context, unitID, pinContext string) (PINRecord, error) {
	if err := checkPINKey(unitID, pinContext); err != nil {
		return PINRecord{}, err
	}
	var r PINRecord
	err := s.db.QueryRowContext(ctx,
		`SELECT record, cred_nonce, mac, oprf_public, oprf_wrapped, oprf_mac FROM pin_records WHERE unit_id = $1 AND context = $2`, unitID, pinContext).
		Scan(&r.Record, &r.CredNonce, &r.MAC, &r.OPRF.Public, &r.OPRF.Wrapped, &r.OPRF.MAC)
	if errors.Is(err, sql.ErrNoRows) {
		return PINRecord{}, fmt.Errorf("%w: PIN record", ErrNotFound)
	}
	if err != nil {
		return PINRecord{}, fmt.Errorf("store: get PIN record: %w", err)
	}
	r.OPRF = r.OPRF.orNil()
	return r, nil
}

// orNil turns the empty columns of a software OPRF key into nil fields.
func (k OPRFKey) orNil() OPRFKey {
	if len(k.Public) == 0 {
		return OPRFKey{}
	}
	if len(k.Wrapped) == 0 {
		k.Wrapped = nil
	}
	return k
}

// retireRecordKey moves the HSM OPRF key of a unit's record in a context
// ($1, $2), if it has one, to oprf_retired: run before the record is
// replaced, in the same transaction.
const retireRecordKey = `INSERT INTO oprf_retired (unit_id, public, wrapped, mac)
	SELECT unit_id, oprf_public, oprf_wrapped, oprf_mac FROM pin_records
	WHERE unit_id = $1 AND context = $2 AND length(oprf_public) > 0
	ON CONFLICT (unit_id, public) DO NOTHING`

// retirePendingKeys is retireRecordKey for pending registrations: the
// caller appends the condition on pin_registrations.
const retirePendingKeys = `INSERT INTO oprf_retired (unit_id, public, wrapped, mac)
	SELECT unit_id, oprf_public, oprf_wrapped, oprf_mac FROM pin_registrations
	WHERE length(oprf_public) > 0 AND `

// lockLiveUnit locks a unit's row (a no-op write) for the rest of tx, as
// Enrol does: the transactions that let go of a unit's HSM OPRF keys take
// turns, so on PostgreSQL (READ COMMITTED) one never reads a key another
// is about to replace or delete unretired.
//
// As these transactions give the unit a new HSM OPRF key, a revoked or
// destroyed unit is refused with [ErrUnitNotFound]: its destruction reads
// its keys after the revocation (whose write the lock orders before or
// after this one) and would miss the new one.
func lockLiveUnit(ctx context.Context, tx *sql.Tx, unitID string) error {
	var state string
	err := tx.QueryRowContext(ctx, `UPDATE units SET updated_at = updated_at WHERE id = $1 RETURNING state`, unitID).Scan(&state)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return err
	case state == string(UnitRevoked) || state == string(UnitDestroyed):
		return fmt.Errorf("%w: %q is %s", ErrUnitNotFound, unitID, state)
	}
	return nil
}

// deletePending deletes the pending registrations cond selects (with
// args) and retires the HSM OPRF keys of exactly the rows it deleted: a
// separate read of the keys could miss a row a concurrent transaction
// committed before the delete, or retire one that TakePendingRegistration
// took for a record meanwhile.
func deletePending(ctx context.Context, tx *sql.Tx, cond string, args ...any) error {
	rows, err := tx.QueryContext(ctx, `DELETE FROM pin_registrations WHERE `+cond+` RETURNING unit_id, oprf_public, oprf_wrapped, oprf_mac`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var keys []RetiredOPRFKey
	for rows.Next() {
		var k RetiredOPRFKey
		if err := rows.Scan(&k.UnitID, &k.Public, &k.Wrapped, &k.MAC); err != nil {
			return err
		}
		if len(k.Public) > 0 {
			keys = append(keys, k)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	for _, k := range keys {
		if _, err := tx.ExecContext(ctx, `INSERT INTO oprf_retired (unit_id, public, wrapped, mac) VALUES ($1, $2, $3, $4) ON CONFLICT (unit_id, public) DO NOTHING`,
			k.UnitID, k.Public, nonNil(k.Wrapped), nonNil(k.MAC)); err != nil {
			return err
		}
	}
	return nil
}

// RetiredOPRFKey is an HSM OPRF key that nothing uses any more, waiting
// for the PIN server to destroy it on the device.
type RetiredOPRFKey struct {
	UnitID string
	OPRFKey
}

// RetiredOPRFKeys returns up to limit retired HSM OPRF keys of a unit, or
// of every unit when unitID is empty.
func (s *Store) RetiredOPRFKeys(ctx context.Context, unitID string, limit int) ([]RetiredOPRFKey, error) {
	if unitID != "" {
		if err := checkID("retired OPRF key", "unit id", unitID); err != nil {
			return nil, err
		}
	}
	if limit < 1 {
		return nil, invalidf("retired OPRF key", "limit must be at least 1")
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT unit_id, public, wrapped, mac FROM oprf_retired WHERE $1 = '' OR unit_id = $1 ORDER BY unit_id, public LIMIT $2`,
		unitID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: retired OPRF keys: %w", err)
	}
	defer rows.Close()
	var out []RetiredOPRFKey
	for rows.Next() {
		var k RetiredOPRFKey
		if err := rows.Scan(&k.UnitID, &k.Public, &k.Wrapped, &k.MAC); err != nil {
			return nil, fmt.Errorf("store: retired OPRF keys: %w", err)
		}
		k.OPRFKey = k.OPRFKey.orNil()
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: retired OPRF keys: %w", err)
	}
	return out, nil
}

// DeleteRetiredOPRFKey deletes a retired key's row once the key is
// destroyed; deleting a missing row is no error.
func (s *Store) DeleteRetiredOPRFKey(ctx context.Context, unitID string, public []byte) error {
	if err := checkID("retired OPRF key", "unit id", unitID); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM oprf_retired WHERE unit_id = $1 AND public = $2`, unitID, public); err != nil {
		return fmt.Errorf("store: delete retired OPRF key: %w", err)
	}
	return nil
}

// SoftwareOPRFRecords counts the PIN records whose OPRF key is derived in
// software (made before HSM OPRF keys were on): the units that must still
// change their PIN, or be re-enrolled, before software OPRF keys can be
// refused.
func (s *Store) SoftwareOPRFRecords(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pin_records WHERE length(oprf_public) = 0`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count software OPRF records: %w", err)
	}
	return n, nil
}

// OPRFKeys returns every HSM OPRF key the store names for a unit: of its
// PIN records, its pending registrations and its retired keys. The
// caller destroys them before EraseUnit.
func (s *Store) OPRFKeys(ctx context.Context, unitID string) ([]OPRFKey, error) {
	if err := checkID("OPRF keys", "unit id", unitID); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `
		SELECT oprf_public, oprf_wrapped, oprf_mac FROM pin_records WHERE unit_id = $1 AND length(oprf_public) > 0
		UNION ALL SELECT oprf_public, oprf_wrapped, oprf_mac FROM pin_registrations WHERE unit_id = $1 AND length(oprf_public) > 0
		UNION ALL SELECT public, wrapped, mac FROM oprf_retired WHERE unit_id = $1`, unitID)
	if err != nil {
		return nil, fmt.Errorf("store: OPRF keys: %w", err)
	}
	defer rows.Close()
	var out []OPRFKey
	for rows.Next() {
		var k OPRFKey
		if err := rows.Scan(&k.Public, &k.Wrapped, &k.MAC); err != nil {
			return nil, fmt.Errorf("store: OPRF keys: %w", err)
		}
		out = append(out, k.orNil())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: OPRF keys: %w", err)
	}
	return out, nil
}

// ReplacePINRecord overwrites an existing record (a PIN change inside a
// session), or fails with [ErrNotFound] if there is none, and in the same
// transaction ends every session of the unit, pending logins included
// (a KE2 issued under the old record could otherwise still be finished),
// and its pending registrations in that context. The HSM OPRF keys of
// the old record and of those registrations move to the retired keys. A
// revoked or destroyed unit is refused with [ErrUnitNotFound].
func (s *Store) ReplacePINRecord(ctx context.Context, unitID, pinContext string, r PINRecord, now time.Time) error {
	if err := checkPINKey(unitID, pinContext); err != nil {
		return err
	}
	if err := r.check(); err != nil {
		return err
	}
	at, err := toMicros("PIN record", "now", now)
	if err != nil {
		return err
	}
	return s.inTx(ctx, "replace PIN record", func(tx *sql.Tx) error {
		if err := lockLiveUnit(ctx, tx, unitID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, retireRecordKey, unitID, pinContext); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx,
			`UPDATE pin_records SET record = $3, cred_nonce = $4, mac = $5, oprf_public = $6, oprf_wrapped = $7, oprf_mac = $8, updated_at = $9
			 WHERE unit_id = $1 AND context = $2`,
			unitID, pinContext, bytes.Clone(r.Record), bytes.Clone(r.CredNonce), bytes.Clone(r.MAC),
			nonNil(r.OPRF.Public), nonNil(r.OPRF.Wrapped), nonNil(r.OPRF.MAC), at)
		if err := affectedOne(res, err, "replace PIN record"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE unit_id = $1`, unitID); err != nil {
			return err
		}
		return deletePending(ctx, tx, `unit_id = $1 AND context = $2`, unitID, pinContext)
	})
}

// PutFirstPINRecord stores the first record of a unit in a context, or
// fails with [ErrExists] if it has one, or [ErrUnitNotFound].
func (s *Store) PutFirstPINRecord(ctx context.Context, unitID, pinContext string, r PINRecord, now time.Time) error {
	if err := checkPINKey(unitID, pinContext); err != nil {
		return err
	}
	if err := r.check(); err != nil {
		return err
	}
	at, err := toMicros("PIN record", "now", now)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx,
		`INSERT INTO pin_records (unit_id, context, record, cred_nonce, mac, oprf_public, oprf_wrapped, oprf_mac, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`,
		unitID, pinContext, bytes.Clone(r.Record), bytes.Clone(r.CredNonce), bytes.Clone(r.MAC),
		nonNil(r.OPRF.Public), nonNil(r.OPRF.Wrapped), nonNil(r.OPRF.MAC), at)
	switch classify(err) {
	case uniqueViolation:
		return fmt.Errorf("%w: PIN record", ErrExists)
	case foreignKeyViolation:
		return fmt.Errorf("%w: %q", ErrUnitNotFound, unitID)
	}
	if err != nil {
		return fmt.Errorf("store: put PIN record: %w", err)
	}
	return nil
}

// PendingRegistration is the state kept between the OPAQUE evaluate and
// finalize steps of a registration.
type PendingRegistration struct {
	UnitID  string
	Context string
	// Requester names who started it: the client key thumbprint, or the
	// session of a PIN change. Only the same requester can finish it.
	Requester string
	CredNonce []byte
	ExpiresAt time.Time
	// OPRF is the HSM key the evaluate step made (zero: a software OPRF
	// key). A registration replaced, evicted or expired retires it.
	OPRF OPRFKey
}

// PutPendingRegistration records (or replaces) a requester's pending
// registration, keeping at most maxPerUnit (at least 1) of the unit's, over
// all its contexts: the oldest others are evicted in the same transaction,
// so neither many requesters nor many made-up contexts grow the table. A
// revoked or destroyed unit is refused with [ErrUnitNotFound].
func (s *Store) PutPendingRegistration(ctx context.Context, p PendingRegistration, maxPerUnit int) error {
	if maxPerUnit < 1 {
		return invalidf("pending registration", "limit must be at least 1")
	}
	if err := checkPINKey(p.UnitID, p.Context); err != nil {
		return err
	}
	if err := checkID("pending registration", "requester", p.Requester); err != nil {
		return err
	}
	if len(p.CredNonce) == 0 {
		return invalidf("pending registration", "empty nonce")
	}
	if err := p.OPRF.check("pending registration"); err != nil {
		return err
	}
	expires, err := toMicros("pending registration", "expires at", p.ExpiresAt)
	if err != nil {
		return err
	}
	const evicted = `unit_id = $1 AND (context, requester) NOT IN (
			   SELECT context, requester FROM pin_registrations WHERE unit_id = $1
			   ORDER BY expires_at DESC, context, requester LIMIT $2)`
	return s.inTx(ctx, "put pending registration", func(tx *sql.Tx) error {
		if err := lockLiveUnit(ctx, tx, p.UnitID); err != nil {
			return err
		}
		if err := deletePending(ctx, tx, `unit_id = $1 AND context = $2 AND requester = $3`, p.UnitID, p.Context, p.Requester); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx,
			`INSERT INTO pin_registrations (unit_id, context, requester, nonce, expires_at, oprf_public, oprf_wrapped, oprf_mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			p.UnitID, p.Context, p.Requester, bytes.Clone(p.CredNonce), expires, nonNil(p.OPRF.Public), nonNil(p.OPRF.Wrapped), nonNil(p.OPRF.MAC))
		if err != nil {
			return err
		}
		return deletePending(ctx, tx, evicted, p.UnitID, maxPerUnit)
	})
}

// TakePendingRegistration removes and returns a requester's pending
// registration, or fails with [ErrNotFound] if there is none or it
// expired (an expired one's HSM OPRF key is retired).
func (s *Store) TakePendingRegistration(ctx context.Context, unitID, pinContext, requester string, now time.Time) (PendingRegistration, error) {
	if err := checkPINKey(unitID, pinContext); err != nil {
		return PendingRegistration{}, err
	}
	at, err := toMicros("pending registration", "now", now)
	if err != nil {
		return PendingRegistration{}, err
	}
	p := PendingRegistration{UnitID: unitID, Context: pinContext, Requester: requester}
	var expires int64
	expired := false
	err = s.inTx(ctx, "take pending registration", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx,
			`DELETE FROM pin_registrations WHERE unit_id = $1 AND context = $2 AND requester = $3
			 RETURNING nonce, expires_at, oprf_public, oprf_wrapped, oprf_mac`,
			unitID, pinContext, requester).Scan(&p.CredNonce, &expires, &p.OPRF.Public, &p.OPRF.Wrapped, &p.OPRF.MAC)
		if err != nil {
			return err
		}
		p.OPRF = p.OPRF.orNil()
		if expires > at {
			return nil
		}
		expired = true
		if p.OPRF.IsZero() {
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO oprf_retired (unit_id, public, wrapped, mac) VALUES ($1, $2, $3, $4) ON CONFLICT (unit_id, public) DO NOTHING`,
			unitID, p.OPRF.Public, nonNil(p.OPRF.Wrapped), p.OPRF.MAC)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) || err == nil && expired {
		return PendingRegistration{}, fmt.Errorf("%w: pending registration", ErrNotFound)
	}
	if err != nil {
		return PendingRegistration{}, fmt.Errorf("store: take pending registration: %w", err)
	}
	p.ExpiresAt = fromMicros(expires)
	return p, nil
}

func checkPINKey(unitID, pinContext string) error {
	if err := checkID("PIN", "unit id", unitID); err != nil {
		return err
	}
	return checkID("PIN", "context", pinContext)
}

// Attempts is the state of a PIN attempt counter.
type Attempts struct {
	// Failures counts attempts that were let through to the PIN check and
	// have not been cleared by a success.
	Failures int
	// NotBefore is the earliest time of the next attempt (zero: no wait).
	NotBefore time.Time
	Locked    bool
}

// GetAttempts returns the counter of a unit in a context; a unit that
// never tried has the zero counter.
func (s *Store) GetAttempts(ctx context.Context, unitID, pinContext string) (Attempts, error) {
	if err := checkPINKey(unitID, pinContext); err != nil {
		return Attempts{}, err
	}
	var a Attempts
	var notBefore, locked int64
	err := s.db.QueryRowContext(ctx,
		`SELECT failures, not_before, locked FROM pin_attempts WHERE unit_id = $1 AND context = $2`,
		unitID, pinContext).Scan(&a.Failures, &notBefore, &locked)
	if errors.Is(err, sql.ErrNoRows) {
		return Attempts{}, nil
	}
	if err != nil {
		return Attempts{}, fmt.Errorf("store: get attempts: %w", err)
	}
	if notBefore != 0 {
		a.NotBefore = fromMicros(notBefore)
	}
	a.Locked = locked != 0
	return a, nil
}

// AttemptWait is one step of an escalating wait: once an admitted attempt
// brings the failure count to After or more, the next attempt must wait
// Wait (the step with the largest After applies).
type AttemptWait struct {
	After int
	Wait  time.Duration
}

// TakeAttempt counts one PIN attempt, atomically with its admission: the
// attempt is admitted only if the counter is not locked, now is not
// before NotBefore, and fewer than max failures are counted. An admitted
// attempt increments Failures before anything is compared, so concurrent
// guesses are all counted and no more than max are ever admitted. The
// wait that the new count calls for (waits, sorted by After) is set by the
// same statement, so no attempt can slip in between the count and its
// wait. It returns the counter after the call and whether the attempt was
// admitted; a refusal because max was reached also sets Locked.
func (s *Store) TakeAttempt(ctx context.Context, unitID, pinContext string, max int, now time.Time, waits ...AttemptWait) (Attempts, bool, error) {
	if err := checkPINKey(unitID, pinContext); err != nil {
		return Attempts{}, false, err
	}
	if max < 1 {
		return Attempts{}, false, invalidf("attempt", "max must be at least 1")
	}
	at, err := toMicros("attempt", "now", now)
	if err != nil {
		return Attempts{}, false, err
	}
	args := []any{unitID, pinContext, at, max}
	// notBefore(n) is the SQL for the wait after n failures: the step with
	// the largest After not above n, as a time, or 0.
	var cases strings.Builder
	for i := len(waits) - 1; i >= 0; i-- {
		w := waits[i]
		if w.After < 1 || w.Wait <= 0 || i > 0 && waits[i-1].After >= w.After {
			return Attempts{}, false, invalidf("attempt", "waits must have increasing After >= 1 and positive Wait")
		}
		until, err := toMicros("attempt", "wait", now.Add(w.Wait))
		if err != nil {
			return Attempts{}, false, err
		}
		args = append(args, w.After, until)
		fmt.Fprintf(&cases, " WHEN %%[1]s >= CAST($%d AS INTEGER) THEN CAST($%d AS BIGINT)", len(args)-1, len(args))
	}
	notBefore := func(n string) string {
		if cases.Len() == 0 {
			return "0"
		}
		return fmt.Sprintf("CASE"+cases.String()+" ELSE 0 END", n)
	}
	// One statement admits and counts: a new counter starts at 1; an
	// existing one is incremented only where the guard holds, and RETURNING
	// gives no row where it does not.
	var a Attempts
	var nb, locked int64
	err = s.db.QueryRowContext(ctx,
		`INSERT INTO pin_attempts (unit_id, context, failures, not_before, locked, updated_at) VALUES ($1, $2, 1, `+notBefore("1")+`, 0, $3)
		 ON CONFLICT (unit_id, context) DO UPDATE SET failures = pin_attempts.failures + 1, updated_at = excluded.updated_at,
		   not_before = `+notBefore("pin_attempts.failures + 1")+`
		 WHERE pin_attempts.locked = 0 AND pin_attempts.not_before <= $3 AND pin_attempts.failures < $4
		 RETURNING failures, not_before, locked`,
		args...).Scan(&a.Failures, &nb, &locked)
	if err == nil {
		if nb != 0 {
			a.NotBefore = fromMicros(nb)
		}
		a.Locked = locked != 0
		return a, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Attempts{}, false, fmt.Errorf("store: take attempt: %w", err)
	}
	if _, err := s.db.ExecContext(ctx,
		`UPDATE pin_attempts SET locked = 1, updated_at = $3 WHERE unit_id = $1 AND context = $2 AND failures >= $4`,
		unitID, pinContext, at, max); err != nil {
		return Attempts{}, false, fmt.Errorf("store: take attempt: %w", err)
	}
	a, err = s.GetAttempts(ctx, unitID, pinContext)
	return a, false, err
}

// DelayAttempts sets the earliest time of the next attempt, if it is later
// than the one set.
func (s *Store) DelayAttempts(ctx context.Context, unitID, pinContext string, notBefore, now time.Time) error {
	if err := checkPINKey(unitID, pinContext); err != nil {
		return err
	}
	nb, err := toMicros("attempt", "not before", notBefore)
	if err != nil {
		return err
	}
	at, err := toMicros("attempt", "now", now)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx,
		`UPDATE pin_attempts SET not_before = $3, updated_at = $4 WHERE unit_id = $1 AND context = $2 AND not_before < $3`,
		unitID, pinContext, nb, at)
	if err != nil {
		return fmt.Errorf("store: delay attempts: %w", err)
	}
	return nil
}

// ClearAttempts resets a counter, its wait and its lock: after a correct
// PIN, or an operator's unlock. A correct PIN may lift the lock because it
// can only come from an attempt admitted before the lock was reached, with
// the right PIN: concurrent logins of the right holder must not lock the
// unit, and an attacker whose admitted guesses all failed stays locked out
// (no further attempt is admitted) until the operator unlocks.
func (s *Store) ClearAttempts(ctx context.Context, unitID, pinContext string, now time.Time) error {
	if err := checkPINKey(unitID, pinContext); err != nil {
		return err
	}
	at, err := toMicros("attempt", "now", now)
	if err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx,
		`UPDATE pin_attempts SET failures = 0, not_before = 0, locked = 0, updated_at = $3 WHERE unit_id = $1 AND context = $2`,
		unitID, pinContext, at); err != nil {
		return fmt.Errorf("store: clear attempts: %w", err)
	}
	return nil
}

// affectedOne turns an Exec result into nil, ErrNotFound (no row) or an
// error.
func affectedOne(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, what)
	}
	return nil
}
