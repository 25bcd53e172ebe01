package testenv

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// SQLite returns the DSN of a new SQLite database file in the test's
// temporary directory.
func SQLite(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "wsca.db")
}

// StoreBackend is a store backend and a way to get a fresh database on it.
type StoreBackend struct {
	// Name is the backend's name, as store.Store.Backend reports it.
	Name string
	// DSN returns the DSN of a new, empty database that is removed when the
	// test ends. It skips the test when the backend is not available.
	DSN func(testing.TB) string
}

// StoreBackends returns every store backend, SQLite first, so that one
// conformance suite runs on all of them:
//
//	for _, b := range testenv.StoreBackends() {
//		t.Run(b.Name, func(t *testing.T) {
//			s, err := store.Open(t.Context(), b.DSN(t))
//			...
//		})
//	}
func StoreBackends() []StoreBackend {
	return []StoreBackend{
		{Name: "sqlite", DSN: SQLite},
		{Name: "postgres", DSN: Postgres},
	}
}

// RawDB opens the database of a store DSN directly (closed when the test
// ends), so that a test can change rows behind wsca, as someone who can
// write the database but not use the HSM would. The drivers are the
// store's: the test must link package store.
func RawDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	driver, name := "pgx", dsn
	if p, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		driver, name = "sqlite", p
	}
	db, err := sql.Open(driver, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
