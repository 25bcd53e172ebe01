package store

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

func TestEmbeddedMigrations(t *testing.T) {
	for _, backend := range []string{SQLite, Postgres} {
		ms, err := loadMigrations(embeddedMigrations(), backend)
		if err != nil {
			t.Fatalf("%s: %v", backend, err)
		}
		if len(ms) == 0 {
			t.Fatalf("%s: no migrations", backend)
		}
		for i, m := range ms {
			if m.version != i+1 || strings.TrimSpace(m.sql) == "" {
				t.Errorf("%s: step %d is %+v", backend, i, m)
			}
			if !strings.HasPrefix(m.name, "0") || strings.Contains(m.name, otherBackend(backend)) {
				t.Errorf("%s: step %d uses %s", backend, m.version, m.name)
			}
		}
	}
}

func otherBackend(b string) string {
	if b == SQLite {
		return "." + Postgres + "."
	}
	return "." + SQLite + "."
}

func TestLoadMigrations(t *testing.T) {
	files := func(names ...string) fs.FS {
		m := fstest.MapFS{}
		for _, n := range names {
			m[n] = &fstest.MapFile{Data: []byte("-- " + n)}
		}
		return m
	}
	good := []struct {
		name    string
		fsys    fs.FS
		sqlite  []string
		postgre []string
	}{
		{"none", files(), nil, nil},
		{"shared", files("0001_a.sql", "0002_b.sql"), []string{"0001_a.sql", "0002_b.sql"}, []string{"0001_a.sql", "0002_b.sql"}},
		{"variants", files("0001_a.sqlite.sql", "0001_a.postgres.sql", "0002_b.sql", "README.md"),
			[]string{"0001_a.sqlite.sql", "0002_b.sql"}, []string{"0001_a.postgres.sql", "0002_b.sql"}},
	}
	for _, c := range good {
		for backend, want := range map[string][]string{SQLite: c.sqlite, Postgres: c.postgre} {
			ms, err := loadMigrations(c.fsys, backend)
			if err != nil {
				t.Errorf("%s/%s: %v", c.name, backend, err)
				continue
			}
			var got []string
			for _, m := range ms {
				got = append(got, m.name)
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("%s/%s: got %q, want %q", c.name, backend, got, want)
			}
		}
	}

	bad := map[string]fs.FS{
		"gap":                files("0001_a.sql", "0003_c.sql"),
		"no first":           files("0002_b.sql"),
		"version zero":       files("0000_a.sql"),
		"short number":       files("001_a.sql"),
		"upper case":         files("0001_Init.sql"),
		"unknown backend":    files("0001_a.mysql.sql"),
		"two names":          files("0001_a.sqlite.sql", "0001_b.postgres.sql"),
		"one variant":        files("0001_a.sqlite.sql"),
		"shared and variant": files("0001_a.sql", "0001_a.sqlite.sql", "0001_a.postgres.sql"),
	}
	for name, fsys := range bad {
		for _, backend := range []string{SQLite, Postgres} {
			if ms, err := loadMigrations(fsys, backend); err == nil {
				t.Errorf("%s/%s: loaded %+v, want an error", name, backend, ms)
			}
		}
	}
}
