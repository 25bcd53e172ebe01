package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// UnitState is the lifecycle state of a wallet unit.
type UnitState string

const (
	UnitActive    UnitState = "active"
	UnitSuspended UnitState = "suspended"
	UnitRevoked   UnitState = "revoked"
	// UnitDestroyed is a revoked unit whose keys and records were erased
	// (EraseUnit); the row stays so that its id is never reused.
	UnitDestroyed UnitState = "destroyed"
)

// Final reports whether no change can make the unit active again: it is
// revoked or destroyed.
func (s UnitState) Final() bool { return s == UnitRevoked || s == UnitDestroyed }

func (s UnitState) valid() bool {
	switch s {
	case UnitActive, UnitSuspended, UnitRevoked, UnitDestroyed:
		return true
	}
	return false
}

// Unit is a wallet unit: the owner of keys.
type Unit struct {
	ID    string
	State UnitState
	// CreatedAt is required. A zero UpdatedAt is stored as CreatedAt.
	CreatedAt, UpdatedAt time.Time
}

// CreateUnit records a new wallet unit. It fails with [ErrExists] if a unit
// with that id exists.
func (s *Store) CreateUnit(ctx context.Context, u Unit) error {
	if err := checkID("unit", "id", u.ID); err != nil {
		return err
	}
	if !u.State.valid() {
		return invalidf("unit", "unknown state %q", u.State)
	}
	created, err := toMicros("unit", "created at", u.CreatedAt)
	if err != nil {
		return err
	}
	updated := created
	if !u.UpdatedAt.IsZero() {
		if updated, err = toMicros("unit", "updated at", u.UpdatedAt); err != nil {
			return err
		}
		if updated < created {
			return invalidf("unit", "updated before created")
		}
	}
	_, err = s.db.ExecContext(ctx,
		`INSERT INTO units (id, state, created_at, updated_at) VALUES ($1, $2, $3, $4)`,
		u.ID, string(u.State), created, updated)
	if classify(err) == uniqueViolation {
		return fmt.Errorf("%w: unit %q", ErrExists, u.ID)
	}
	if err != nil {
		return fmt.Errorf("store: create unit: %w", err)
	}
	return nil
}

// GetUnit returns the unit with that id, or [ErrNotFound].
func (s *Store) GetUnit(ctx context.Context, id string) (Unit, error) {
	if err := checkID("unit", "id", id); err != nil {
		return Unit{}, err
	}
	return getUnit(ctx, s.db, id)
}

func getUnit(ctx context.Context, q queryer, id string) (Unit, error) {
	row := q.QueryRowContext(ctx,
		`SELECT id, state, created_at, updated_at FROM units WHERE id = $1`, id)
	u, err := scanUnit(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Unit{}, fmt.Errorf("%w: unit %q", ErrNotFound, id)
	}
	if err != nil {
		return Unit{}, fmt.Errorf("store: get unit: %w", err)
	}
	return u, nil
}

// ListUnits returns all units ordered by id (bytewise).
func (s *Store) ListUnits(ctx context.Context) ([]Unit, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, state, created_at, updated_at FROM units ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: list units: %w", err)
	}
	defer rows.Close()
	var us []Unit
	for rows.Next() {
		u, err := scanUnit(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list units: %w", err)
		}
		us = append(us, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list units: %w", err)
	}
	return us, nil
}

// ErrStateChange means a unit's state does not allow the change asked
// for: revocation is final, and only a suspended unit resumes.
var ErrStateChange = errors.New("store: unit state does not allow this change")

// unitTransitions lists, for each target state, the states a unit may
// reach it from: suspend an active unit, resume a suspended one, revoke
// either. Nothing leaves revoked.
var unitTransitions = map[UnitState][2]UnitState{
	UnitActive:    {UnitSuspended, UnitSuspended},
	UnitSuspended: {UnitActive, UnitActive},
	UnitRevoked:   {UnitActive, UnitSuspended},
}

// Actor says who changes a unit's state.
type Actor string

const (
	// ByOperator: the Wallet Provider's operator (admin API).
	ByOperator Actor = "operator"
	// ByHolder: the unit's holder, in a PIN session.
	ByHolder Actor = "holder"
)

// SetUnitState moves a unit to st as the operator (SetUnitStateBy).
func (s *Store) SetUnitState(ctx context.Context, id string, st UnitState, at time.Time) error {
	return s.SetUnitStateBy(ctx, id, st, ByOperator, at)
}

// SetUnitStateBy moves a unit to st and sets its UpdatedAt to at, in one
// transaction: a conditional UPDATE that allows only the changes of
// unitTransitions, so that concurrent changes serialise on the row and a
// resume racing a revocation cannot undo it, and the unit's status list
// entries set to match (UnitStatus: suspended, revoked for good, or
// valid again), so that no verifier ever sees one without the other. A
// suspension records who made it; the holder resumes only a unit the
// holder suspended (the operator resumes any). Asking for the state the
// unit is in changes nothing; a change its state does not allow gives
// [ErrStateChange]; a missing unit [ErrNotFound].
func (s *Store) SetUnitStateBy(ctx context.Context, id string, st UnitState, by Actor, at time.Time) error {
	if err := checkID("unit", "id", id); err != nil {
		return err
	}
	from, ok := unitTransitions[st]
	if !ok {
		return invalidf("unit", "unknown state %q", st)
	}
	if by != ByOperator && by != ByHolder {
		return invalidf("unit", "unknown actor %q", by)
	}
	updated, err := toMicros("unit", "updated at", at)
	if err != nil {
		return err
	}
	suspendedBy := ""
	if st == UnitSuspended {
		suspendedBy = string(by)
	}
	// The holder lifts only its own suspension: the condition names who
	// may, so a resume racing an operator's suspension cannot undo it.
	mayLift := string(ByHolder)
	if by == ByOperator {
		mayLift = "%"
	}
	var unchanged bool
	err = s.inTx(ctx, "set unit state", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE units SET state = $1, updated_at = $2, suspended_by = $6
			 WHERE id = $3 AND state IN ($4, $5) AND (state <> 'suspended' OR $1 <> 'active' OR suspended_by LIKE $7)`,
			string(st), updated, id, string(from[0]), string(from[1]), suspendedBy, mayLift)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			unchanged = true
			return nil
		}
		_, err = s.setUnitStatuses(ctx, tx, id, UnitStatus(st), updated)
		return err
	})
	if err != nil || !unchanged {
		return err
	}
	// Nothing changed; the read only says why.
	u, err := s.GetUnit(ctx, id)
	if err != nil {
		return err
	}
	if u.State == st {
		return nil
	}
	if u.State == UnitSuspended && st == UnitActive {
		return fmt.Errorf("%w: unit %q was suspended by the operator", ErrStateChange, id)
	}
	return fmt.Errorf("%w: unit %q is %s, not %s", ErrStateChange, id, u.State, st)
}

// unitRecords lists the tables holding a unit's records, erased by
// EraseUnit, each with its unit column.
var unitRecords = []string{
	"pseudonyms", "sessions", "pin_registrations", "pin_attempts", "pin_records",
	"client_keys", "activation_codes", "keys", "secdsa_units", "secdsa_activations", "oprf_retired",
}

// EraseUnit erases everything the store holds of a revoked unit (its keys'
// public parts, client keys, PIN records, attempts, sessions, codes,
// pending registrations and pseudonyms) and marks it destroyed, in one
// transaction. The caller destroys the unit's device keys first. A unit
// that is not revoked gives [ErrStateChange]; erasing a destroyed unit
// again changes nothing.
func (s *Store) EraseUnit(ctx context.Context, id string, at time.Time) error {
	if err := checkID("unit", "id", id); err != nil {
		return err
	}
	updated, err := toMicros("unit", "updated at", at)
	if err != nil {
		return err
	}
	return s.inTx(ctx, "erase unit", func(tx *sql.Tx) error {
		// The conditional update takes the row's lock first, so a
		// concurrent enrolment or key insert waits and then fails its
		// unit check.
		res, err := tx.ExecContext(ctx,
			`UPDATE units SET state = $1, updated_at = $2 WHERE id = $3 AND state IN ($4, $1)`,
			string(UnitDestroyed), updated, id, string(UnitRevoked))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			u, err := getUnit(ctx, tx, id)
			if err != nil {
				return err
			}
			return fmt.Errorf("%w: unit %q is %s, not revoked", ErrStateChange, id, u.State)
		}
		for _, table := range unitRecords {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE unit_id = $1`, id); err != nil {
				return fmt.Errorf("%s: %w", table, err)
			}
		}
		return nil
	})
}

// DeleteUnit removes a unit. It fails with [ErrHasKeys] while keys refer to
// it and with [ErrNotFound] if there is no such unit.
func (s *Store) DeleteUnit(ctx context.Context, id string) error {
	if err := checkID("unit", "id", id); err != nil {
		return err
	}
	// The foreign key from keys decides, atomically with the delete, so a
	// key inserted concurrently cannot be orphaned.
	res, err := s.db.ExecContext(ctx, `DELETE FROM units WHERE id = $1`, id)
	if classify(err) == foreignKeyViolation {
		return fmt.Errorf("%w: unit %q", ErrHasKeys, id)
	}
	if err != nil {
		return fmt.Errorf("store: delete unit: %w", err)
	}
	return oneRow(res, "unit", id)
}

func scanUnit(row scanner) (Unit, error) {
	var (
		u                Unit
		state            string
		created, updated int64
	)
	if err := row.Scan(&u.ID, &state, &created, &updated); err != nil {
		return Unit{}, err
	}
	u.State = UnitState(state)
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return u, nil
}

// oneRow turns an UPDATE or DELETE that matched nothing into ErrNotFound.
func oneRow(res sql.Result, what, id string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: %s %q: %w", what, id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s %q", ErrNotFound, what, id)
	}
	return nil
}
