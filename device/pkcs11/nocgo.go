//go:build !cgo || nopkcs11

package pkcs11

import (
	"context"
	"errors"
	"log/slog"

	"github.com/wsca/wsca/device"
)

// ErrNotCompiled is returned by Open in builds without cgo or with the
// nopkcs11 tag: the PKCS#11 backend loads a C library and needs cgo.
var ErrNotCompiled = errors.New("pkcs11: this build has no PKCS#11 support (built without cgo or with -tags nopkcs11)")

// Device is not available in this build.
type Device struct{ device.Device }

// Open always fails in this build.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Device, error) {
	return nil, ErrNotCompiled
}
