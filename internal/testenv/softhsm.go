package testenv

import (
	"os"
	"testing"
)

// PKCS11URI returns the RFC 7512 URI of the test token from
// WSCA_TEST_PKCS11_URI (SOFTHSM2_CONF must point at its configuration).
func PKCS11URI(t testing.TB) string {
	t.Helper()
	uri := os.Getenv("WSCA_TEST_PKCS11_URI")
	if uri == "" {
		Unavailable(t, "pkcs11", "WSCA_TEST_PKCS11_URI not set (run scripts/test.sh)")
	}
	return uri
}
