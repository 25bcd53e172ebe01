package store

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Errors returned by the store. Callers test them with errors.Is; the
// returned error wraps one of them with detail.
var (
	ErrNotFound = errors.New("store: not found")
	ErrExists   = errors.New("store: already exists")
	// ErrUnitNotFound means a key was inserted for a wallet unit that does
	// not exist.
	ErrUnitNotFound = errors.New("store: unit not found")
	// ErrHasKeys means a wallet unit cannot be deleted while keys refer to it.
	ErrHasKeys = errors.New("store: unit has keys")
	// ErrProfileConflict means a unit's client key would be replaced by
	// one of another profile (a provisioned compat key over an enrolled
	// strict one).
	ErrProfileConflict = errors.New("store: the unit's client key has another profile")
	// ErrQuota means a per-unit limit (keys, status entries in a window)
	// is reached.
	ErrQuota = errors.New("store: quota reached")
	// ErrInvalid means an argument was rejected before reaching the database.
	ErrInvalid = errors.New("store: invalid")
	// ErrDSN means the DSN names no supported backend or is malformed.
	ErrDSN = errors.New("store: bad DSN")
	// ErrSchemaTooNew means the database was migrated by a newer wsca.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this binary")
)

// invalidf returns an ErrInvalid error such as "store: invalid key: ...".
func invalidf(what, format string, args ...any) error {
	return fmt.Errorf("%w %s: %s", ErrInvalid, what, fmt.Sprintf(format, args...))
}

// violation is the kind of integrity constraint a driver error reports.
type violation int

const (
	noViolation violation = iota
	uniqueViolation
	foreignKeyViolation
)

// PostgreSQL SQLSTATE codes (Appendix A, class 23), also used by CockroachDB
// and YugabyteDB.
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
)

// classify maps a driver error to the constraint it violated, if any.
func classify(err error) violation {
	if err == nil {
		return noViolation
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case pgUniqueViolation:
			return uniqueViolation
		case pgForeignKeyViolation:
			return foreignKeyViolation
		}
		return noViolation
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		// The driver enables extended result codes.
		switch liteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return uniqueViolation
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return foreignKeyViolation
		}
	}
	return noViolation
}
