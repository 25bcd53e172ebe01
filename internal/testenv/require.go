// Package testenv gives tests the real components they run against: a
// SoftHSM token, a PostgreSQL database, a SQLite file. The test command
// (scripts/test.sh) provides them through WSCA_TEST_* variables; a test
// whose component is missing skips, unless WSCA_TEST_REQUIRE names it,
// and then it fails, so CI cannot pass by skipping.
package testenv

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// Unavailable skips t, or fails it if WSCA_TEST_REQUIRE lists component.
func Unavailable(t testing.TB, component, why string) {
	t.Helper()
	if slices.Contains(strings.Split(os.Getenv("WSCA_TEST_REQUIRE"), ","), component) {
		t.Fatalf("%s required (WSCA_TEST_REQUIRE) but unavailable: %s", component, why)
	}
	t.Skipf("%s unavailable: %s", component, why)
}
