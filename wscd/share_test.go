package wscd_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// TestShareSealer: a WSCD (wallet-key device, no prefix) and a WSCA (a
// device of its own, WSCAPrefix) on one store derive the same share key,
// each in its own device, and only they do: not before the peer's key
// exists, and not a process whose device lacks the key.
func TestShareSealer(t *testing.T) {
	ctx := t.Context()
	st, err := store.Open(ctx, testenv.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys := func(dev device.Device, prefix string) *wscd.ServerKeys {
		k, err := wscd.NewServerKeys(wscd.ServerKeysConfig{Device: dev, Store: st, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	wscdKeys := keys(testdevice.PKCS11(t), "")
	wscaKeys := keys(testdevice.Soft(t), wscd.WSCAPrefix)

	if _, err := wscdKeys.ShareSealer(ctx, wscd.WSCAPrefix); !errors.Is(err, wscd.ErrNoPeer) {
		t.Fatalf("before any WSCA: %v, want ErrNoPeer", err)
	}
	a, err := wscaKeys.ShareSealer(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := wscdKeys.ShareSealer(ctx, wscd.WSCAPrefix)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := b.Seal([]byte("session key"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Open(sealed, []byte("ad")); err != nil || !bytes.Equal(got, []byte("session key")) {
		t.Fatalf("the WSCA opens what the WSCD sealed: %q, %v", got, err)
	}
	if _, err := a.Open(sealed, []byte("other ad")); err == nil {
		t.Fatal("opened under other additional data")
	}
	if !bytes.Equal(a.MAC("d", []byte("x")), b.MAC("d", []byte("x"))) {
		t.Fatal("the two roles' MACs differ")
	}
	// The share key is not either role's own sealer.
	own, err := wscdKeys.Sealer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := own.Open(sealed, []byte("ad")); err == nil || bytes.Equal(own.MAC("d", []byte("x")), a.MAC("d", []byte("x"))) {
		t.Fatal("the share key is the WSCD's own sealing key")
	}
	// The WSCA's keys live under its prefix: its own sealer differs too.
	wscaOwn, err := wscaKeys.Sealer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(wscaOwn.MAC("d", []byte("x")), own.MAC("d", []byte("x"))) {
		t.Fatal("the WSCA's sealer is the WSCD's")
	}
	// A process with another device but the WSCA's prefix finds the WSCA's
	// share key in the store and cannot use it.
	if _, err := keys(testdevice.Soft(t), wscd.WSCAPrefix).ShareSealer(ctx, ""); err == nil {
		t.Fatal("a device without the WSCA's share key derived the share key")
	}
}
