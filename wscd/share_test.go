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

	if _, err := wscdKeys.ShareSealer(ctx, wscd.WSCAPrefix, ""); !errors.Is(err, wscd.ErrNoPeer) {
		t.Fatalf("before any WSCA: %v, want ErrNoPeer", err)
	}
	a, err := wscaKeys.ShareSealer(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := wscdKeys.ShareSealer(ctx, wscd.WSCAPrefix, "")
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
	if _, err := keys(testdevice.Soft(t), wscd.WSCAPrefix).ShareSealer(ctx, "", ""); err == nil {
		t.Fatal("a device without the WSCA's share key derived the share key")
	}
}

// TestShareSealerPinned: a role pinned to the other role's share key (its
// kid, configured outside the database) derives the share key only with
// that key. A database writer who puts a key of their own under the other
// role's name gets nothing shared with a pinned role; an unpinned one
// derives with the writer's key, which the writer can then derive too.
func TestShareSealerPinned(t *testing.T) {
	ctx := t.Context()
	open := func() *store.Store {
		st, err := store.Open(ctx, testenv.SQLite(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	keys := func(st *store.Store, dev device.Device, prefix string) *wscd.ServerKeys {
		k, err := wscd.NewServerKeys(wscd.ServerKeysConfig{Device: dev, Store: st, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	kidOf := func(k *wscd.ServerKeys) device.KID {
		sk, err := k.Key(ctx, wscd.PurposeShare)
		if err != nil {
			t.Fatal(err)
		}
		return sk.KID
	}
	wscdDev := testdevice.PKCS11(t)
	// The deployment: the WSCD and the real WSCA.
	st := open()
	wscdKeys, wscaKeys := keys(st, wscdDev, ""), keys(st, testdevice.Soft(t), wscd.WSCAPrefix)
	realWSCA, realWSCD := kidOf(wscaKeys), kidOf(wscdKeys)
	if _, err := wscdKeys.ShareSealer(ctx, wscd.WSCAPrefix, realWSCA); err != nil {
		t.Fatalf("pinned to the real WSCA: %v", err)
	}
	if _, err := wscaKeys.ShareSealer(ctx, "", realWSCD); err != nil {
		t.Fatalf("pinned to the real WSCD: %v", err)
	}
	if _, err := wscaKeys.ShareSealer(ctx, "", realWSCA); !errors.Is(err, wscd.ErrPeerNotPinned) {
		t.Fatalf("pinned to another kid: %v, want ErrPeerNotPinned", err)
	}
	// The database writer's version: the WSCA's share key is theirs.
	forged := open()
	wscdOnForged, attacker := keys(forged, wscdDev, ""), keys(forged, testdevice.Soft(t), wscd.WSCAPrefix)
	if kidOf(attacker) == realWSCA {
		t.Fatal("two soft devices made the same key")
	}
	if _, err := wscdOnForged.ShareSealer(ctx, wscd.WSCAPrefix, realWSCA); !errors.Is(err, wscd.ErrPeerNotPinned) {
		t.Fatalf("pinned WSCD with the writer's key: %v, want ErrPeerNotPinned", err)
	}
	sh := wscd.NewShare(wscdOnForged, wscd.WSCAPrefix, realWSCA)
	if sl, err := sh.Sealer(ctx); sl != nil || err != nil {
		t.Fatalf("pinned Share with the writer's key: %v, %v; want nothing shared", sl, err)
	}
	unpinned, err := wscdOnForged.ShareSealer(ctx, wscd.WSCAPrefix, "")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := attacker.ShareSealer(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(unpinned.MAC("d", []byte("x")), theirs.MAC("d", []byte("x"))) {
		t.Fatal("the writer should derive what an unpinned WSCD shares (why the pin exists)")
	}
	if sl, err := wscd.NoShare(wscdKeys).Sealer(ctx); sl != nil || err != nil {
		t.Fatalf("NoShare: %v, %v", sl, err)
	}
}
