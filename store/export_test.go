package store

import (
	"database/sql"
	"io/fs"
)

// RawDB exposes the connection pool so that tests can stage states the API
// refuses to create, such as a schema from the future.
func RawDB(s *Store) *sql.DB { return s.db }

// WithMigrations replaces the embedded migrations, to test upgrades.
func WithMigrations(fsys fs.FS) Option {
	return func(c *config) error {
		c.migrations = fsys
		return nil
	}
}

// EmbeddedMigrations returns the migrations built into the binary.
func EmbeddedMigrations() fs.FS { return embeddedMigrations() }

// LatestVersion is the version the embedded migrations bring a database to.
func LatestVersion() int {
	ms, err := loadMigrations(embeddedMigrations(), SQLite)
	if err != nil {
		panic(err)
	}
	return len(ms)
}
