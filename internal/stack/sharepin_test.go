package stack_test

import (
	"errors"
	"testing"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/server"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// TestSharePeerPin: an instance of both roles shares nothing with a WSCA
// share key it was not told of (--share-peer-key), and a pinned WSCD-only
// instance shares nothing with a key other than the pinned one; pinned to
// the key in the store, it shares (publishes its device's assurance under
// the share key).
func TestSharePeerPin(t *testing.T) {
	dsn := testenv.SQLite(t)
	ctx := t.Context()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	wscaKeys, err := wscd.NewServerKeys(wscd.ServerKeysConfig{Device: testdevice.Soft(t), Store: st, Prefix: wscd.WSCAPrefix})
	if err != nil {
		t.Fatal(err)
	}
	k, err := wscaKeys.Key(ctx, wscd.PurposeShare)
	if err != nil {
		t.Fatal(err)
	}
	published := func() bool {
		_, err := st.GetServerSecret(ctx, "wscd-device-assurance")
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	dev := testdevice.PKCS11(t)
	for _, c := range []struct {
		name  string
		roles server.Roles
		pin   string
		want  bool
	}{
		{"both roles, no pin", server.Roles{WSCD: true, WSCA: true}, "", false},
		{"wscd, pinned to another key", server.Roles{WSCD: true}, "0123456789abcdef0123456789abcdef", false},
		{"both roles, pinned", server.Roles{WSCD: true, WSCA: true}, string(k.KID), true},
	} {
		r := stacktest.Start(t, dsn, dev, func(o *stack.Options) { o.Roles, o.SharePeer = c.roles, device.KID(c.pin) })
		r.ShareNow(ctx)
		if got := published(); got != c.want {
			t.Fatalf("%s: shared %v, want %v", c.name, got, c.want)
		}
	}
}
