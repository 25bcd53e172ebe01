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
func (s *Store) GetPINRecord(ctx context.Context, unitID, pinContext string) ([]byte, error) {
	if err := checkPINKey(unitID, pinContext); err != nil {
		return nil, err
	}
	var rec []byte
	err := s.db.QueryRowContext(ctx,
		`SELECT record FROM pin_records WHERE unit_id = $1 AND context = $2`, unitID, pinContext).Scan(&rec)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: PIN record", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get PIN record: %w", err)
	}
	return rec, nil
}

// ReplacePINRecord overwrites an existing record (a PIN change inside a
// session), or fails with [ErrNotFound] if there is none.
func (s *Store) ReplacePINRecord(ctx context.Context, unitID, pinContext string, record []byte, now time.Time) error {
	if err := checkPINKey(unitID, pinContext); err != nil {
		return err
	}
	if len(record) == 0 {
		return invalidf("PIN record", "empty record")
	}
	at, err := toMicros("PIN record", "now", now)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx,
		`UPDATE pin_records SET record = $3, updated_at = $4 WHERE unit_id = $1 AND context = $2`,
		unitID, pinContext, bytes.Clone(record), at)
	return affectedOne(res, err, "replace PIN record")
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
	if _, err := s.db.ExecContext(ctx,
		`INSERT INTO pin_attempts (unit_id, context, failures, not_before, locked, updated_at)
		 VALUES ($1, $2, 0, 0, 0, $3) ON CONFLICT (unit_id, context) DO NOTHING`,
		unitID, pinContext, at); err != nil {
		return Attempts{}, false, fmt.Errorf("store: take attempt: %w", err)
	}
	var n int
	err = s.db.QueryRowContext(ctx,
		`UPDATE pin_attempts SET failures = failures + 1, updated_at = $3
		 WHERE unit_id = $1 AND context = $2 AND locked = 0 AND not_before <= $3 AND failures < $4
		 RETURNING failures`,
		unitID, pinContext, at, max).Scan(&n)
	if err == nil {
		a, err := s.GetAttempts(ctx, unitID, pinContext)
		a.Failures = n
		return a, true, err
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Attempts{}, false, fmt.Errorf("store: take attempt: %w", err)
	}
	if _, err := s.db.ExecContext(ctx,
		`UPDATE pin_attempts SET locked = 1, updated_at = $3 WHERE unit_id = $1 AND context = $2 AND failures >= $4`,
		unitID, pinContext, at, max); err != nil {
		return Attempts{}, false, fmt.Errorf("store: take attempt: %w", err)
	}
	a, err := s.GetAttempts(ctx, unitID, pinContext)
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

// ClearAttempts resets a counter after a correct PIN or an operator's
// unlock. A correct PIN does not lift a lock (unlock is true only for the
// operator), since a locked counter admits no attempt in the first place.
func (s *Store) ClearAttempts(ctx context.Context, unitID, pinContext string, unlock bool, now time.Time) error {
	if err := checkPINKey(unitID, pinContext); err != nil {
		return err
	}
	at, err := toMicros("attempt", "now", now)
	if err != nil {
		return err
	}
	q := `UPDATE pin_attempts SET failures = 0, not_before = 0, updated_at = $3 WHERE unit_id = $1 AND context = $2 AND locked = 0`
	if unlock {
		q = `UPDATE pin_attempts SET failures = 0, not_before = 0, locked = 0, updated_at = $3 WHERE unit_id = $1 AND context = $2`
	}
	if _, err := s.db.ExecContext(ctx, q, unitID, pinContext, at); err != nil {
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
