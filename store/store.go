package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
)

// Default pool sizes. SQLite in WAL mode serves readers in parallel but has
// one writer at a time, so a few connections suffice and more would only
// queue on the write lock. PostgreSQL's default leaves room for several
// instances under a stock max_connections of 100.
const (
	defaultSQLiteConns   = 4
	defaultPostgresConns = 10
)

// Store is the persistent state of wsca on SQLite or PostgreSQL. It is safe
// for concurrent use by multiple goroutines, and several processes may share
// one database.
type Store struct {
	db      *sql.DB
	backend string
	// shareView: reads of client keys and sessions return the share MAC
	// and the share secret in place of MAC and secret (ShareView).
	shareView bool
	// stmts holds the statements of the hot paths prepared once per *sql.DB
	// (SQLite only; see prepared), shared with the store's views.
	stmts *stmtCache
	// writeTurn, on SQLite, lets one transaction of this process at a time
	// ask for the database's write lock (shared with the store's views).
	writeTurn chan struct{}
}

// begin starts a transaction; done must be called after it ends (defer
// it before tx.Rollback). On SQLite every transaction takes the write
// lock at BEGIN (sqliteParams), and SQLite hands a contended lock to
// whichever waiter polls first, so under load one writer could wait past
// the busy timeout while others kept winning (SQLITE_BUSY). The store's
// transactions therefore take turns in this process first, in order;
// the busy timeout is left to other processes and single statements.
func (s *Store) begin(ctx context.Context) (tx *sql.Tx, done func(), err error) {
	done = func() {}
	if s.writeTurn != nil {
		select {
		case s.writeTurn <- struct{}{}:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		done = func() { <-s.writeTurn }
	}
	tx, err = s.db.BeginTx(ctx, nil)
	if err != nil {
		done()
		return nil, nil, err
	}
	return tx, done, nil
}

// stmtCache maps a query to its prepared statement.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// prepared returns query prepared once for the store's *sql.DB, which then
// prepares it once per connection and keeps it. On SQLite (modernc, which
// caches nothing) parsing and planning a statement costs about as much as
// running it; PostgreSQL's driver already caches every statement per
// connection (pgx QueryExecModeCacheStatement, the default), so there it
// returns nil and the caller runs the query text. A failed preparation is
// not kept: the next call tries again.
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if s.backend != SQLite {
		return nil, nil
	}
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	if st, ok := s.stmts.m[query]; ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("store: prepare: %w", err)
	}
	if s.stmts.m == nil {
		s.stmts.m = make(map[string]*sql.Stmt)
	}
	s.stmts.m[query] = st
	return st, nil
}

// execPrepared is ExecContext through the prepared statement of query
// where there is one (see prepared).
func (s *Store) execPrepared(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := s.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return s.db.ExecContext(ctx, query, args...)
	}
	return st.ExecContext(ctx, args...)
}

// queryRowPrepared is QueryRowContext through the prepared statement of
// query where there is one (see prepared). A failed preparation is
// returned by Scan.
func (s *Store) queryRowPrepared(ctx context.Context, query string, args ...any) rowScanner {
	st, err := s.prepared(ctx, query)
	if err != nil {
		return errRow{err}
	}
	if st == nil {
		return s.db.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// rowScanner is what *sql.Row and errRow have in common.
type rowScanner interface{ Scan(dest ...any) error }

// errRow is a row whose Scan fails with err.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type config struct {
	maxOpenConns int
	migrations   fs.FS // nil means the embedded migrations
}

// An Option changes how [Open] sets up a Store.
type Option func(*config) error

// WithMaxOpenConns bounds the number of open database connections (n ≥ 1).
func WithMaxOpenConns(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("%w option: max open connections %d < 1", ErrInvalid, n)
		}
		c.maxOpenConns = n
		return nil
	}
}

// Open connects to the database named by dsn, brings its schema up to date
// and returns a Store.
//
// The DSN forms are:
//
//	sqlite:/var/lib/wsca/wsca.db   (also sqlite:relative/path.db)
//	file:/var/lib/wsca/wsca.db     (also file:///var/lib/wsca/wsca.db)
//	/var/lib/wsca/wsca.db          (any path ending in .db)
//	postgres://user:pass@host:5432/db?sslmode=verify-full  (or postgresql://)
//
// A SQLite DSN carries no parameters: the store sets its own pragmas. Its
// parent directory is created (mode 0700) and a new file is created with mode
// 0600. A PostgreSQL URL takes every parameter pgx understands.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	var cfg config
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	t, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	var db *sql.DB
	switch t.backend {
	case SQLite:
		db, err = openSQLite(t.path)
		if cfg.maxOpenConns == 0 {
			cfg.maxOpenConns = defaultSQLiteConns
		}
	case Postgres:
		db, err = openPostgres(t.conn)
		if cfg.maxOpenConns == 0 {
			cfg.maxOpenConns = defaultPostgresConns
		}
	default:
		panic("store: internal error: unknown backend " + t.backend)
	}
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(cfg.maxOpenConns)
	db.SetMaxIdleConns(cfg.maxOpenConns)

	s := &Store{db: db, backend: t.backend, stmts: &stmtCache{}}
	if t.backend == SQLite {
		s.writeTurn = make(chan struct{}, 1)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", redactDSN(dsn), err)
	}
	migrations := cfg.migrations
	if migrations == nil {
		migrations = embeddedMigrations()
	}
	if err := s.migrate(ctx, migrations); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// CheckDSN reports whether dsn is a DSN Open accepts, without connecting
// or creating anything, so that a command can refuse a bad setting before
// it opens anything.
func CheckDSN(dsn string) error {
	t, err := parseDSN(dsn)
	if err != nil {
		return err
	}
	if t.backend == Postgres {
		if _, err := pgx.ParseConfig(t.conn); err != nil {
			return fmt.Errorf("%w: cannot parse postgres dsn %s", ErrDSN, redactDSN(dsn))
		}
	}
	return nil
}

func openSQLite(path string) (*sql.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create sqlite directory: %w", err)
	}
	// SQLite would create the file with the process umask (often 0644), and
	// its -wal and -shm files copy the database file's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: create sqlite file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("store: create sqlite file: %w", err)
	}
	conn, err := sqlite.NewConnector(path + "?" + sqliteParams)
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	return sql.OpenDB(conn), nil
}

func openPostgres(dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's error quotes the DSN, password masked only best-effort, and
		// may wrap a *url.Error that quotes it whole: keep neither.
		return nil, fmt.Errorf("store: cannot parse postgres dsn %s", redactDSN(dsn))
	}
	return stdlib.OpenDB(*cfg), nil
}

// Close closes the database connections.
func (s *Store) Close() error {
	s.stmts.mu.Lock()
	for q, st := range s.stmts.m {
		st.Close()
		delete(s.stmts.m, q)
	}
	s.stmts.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Ping checks that the database is reachable, for readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Backend returns [SQLite] or [Postgres].
func (s *Store) Backend() string { return s.backend }

// SchemaVersion returns the highest migration applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	v, err := schemaVersion(ctx, s.db)
	if err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return v, nil
}

// queryer is what *sql.DB and *sql.Tx have in common.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func schemaVersion(ctx context.Context, q queryer) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}
