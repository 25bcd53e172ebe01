package store

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// Backend names, as returned by [Store.Backend]. They are also the suffixes
// of backend-specific migration files.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// sqliteParams are the connection settings the store imposes on every SQLite
// connection. busy_timeout comes first so that it already applies while
// journal_mode switches a new file to WAL, which needs a brief exclusive lock
// when several instances open the same file at once. _txlock=immediate makes
// BeginTx take the write lock at BEGIN: in WAL mode a deferred transaction
// that reads and then writes fails with SQLITE_BUSY_SNAPSHOT, whatever the
// busy timeout, if another connection wrote in between. synchronous=FULL
// syncs the WAL at every commit: PIN attempt counters, nonces and
// spent codes must survive a power cut, not only a process crash.
const sqliteParams = "_pragma=busy_timeout(5000)" +
	"&_pragma=journal_mode(WAL)" +
	"&_pragma=synchronous(FULL)" +
	"&_pragma=foreign_keys(1)" +
	"&_txlock=immediate"

// target is a parsed DSN: the backend and what its driver is given.
type target struct {
	backend string
	// path is the absolute SQLite file name; conn is the PostgreSQL URL.
	path, conn string
}

// parseDSN recognises the DSN forms documented on [Open].
func parseDSN(dsn string) (target, error) {
	scheme, rest, hasScheme := strings.Cut(dsn, ":")
	if hasScheme && !isScheme(scheme) {
		// A Windows volume ("C:\wsca.db") or a path with a colon.
		hasScheme = false
	}
	switch {
	case hasScheme && (strings.EqualFold(scheme, "postgres") || strings.EqualFold(scheme, "postgresql")):
		if !strings.HasPrefix(rest, "//") {
			return target{}, fmt.Errorf("%w: postgres dsn must be a URL (postgres://...)", ErrDSN)
		}
		return target{backend: Postgres, conn: dsn}, nil
	case hasScheme && (strings.EqualFold(scheme, "sqlite") || strings.EqualFold(scheme, "file")):
		return sqliteTarget(rest)
	case !hasScheme && strings.HasSuffix(dsn, ".db"):
		return sqliteTarget(dsn)
	case hasScheme:
		return target{}, fmt.Errorf("%w: unsupported dsn scheme %q (want sqlite:, file:, postgres: or a path ending in .db)", ErrDSN, scheme)
	default:
		return target{}, fmt.Errorf("%w: unsupported dsn (want sqlite:PATH, file:PATH, PATH.db or postgres://...)", ErrDSN)
	}
}

// isScheme reports whether s is a URL scheme of two or more letters, so that
// a one-letter Windows drive is not taken for one.
func isScheme(s string) bool {
	if len(s) < 2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

func sqliteTarget(p string) (target, error) {
	if strings.HasPrefix(p, "//") {
		// file:///abs/path is a URL with an empty host.
		if !strings.HasPrefix(p, "///") {
			return target{}, fmt.Errorf("%w: sqlite dsn must not name a host", ErrDSN)
		}
		p = p[2:]
	}
	switch {
	case p == "":
		return target{}, fmt.Errorf("%w: sqlite dsn has no path", ErrDSN)
	case strings.HasPrefix(p, ":memory:") || strings.Contains(p, "mode=memory"):
		// Each pooled connection would see its own, empty database.
		return target{}, fmt.Errorf("%w: in-memory sqlite is not supported", ErrDSN)
	case strings.Contains(p, "?"):
		// The driver would take the rest for its own parameters; the store
		// sets those itself.
		return target{}, fmt.Errorf("%w: sqlite dsn must not carry parameters", ErrDSN)
	}
	// An absolute name keeps the driver from reading a "file:" prefix as a
	// URI and makes errors say which file was meant.
	abs, err := filepath.Abs(p)
	if err != nil {
		return target{}, fmt.Errorf("%w: sqlite path: %v", ErrDSN, err)
	}
	return target{backend: SQLite, path: abs}, nil
}

// redactDSN returns dsn fit for errors and logs: a URL loses its userinfo
// password and any password query parameter, and an unparsable URL is
// reduced to its scheme. SQLite DSNs carry no secrets and are kept whole.
func redactDSN(dsn string) string {
	scheme, _, ok := strings.Cut(dsn, "://")
	if !ok {
		if strings.Contains(strings.ToLower(dsn), "password") {
			return "(redacted)"
		}
		return dsn
	}
	if !isScheme(scheme) {
		return "(redacted)"
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return scheme + "://(unparsable, redacted)"
	}
	if u.Scheme == "" || u.Opaque != "" || u.Fragment != "" {
		// Whatever url.Parse made of it, userinfo may sit where Redacted
		// does not look.
		return scheme + "://(redacted)"
	}
	if q := u.Query(); len(q) > 0 {
		changed := false
		for k := range q {
			if strings.Contains(strings.ToLower(k), "password") {
				q.Set(k, "xxxxx")
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	r := u.Redacted()
	// An '@' anywhere but after the (redacted) userinfo means credentials
	// may sit where url.Redacted does not look: show nothing.
	n := strings.Count(r, "@")
	if u.User != nil {
		n--
	}
	if n > 0 {
		return scheme + "://(redacted)"
	}
	return r
}
