package store

import (
	"time"
	"unicode/utf8"
)

// MaxIDLen bounds unit ids, kids and backend names, so that a malformed
// caller cannot fill the database with one row.
const MaxIDLen = 255

// checkID rejects an identifier that is empty, too long, not UTF-8 or holds
// control characters (PostgreSQL refuses NUL in text; the others only
// garble logs).
func checkID(what, field, id string) error {
	switch {
	case id == "":
		return invalidf(what, "empty %s", field)
	case len(id) > MaxIDLen:
		return invalidf(what, "%s longer than %d bytes", field, MaxIDLen)
	case !utf8.ValidString(id):
		return invalidf(what, "%s is not UTF-8", field)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return invalidf(what, "%s has a control character", field)
		}
	}
	return nil
}

// toMicros converts a caller's time to unix microseconds, the BIGINT every
// backend stores and orders alike, dropping any finer digits. It rejects the
// zero time (a caller that forgot to set it) and times beyond about ±292,000
// years, where the conversion would wrap.
func toMicros(what, field string, t time.Time) (int64, error) {
	if t.IsZero() {
		return 0, invalidf(what, "%s is not set", field)
	}
	us := t.UnixMicro()
	if time.UnixMicro(us).Unix() != t.Unix() {
		return 0, invalidf(what, "%s out of range", field)
	}
	return us, nil
}

// fromMicros is the inverse of toMicros, in UTC.
func fromMicros(us int64) time.Time {
	return time.UnixMicro(us).UTC()
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface {
	Scan(dest ...any) error
}

// checkContext validates an optional security context: empty, or an id.
func checkContext(what, pinContext string) error {
	if pinContext == "" {
		return nil
	}
	return checkID(what, "context", pinContext)
}
