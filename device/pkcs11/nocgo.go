//go:build !cgo || nopkcs11

package pkcs11

import (
	"context"
	"log/slog"

	"github.com/wsca/wsca/device"
)

// Available is false: this build has no PKCS#11 support.
const Available = false

// Backend is the name this device would report.
const Backend = "pkcs11"

// Device is not available in this build.
type Device struct{ device.Device }

// Open always fails in this build.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Device, error) {
	return nil, ErrNotCompiled
}

// InitToken always fails in this build.
func InitToken(module, label, soPIN, userPIN string) (uint, error) {
	return 0, ErrNotCompiled
}
