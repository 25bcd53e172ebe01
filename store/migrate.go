package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
)

//go:embed migrations/*
var migrationFiles embed.FS

func embeddedMigrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic("store: internal error: " + err.Error())
	}
	return sub
}

// migrationLockKey names the PostgreSQL advisory lock that serialises
// migrations ("wscamigr" in ASCII). Advisory locks are per database, so it
// only has to differ from other advisory locks wsca may take.
const migrationLockKey int64 = 0x7773_6361_6d69_6772

// createSchemaMigrations runs before the version is read, so it cannot be a
// migration itself. INTEGER and BIGINT mean the same on both backends here.
const createSchemaMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at BIGINT NOT NULL
)`

// nowMicros returns SQL for the database clock in unix microseconds. It
// stamps only schema_migrations.applied_at, a note for operators, so the
// store itself still never reads a clock.
func nowMicros(backend string) string {
	if backend == Postgres {
		return `CAST(EXTRACT(EPOCH FROM CURRENT_TIMESTAMP) * 1000000 AS BIGINT)`
	}
	return `CAST(strftime('%s', 'now') AS INTEGER) * 1000000`
}

// migrationName matches NNNN_name.sql and NNNN_name.BACKEND.sql.
var migrationName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)(?:\.(sqlite|postgres))?\.sql$`)

// migration is one schema step for one backend.
type migration struct {
	version int
	name    string // file name, for errors
	sql     string
}

// loadMigrations returns the steps for backend from fsys, ordered by
// version. Versions must run from 1 without gaps, and each must have either
// one shared file or one file per backend: a step written for one backend
// only would leave the other's schema behind.
func loadMigrations(fsys fs.FS, backend string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	type step struct {
		desc  string
		files map[string]string // backend ("" for shared) -> file name
	}
	steps := make(map[int]*step)
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("store: migrations: bad file name %q", e.Name())
		}
		v, _ := strconv.Atoi(m[1]) // four digits
		st := steps[v]
		if st == nil {
			st = &step{desc: m[2], files: make(map[string]string)}
			steps[v] = st
		}
		if st.desc != m[2] {
			return nil, fmt.Errorf("store: migrations: version %d has two names, %q and %q", v, st.desc, m[2])
		}
		st.files[m[3]] = e.Name()
	}

	ms := make([]migration, 0, len(steps))
	for v := 1; v <= len(steps); v++ {
		st := steps[v]
		if st == nil {
			return nil, fmt.Errorf("store: migrations: version %d is missing", v)
		}
		shared, hasShared := st.files[""]
		if hasShared && len(st.files) > 1 {
			return nil, fmt.Errorf("store: migrations: version %d has both a shared and a backend-specific file", v)
		}
		if !hasShared && (st.files[SQLite] == "" || st.files[Postgres] == "") {
			return nil, fmt.Errorf("store: migrations: version %d needs a file for each backend", v)
		}
		name := shared
		if !hasShared {
			name = st.files[backend]
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("store: migrations: %w", err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	return ms, nil
}

// migrate applies the missing steps of fsys in one transaction, so a failed
// step leaves the schema as it was. Concurrent instances queue on a lock
// taken first thing in the transaction, then find the work done.
func (s *Store) migrate(ctx context.Context, fsys fs.FS) error {
	ms, err := loadMigrations(fsys, s.backend)
	if err != nil {
		return err
	}
	// On SQLite this is BEGIN IMMEDIATE (see sqliteParams): the write lock
	// is the migration lock.
	tx, done, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer done()
	defer tx.Rollback()
	if s.backend == Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
			return fmt.Errorf("store: migrate: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, createSchemaMigrations); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	current, err := schemaVersion(ctx, tx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if current > len(ms) {
		return fmt.Errorf("%w: database is at version %d, this binary knows up to %d", ErrSchemaTooNew, current, len(ms))
	}
	record := `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, ` + nowMicros(s.backend) + `)`
	for _, m := range ms[current:] {
		// Without arguments, both drivers run a multi-statement script.
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("store: migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, record, m.version); err != nil {
			return fmt.Errorf("store: migration %s: record: %w", m.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migrate: commit: %w", err)
	}
	return nil
}
