package wscd_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
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

// TestWrappedUnitsBounded: 10 000 units on PostgreSQL each generate a
// wrapped key and sign with it through the key service. The HSM gains no
// token object for them, the cache of unwrapped keys never holds more than
// its size (64 for the test device), and every key is in the store with
// its blob and MAC.
func TestWrappedUnitsBounded(t *testing.T) {
	const units, workers = 10_000, 4
	ctx := context.Background()
	st, err := store.Open(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := wrappedServices(t, st)
	dev := svc.Keys.Device()
	cached, ok := dev.(interface{ CachedKeys() int })
	if !ok {
		t.Fatal("the wrapped test device does not report its cache")
	}
	var (
		mu      sync.Mutex
		maxSeen int
		wg      sync.WaitGroup
		errs    = make(chan error, workers)
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < units; i += workers {
				u := fmt.Sprintf("bound-%05d", i)
				if err := svc.Units.Create(ctx, u); err != nil {
					errs <- err
					return
				}
				k, err := svc.Keys.Generate(ctx, u)
				if err != nil {
					errs <- err
					return
				}
				if _, err := svc.Keys.Sign(ctx, u, string(k.KID), digest(u)); err != nil {
					errs <- err
					return
				}
				if i%500 == 0 {
					mu.Lock()
					maxSeen = max(maxSeen, cached.CachedKeys())
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := cached.CachedKeys(); n > 64 || maxSeen > 64 {
		t.Fatalf("cache held %d keys (peak seen %d), bound 64", n, maxSeen)
	}
	// No unit key is a token object. (The token is shared with the other
	// packages' tests running at the same time, so its total object count
	// says nothing; every 25th unit is looked up by its owner label.)
	for i := 0; i < units; i += 25 {
		u := fmt.Sprintf("bound-%05d", i)
		if keys, err := dev.List(ctx, device.Owner(u)); err != nil || len(keys) != 0 {
			t.Fatalf("%s: %d token objects (%v), want none", u, len(keys), err)
		}
	}
	for _, u := range []string{"bound-00000", "bound-04999", "bound-09999"} {
		keys, err := st.ListKeys(ctx, u)
		if err != nil || len(keys) != 1 || len(keys[0].Wrapped) == 0 || len(keys[0].WrappedMAC) == 0 {
			t.Fatalf("%s: %d keys (%v)", u, len(keys), err)
		}
		if onToken, err := dev.List(ctx, device.Owner(u)); err != nil || len(onToken) != 0 {
			t.Fatalf("%s has %d token objects (%v)", u, len(onToken), err)
		}
	}
}

// BenchmarkWrappedFootprint: 1 000 units with one key each, wrapped or a
// token object, on PostgreSQL: the bytes the keys table grows by
// (pg_total_relation_size: rows, TOAST and indexes) and the token objects
// the HSM gains, per 1 000 units.
func BenchmarkWrappedFootprint(b *testing.B) {
	for _, mode := range []struct {
		name string
		open func(testing.TB) device.Device
	}{{"token", testdevice.PKCS11}, {"wrapped", testdevice.PKCS11Wrapped}} {
		b.Run(mode.name, func(b *testing.B) {
			ctx := context.Background()
			dsn := testenv.Postgres(b)
			st, err := store.Open(ctx, dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			db, err := sql.Open("pgx", dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			dev := mode.open(b)
			svc, err := wscd.New(wscd.Config{Device: dev, Store: st})
			if err != nil {
				b.Fatal(err)
			}
			size := func() int64 {
				var n int64
				if err := db.QueryRowContext(ctx, `SELECT pg_total_relation_size('keys')`).Scan(&n); err != nil {
					b.Fatal(err)
				}
				return n
			}
			for i := 0; b.Loop(); i++ {
				before, tokenBefore := size(), len(listAll(b, dev))
				var made []string
				for j := range 1000 {
					u := fmt.Sprintf("fp-%s-%d-%04d", mode.name, i, j)
					if err := svc.Units.Create(ctx, u); err != nil {
						b.Fatal(err)
					}
					if _, err := svc.Keys.Generate(ctx, u); err != nil {
						b.Fatal(err)
					}
					made = append(made, u)
				}
				b.ReportMetric(float64(size()-before), "db-bytes/1000-units")
				b.ReportMetric(float64(len(listAll(b, dev))-tokenBefore+tokenObjects(b, dev, made)), "token-keys/1000-units")
				for _, u := range made {
					if err := svc.Units.Destroy(ctx, u); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

func listAll(b *testing.B, dev device.Device) []device.Key {
	b.Helper()
	keys, err := dev.List(context.Background(), wscd.ServerOwner)
	if err != nil {
		b.Fatal(err)
	}
	return keys
}

// tokenObjects counts the token keys of the units.
func tokenObjects(b *testing.B, dev device.Device, units []string) int {
	b.Helper()
	n := 0
	for _, u := range units {
		keys, err := dev.List(context.Background(), device.Owner(u))
		if err != nil {
			b.Fatal(err)
		}
		n += len(keys)
	}
	return n
}
