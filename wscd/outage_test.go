package wscd_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// failing is a device whose key operations fail with err once fail is set.
type failing struct {
	device.Device
	err  error
	fail bool
}

func (f *failing) Generate(ctx context.Context, o device.Owner) (device.Key, error) {
	if f.fail {
		return device.Key{}, f.err
	}
	return f.Device.Generate(ctx, o)
}

func (f *failing) Sign(ctx context.Context, r device.Ref, d []byte) ([]byte, error) {
	if f.fail {
		return nil, f.err
	}
	return f.Device.Sign(ctx, r, d)
}

func (f *failing) ECDH(ctx context.Context, r device.Ref, p *ecdh.PublicKey) ([]byte, error) {
	if f.fail {
		return nil, f.err
	}
	return f.Device.ECDH(ctx, r, p)
}

// TestDeviceErrorClasses: an outage the device reports (ErrUnavailable,
// ErrClosed, a deadline passed) is wscd.ErrUnavailable, which R2PS answers
// TRY_LATER; a fault retrying cannot fix is not, and is answered as a
// server error.
func TestDeviceErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"unavailable", fmt.Errorf("%w: C_Sign: CKR_DEVICE_REMOVED", device.ErrUnavailable), true},
		{"closed", device.ErrClosed, true},
		{"deadline", context.DeadlineExceeded, true},
		{"integrity", errors.New("soft: key file does not open under this master key"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := store.Open(ctx, testenv.SQLite(t))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			dev := &failing{Device: testdevice.Soft(t), err: tc.err}
			svc, err := wscd.New(wscd.Config{Device: dev, Store: st})
			if err != nil {
				t.Fatal(err)
			}
			if err := svc.Units.Create(ctx, "alice"); err != nil {
				t.Fatal(err)
			}
			k, err := svc.Keys.Generate(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			dev.fail = true
			digest := sha256.Sum256([]byte("x"))
			peer, _ := ecdh.P256().GenerateKey(rand.Reader)
			for op, call := range map[string]func() error{
				"generate": func() error { _, err := svc.Keys.Generate(ctx, "alice"); return err },
				"sign":     func() error { _, err := svc.Keys.Sign(ctx, "alice", string(k.KID), digest[:]); return err },
				"ecdh":     func() error { _, err := svc.Keys.ECDH(ctx, "alice", string(k.KID), peer.PublicKey()); return err },
			} {
				err := call()
				if err == nil || errors.Is(err, wscd.ErrUnavailable) != tc.unavailable {
					t.Errorf("%s: %v; unavailable %v, want %v", op, err, errors.Is(err, wscd.ErrUnavailable), tc.unavailable)
				}
			}
		})
	}
}
