package wscd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/wsca/wsca/device"
)

// TestDeviceErr: what a device error becomes at the service boundary, so
// that the R2PS code is right: the client's fault (a key or input the
// device refuses) is invalid input, an outage is unavailable (TRY_LATER),
// anything else a server error.
func TestDeviceErr(t *testing.T) {
	b := newBase(nil, slog.New(slog.DiscardHandler))
	for _, c := range []struct {
		in   error
		want error
	}{
		{device.ErrKeyNotFound, ErrKeyNotFound},
		{device.ErrInvalidDigest, ErrInvalidInput},
		{device.ErrInvalidPoint, ErrInvalidInput},
		{device.ErrInvalidKID, ErrInvalidInput},
		{device.ErrInvalidOwner, ErrInvalidInput},
		{fmt.Errorf("pkcs11: %w: CKR_KEY_FUNCTION_NOT_PERMITTED", device.ErrKeyUsage), ErrInvalidInput},
		{device.ErrUnavailable, ErrUnavailable},
		{device.ErrClosed, ErrUnavailable},
		{context.DeadlineExceeded, ErrUnavailable},
		{context.Canceled, context.Canceled},
	} {
		if got := b.deviceErr(context.Background(), c.in); !errors.Is(got, c.want) {
			t.Errorf("%v -> %v, want %v", c.in, got, c.want)
		}
	}
	got := b.deviceErr(context.Background(), errors.New("a key file that does not open"))
	for _, e := range []error{ErrKeyNotFound, ErrInvalidInput, ErrUnavailable} {
		if errors.Is(got, e) {
			t.Errorf("an unclassified fault became %v", e)
		}
	}
}
