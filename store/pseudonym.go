package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// MaxPseudonymSize bounds a stored (sealed) pseudonym value.
const MaxPseudonymSize = 8 << 10

// Pseudonym is one slot of a unit's pseudonym storage. Value is what the
// caller sealed; the store never sees the plaintext.
type Pseudonym struct {
	UnitID, Slot         string
	Value                []byte
	CreatedAt, UpdatedAt time.Time
}

// PutPseudonym stores value in a unit's slot, replacing what the slot held.
// A new slot fails with [ErrQuota] when the unit already has maxPerUnit
// slots (0: no limit); the count and the insert are one statement. It
// reports whether the slot was created.
func (s *Store) PutPseudonym(ctx context.Context, unitID, slot string, value []byte, now time.Time, maxPerUnit int) (created bool, err error) {
	if err := checkID("pseudonym", "unit id", unitID); err != nil {
		return false, err
	}
	if err := checkID("pseudonym", "slot", slot); err != nil {
		return false, err
	}
	switch {
	case len(value) == 0:
		return false, invalidf("pseudonym", "empty value")
	case len(value) > MaxPseudonymSize:
		return false, invalidf("pseudonym", "value longer than %d bytes", MaxPseudonymSize)
	case maxPerUnit < 0:
		return false, invalidf("pseudonym", "negative quota")
	}
	at, err := toMicros("pseudonym", "time", now)
	if err != nil {
		return false, err
	}
	value = bytes.Clone(value)
	// An update, or else an insert within the quota; a concurrent insert of
	// the same slot makes ours a unique violation, and the update is tried
	// once more.
	for range 2 {
		res, err := s.db.ExecContext(ctx,
			`UPDATE pseudonyms SET value = $1, updated_at = $2 WHERE unit_id = $3 AND slot = $4`,
			value, at, unitID, slot)
		if err != nil {
			return false, fmt.Errorf("store: put pseudonym: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return false, fmt.Errorf("store: put pseudonym: %w", err)
		} else if n == 1 {
			return false, nil
		}
		res, err = s.db.ExecContext(ctx,
			`INSERT INTO pseudonyms (unit_id, slot, value, created_at, updated_at)
			 SELECT $1, $2, $3, $4, $4
			 WHERE $5 = 0 OR (SELECT count(*) FROM pseudonyms WHERE unit_id = $1) < $5`,
			unitID, slot, value, at, maxPerUnit)
		switch classify(err) {
		case uniqueViolation:
			continue
		case foreignKeyViolation:
			return false, fmt.Errorf("%w: %q", ErrUnitNotFound, unitID)
		}
		if err != nil {
			return false, fmt.Errorf("store: put pseudonym: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return false, fmt.Errorf("store: put pseudonym: %w", err)
		} else if n == 0 {
			return false, fmt.Errorf("%w: unit %q has %d pseudonym slots", ErrQuota, unitID, maxPerUnit)
		}
		return true, nil
	}
	return false, fmt.Errorf("store: put pseudonym: slot %q keeps changing", slot)
}

// GetPseudonym returns a unit's slot, or [ErrNotFound].
func (s *Store) GetPseudonym(ctx context.Context, unitID, slot string) (Pseudonym, error) {
	if err := checkID("pseudonym", "unit id", unitID); err != nil {
		return Pseudonym{}, err
	}
	if err := checkID("pseudonym", "slot", slot); err != nil {
		return Pseudonym{}, err
	}
	p, err := scanPseudonym(s.db.QueryRowContext(ctx,
		`SELECT unit_id, slot, value, created_at, updated_at FROM pseudonyms WHERE unit_id = $1 AND slot = $2`,
		unitID, slot))
	if errors.Is(err, sql.ErrNoRows) {
		return Pseudonym{}, fmt.Errorf("%w: pseudonym slot", ErrNotFound)
	}
	if err != nil {
		return Pseudonym{}, fmt.Errorf("store: get pseudonym: %w", err)
	}
	return p, nil
}

// ListPseudonyms returns a unit's slots ordered by name, without their
// values.
func (s *Store) ListPseudonyms(ctx context.Context, unitID string) ([]Pseudonym, error) {
	if err := checkID("pseudonym", "unit id", unitID); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT unit_id, slot, created_at, updated_at FROM pseudonyms WHERE unit_id = $1 ORDER BY slot`, unitID)
	if err != nil {
		return nil, fmt.Errorf("store: list pseudonyms: %w", err)
	}
	defer rows.Close()
	var out []Pseudonym
	for rows.Next() {
		var p Pseudonym
		var created, updated int64
		if err := rows.Scan(&p.UnitID, &p.Slot, &created, &updated); err != nil {
			return nil, fmt.Errorf("store: list pseudonyms: %w", err)
		}
		p.CreatedAt, p.UpdatedAt = fromMicros(created), fromMicros(updated)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list pseudonyms: %w", err)
	}
	return out, nil
}

// DeletePseudonym erases a unit's slot, or fails with [ErrNotFound].
func (s *Store) DeletePseudonym(ctx context.Context, unitID, slot string) error {
	if err := checkID("pseudonym", "unit id", unitID); err != nil {
		return err
	}
	if err := checkID("pseudonym", "slot", slot); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM pseudonyms WHERE unit_id = $1 AND slot = $2`, unitID, slot)
	if err != nil {
		return fmt.Errorf("store: delete pseudonym: %w", err)
	}
	return oneRow(res, "pseudonym slot", slot)
}

func scanPseudonym(row scanner) (Pseudonym, error) {
	var p Pseudonym
	var created, updated int64
	if err := row.Scan(&p.UnitID, &p.Slot, &p.Value, &created, &updated); err != nil {
		return Pseudonym{}, err
	}
	p.CreatedAt, p.UpdatedAt = fromMicros(created), fromMicros(updated)
	return p, nil
}
