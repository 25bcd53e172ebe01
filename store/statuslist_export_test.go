package store

import (
	"context"
	"errors"
	"time"
)

// errRollback aborts SetUnitStatusesInTx's transaction on purpose.
var errRollback = errors.New("rollback")

// SetUnitStatusesInTx runs setUnitStatuses inside a transaction as
// SetUnitState will, and rolls it back when rollback is set, to show that
// the change belongs to the caller's transaction.
func SetUnitStatusesInTx(ctx context.Context, s *Store, unit string, status uint8, at time.Time, rollback bool) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	n, err := s.setUnitStatuses(ctx, tx, unit, status, at.UnixMicro())
	if err != nil {
		return 0, err
	}
	if rollback {
		return n, errRollback
	}
	return n, tx.Commit()
}
