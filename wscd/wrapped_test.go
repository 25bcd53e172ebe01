package wscd_test

import (
	"context"
	"errors"
	"testing"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// wrappedServices is a key service over the test token in wrapped
// storage and the store at dsn.
func wrappedServices(t *testing.T, st *store.Store) *wscd.Services {
	t.Helper()
	svc, err := wscd.New(wscd.Config{Device: testdevice.PKCS11Wrapped(t), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// TestWrappedKeyMoved: a wrapped key's record carries its blob and a MAC
// binding the blob to owner and kid. Someone who can write the database
// and moves the record to another unit gets a key nobody can use: the MAC
// no longer matches, and the device never sees the blob.
func TestWrappedKeyMoved(t *testing.T) {
	ctx := t.Context()
	st, err := store.Open(ctx, testenv.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := wrappedServices(t, st)
	for _, u := range []string{"owner-a", "thief-b"} {
		if err := svc.Units.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	k, err := svc.Keys.Generate(ctx, "owner-a")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := st.GetKey(ctx, string(k.KID))
	if err != nil || len(rec.Wrapped) == 0 || len(rec.WrappedMAC) == 0 {
		t.Fatalf("record of a wrapped key: blob %d bytes, MAC %d bytes (%v)", len(rec.Wrapped), len(rec.WrappedMAC), err)
	}
	if _, err := svc.Keys.Sign(ctx, "owner-a", string(k.KID), digest("m")); err != nil {
		t.Fatalf("owner signs: %v", err)
	}
	// The record moved to the thief's unit, blob and MAC unchanged.
	if err := st.DeleteKey(ctx, rec.KID); err != nil {
		t.Fatal(err)
	}
	rec.UnitID = "thief-b"
	if err := st.InsertKey(ctx, rec); err != nil {
		t.Fatal(err)
	}
	before := svc.Keys.Device().Calls()
	if _, err := svc.Keys.Sign(ctx, "thief-b", string(k.KID), digest("m")); !errors.Is(err, wscd.ErrKeyNotFound) {
		t.Fatalf("moved key: %v, want ErrKeyNotFound", err)
	}
	if d := device.CallsDelta(before, svc.Keys.Device().Calls()); len(d) != 0 {
		t.Fatalf("the device was called for a moved key: %v", d)
	}
	// A changed blob fails its MAC the same way.
	if err := st.DeleteKey(ctx, rec.KID); err != nil {
		t.Fatal(err)
	}
	rec.UnitID = "owner-a"
	rec.Wrapped = append([]byte{}, rec.Wrapped...)
	rec.Wrapped[len(rec.Wrapped)-1] ^= 1
	if err := st.InsertKey(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Keys.Sign(ctx, "owner-a", string(k.KID), digest("m")); !errors.Is(err, wscd.ErrKeyNotFound) {
		t.Fatalf("changed blob: %v, want ErrKeyNotFound", err)
	}
}

// TestWrappedDestroyAcrossInstances: two instances on PostgreSQL, each
// with its own cache of unwrapped keys. A key destroyed on one can no
// longer sign on the other, although that one still caches it: every use
// reads the key's record first.
func TestWrappedDestroyAcrossInstances(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	open := func() *store.Store {
		st, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a, b := wrappedServices(t, open()), wrappedServices(t, open())
	if err := a.Units.Create(ctx, "unit-x"); err != nil {
		t.Fatal(err)
	}
	k, err := a.Keys.Generate(ctx, "unit-x")
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []*wscd.Services{a, b} {
		if _, err := svc.Keys.Sign(ctx, "unit-x", string(k.KID), digest("warm")); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Keys.Destroy(ctx, "unit-x", string(k.KID)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Keys.Sign(ctx, "unit-x", string(k.KID), digest("after")); !errors.Is(err, wscd.ErrKeyNotFound) {
		t.Fatalf("sign on the other instance after destroy: %v, want ErrKeyNotFound", err)
	}
}
