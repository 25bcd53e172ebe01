package store

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseDSN: any string either parses to a known backend or is refused
// with ErrInvalid, and redaction never lets a password through.
func FuzzParseDSN(f *testing.F) {
	f.Add("sqlite:/var/lib/wsca/wsca.db")
	f.Add("file:///tmp/x.db")
	f.Add("postgres://u:hunter2@h:5432/db?sslmode=disable")
	f.Add("C:\\wsca.db")
	f.Fuzz(func(t *testing.T, dsn string) {
		if _, err := parseDSN(dsn); err != nil && !errors.Is(err, ErrDSN) {
			t.Fatalf("parseDSN(%q): untyped error %v", dsn, err)
		}
		if strings.Contains(dsn, "://u:hunter2@") && strings.Contains(redactDSN(dsn), ":hunter2@") {
			t.Fatalf("redactDSN(%q) shows the password", dsn)
		}
	})
}
