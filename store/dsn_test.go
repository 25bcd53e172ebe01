package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseDSN(t *testing.T) {
	cwd, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		dsn     string
		backend string
		path    string
	}{
		{"sqlite:/var/lib/wsca/wsca.db", SQLite, "/var/lib/wsca/wsca.db"},
		{"SQLite:/var/lib/wsca/wsca.db", SQLite, "/var/lib/wsca/wsca.db"},
		{"sqlite:data/wsca.db", SQLite, filepath.Join(cwd, "data/wsca.db")},
		{"sqlite:/var/lib/wsca/state", SQLite, "/var/lib/wsca/state"},
		{"file:/var/lib/wsca/wsca.db", SQLite, "/var/lib/wsca/wsca.db"},
		{"file:///var/lib/wsca/wsca.db", SQLite, "/var/lib/wsca/wsca.db"},
		{"/var/lib/wsca/wsca.db", SQLite, "/var/lib/wsca/wsca.db"},
		{"wsca.db", SQLite, filepath.Join(cwd, "wsca.db")},
		{"./a:b/wsca.db", SQLite, filepath.Join(cwd, "a:b/wsca.db")},
		{"postgres://u:p@db.example:5432/wsca?sslmode=verify-full", Postgres, ""},
		{"postgresql://db.example/wsca", Postgres, ""},
	}
	for _, c := range cases {
		got, err := parseDSN(c.dsn)
		if err != nil {
			t.Errorf("parseDSN(%q): %v", c.dsn, err)
			continue
		}
		if got.backend != c.backend || got.path != c.path || (c.backend == Postgres && got.conn != c.dsn) {
			t.Errorf("parseDSN(%q) = %+v, want %s %q", c.dsn, got, c.backend, c.path)
		}
	}

	for _, dsn := range []string{
		"",
		"wsca",
		"/var/lib/wsca/wsca.sqlite",
		"mysql://u@h/db",
		"sqlite:",
		"file://",
		"sqlite::memory:",
		"file::memory:?cache=shared",
		"file:wsca.db?mode=memory",
		"sqlite:/tmp/wsca.db?_pragma=foreign_keys(0)",
		"file://host/wsca.db",
		"postgres:wsca",
		"host=db password=secret",
	} {
		if got, err := parseDSN(dsn); err == nil {
			t.Errorf("parseDSN(%q) = %+v, want an error", dsn, got)
		} else if !strings.HasPrefix(err.Error(), "store: ") {
			t.Errorf("parseDSN(%q): error %q lacks the store: prefix", dsn, err)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	cases := []struct{ dsn, want string }{
		{"postgres://wsca:hunter2@db:5432/wsca?sslmode=disable", "postgres://wsca:xxxxx@db:5432/wsca?sslmode=disable"},
		{"postgres://wsca@db/wsca", "postgres://wsca@db/wsca"},
		{"postgres://wsca@db/wsca?password=hunter2", "postgres://wsca@db/wsca?password=xxxxx"},
		{"postgres://wsca@db/wsca?sslpassword=hunter2&sslmode=verify-full", "postgres://wsca@db/wsca?sslmode=verify-full&sslpassword=xxxxx"},
		{"postgres://wsca:hun%zzter2@db/wsca", "postgres://(unparsable, redacted)"},
		{"host=db password=hunter2", "(redacted)"},
		{"sqlite:/var/lib/wsca/wsca.db", "sqlite:/var/lib/wsca/wsca.db"},
	}
	for _, c := range cases {
		if got := redactDSN(c.dsn); got != c.want {
			t.Errorf("redactDSN(%q) = %q, want %q", c.dsn, got, c.want)
		}
	}
}

// TestOpenHidesPassword checks that no error from Open quotes a password,
// whether the DSN fails to parse or to connect.
func TestOpenHidesPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, dsn := range []string{
		"postgres://wsca:hunter2@127.0.0.1:1/wsca?connect_timeout=2",
		"postgres://wsca:hunter2@127.0.0.1:notaport/wsca",
		"postgres://wsca:hunter2@127.0.0.1/wsca?sslmode=bogus",
		"postgres://wsca@127.0.0.1:1/wsca?password=hunter2&connect_timeout=2",
		"postgres://wsca:hun%zzter2@127.0.0.1/wsca",
	} {
		s, err := Open(ctx, dsn)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
			continue
		}
		for e := error(err); e != nil; e = errors.Unwrap(e) {
			if strings.Contains(e.Error(), "hunter2") || strings.Contains(e.Error(), "hun%zzter2") {
				t.Errorf("Open(%q): error chain quotes the password: %q", dsn, e)
			}
		}
	}
}
