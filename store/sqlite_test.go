package store_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wsca/wsca/store"
)

// TestSQLiteFile checks what Open does to the file system and the settings
// every SQLite connection gets.
func TestSQLiteFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "wsca")
	path := filepath.Join(dir, "wsca.db")
	s := open(t, "sqlite:"+path, store.WithMaxOpenConns(2))
	if s.Backend() != store.SQLite {
		t.Errorf("Backend() = %q", s.Backend())
	}
	for p, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode(), want)
		}
	}

	// Hold one connection so that the pragmas are also checked on a second.
	db := store.RawDB(s)
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []struct {
		pragma, want string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL: counters and nonces survive a power cut
		{"foreign_keys", "1"},
		{"busy_timeout", "5000"},
	} {
		var got1, got2 string
		if err := conn.QueryRowContext(t.Context(), "PRAGMA "+q.pragma).Scan(&got1); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(t.Context(), "PRAGMA "+q.pragma).Scan(&got2); err != nil {
			t.Fatal(err)
		}
		if got1 != q.want || got2 != q.want {
			t.Errorf("PRAGMA %s = %q and %q, want %q", q.pragma, got1, got2, q.want)
		}
	}
}
