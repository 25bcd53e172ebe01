package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
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
		`SELECT record, cred_nonce FROM pin_records WHERE unit_id = $1 AND context = $2`, unitID, pinContext).
		Scan(&r.Record, &r.CredNonce)
	if errors.Is(err, sql.ErrNoRows) {
		return PINRecord{}, fmt.Errorf("%w: PIN record", ErrNotFound)
	}
	if err != nil {
		return PINRecord{}, fmt.Errorf("store: get PIN record: %w", err)
	}
	return r, nil
}

// ReplacePINRecord overwrites an existing record (a PIN change inside a
// session), or fails with [ErrNotFound] if there is none.
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
	res, err := s.db.ExecContext(ctx,
		`UPDATE pin_records SET record = $3, cred_nonce = $4, updated_at = $5 WHERE unit_id = $1 AND context = $2`,
		unitID, pinContext, bytes.Clone(r.Record), bytes.Clone(r.CredNonce), at)
	return affectedOne(res, err, "replace PIN record")
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
}

// PutPendingRegistration records (or replaces) a requester's pending
// registration.
func (s *Store) PutPendingRegistration(ctx context.Context, p PendingRegistration) error {
	if err := checkPINKey(p.UnitID, p.Context); err != nil {
		return err
	}
	if err := checkID("pending registration", "requester", p.Requester); err != nil {
		return err
	}
	if len(p.CredNonce) == 0 {
		return invalidf("pending registration", "empty nonce")
	}
	expires, err := toMicros("pending registration", "expires at", p.ExpiresAt)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx,
		`INSERT INTO pin_registrations (unit_id, context, requester, nonce, expires_at) VALUES ($1, $2, $3, $4, $5)
		 ON CONFLICT (unit_id, context, requester) DO UPDATE SET nonce = excluded.nonce, expires_at = excluded.expires_at`,
		p.UnitID, p.Context, p.Requester, bytes.Clone(p.CredNonce), expires)
	if err != nil {
		return fmt.Errorf("store: put pending registration: %w", err)
	}
	return nil
}

// TakePendingRegistration removes and returns the nonce of a requester's
// pending registration, or fails with [ErrNotFound] if there is none or it
// expired.
func (s *Store) TakePendingRegistration(ctx context.Context, unitID, pinContext, requester string, now time.Time) ([]byte, error) {
	if err := checkPINKey(unitID, pinContext); err != nil {
		return nil, err
	}
	at, err := toMicros("pending registration", "now", now)
	if err != nil {
		return nil, err
	}
	var nonce []byte
	var expires int64
	err = s.db.QueryRowContext(ctx,
		`DELETE FROM pin_registrations WHERE unit_id = $1 AND context = $2 AND requester = $3 RETURNING nonce, expires_at`,
		unitID, pinContext, requester).Scan(&nonce, &expires)
	if errors.Is(err, sql.ErrNoRows) || err == nil && expires <= at {
		return nil, fmt.Errorf("%w: pending registration", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: take pending registration: %w", err)
	}
	return nonce, nil
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

// TakeAttempt counts one PIN attempt, atomically with its admission: the
// attempt is admitted only if the counter is not locked, now is not
// before NotBefore, and fewer than max failures are counted. An admitted
// attempt increments Failures before anything is compared, so concurrent
// guesses are all counted and no more than max are ever admitted. It
// returns the counter after the call and whether the attempt was admitted;
// a refusal because max was reached also sets Locked.
func (s *Store) TakeAttempt(ctx context.Context, unitID, pinContext string, max int, now time.Time) (Attempts, bool, error) {
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
	// One statement admits and counts: a new counter starts at 1; an
	// existing one is incremented only where the guard holds, and RETURNING
	// gives no row where it does not.
	var a Attempts
	var notBefore, locked int64
	err = s.db.QueryRowContext(ctx,
		`INSERT INTO pin_attempts (unit_id, context, failures, not_before, locked, updated_at) VALUES ($1, $2, 1, 0, 0, $3)
		 ON CONFLICT (unit_id, context) DO UPDATE SET failures = pin_attempts.failures + 1, updated_at = excluded.updated_at
		 WHERE pin_attempts.locked = 0 AND pin_attempts.not_before <= $3 AND pin_attempts.failures < $4
		 RETURNING failures, not_before, locked`,
		unitID, pinContext, at, max).Scan(&a.Failures, &notBefore, &locked)
	if err == nil {
		if notBefore != 0 {
			a.NotBefore = fromMicros(notBefore)
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
