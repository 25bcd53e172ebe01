package pkcs11key

import (
	"errors"

	"github.com/wsca/wsca/manager"
)

// DefaultID is the plugin id unless configured.
const DefaultID = "pkcs11"

// ErrNotCompiled: this build has no PKCS#11 (no cgo).
var ErrNotCompiled = errors.New("pkcs11key: this build has no PKCS#11 support (built without cgo)")

// Config selects the token.
type Config struct {
	// ID defaults to DefaultID.
	ID          string
	DisplayName string
	// Module is the path of the PKCS#11 library; TokenLabel selects the
	// token.
	Module, TokenLabel string
	// PIN, if set, is used instead of asking the host.
	PIN string
	// Namespace prefixes the CKA_LABEL of this plugin's keys (default
	// "wsca-manager"); keys outside it are never seen.
	Namespace string
	// Properties are what the host states of the token (from its
	// certificate); the plugin adds storage hardware, not exportable and
	// PIN user verification, nothing more.
	Properties manager.Properties
}
