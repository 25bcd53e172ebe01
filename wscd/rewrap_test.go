//go:build cgo && !nopkcs11

package wscd_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	p11 "github.com/miekg/pkcs11"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/device/devicetest"
	"github.com/wsca/wsca/device/pkcs11"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// tokenConfig is the test token's configuration.
func tokenConfig(t testing.TB) pkcs11.Config {
	t.Helper()
	cfg, err := pkcs11.ParseURI(testenv.PKCS11URI(t))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// wrapLabel is a wrapping-key label of the test's own, whose keys are
// removed when it ends.
func wrapLabel(t testing.TB) string {
	t.Helper()
	label := string(devicetest.NewOwner(t, "rwlabel"))
	t.Cleanup(func() {
		lib, s := rawTokenSession(t)
		if err := lib.FindObjectsInit(s, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY), p11.NewAttribute(p11.CKA_LABEL, label)}); err != nil {
			return
		}
		hs, _, _ := lib.FindObjects(s, 16)
		lib.FindObjectsFinal(s)
		for _, h := range hs {
			lib.DestroyObject(s, h)
		}
	})
	return label
}

// wrappedUnder opens the test token in wrapped storage under label.
func wrappedUnder(t testing.TB, label string) *pkcs11.Device {
	t.Helper()
	cfg := tokenConfig(t)
	cfg.Storage, cfg.WrapLabel, cfg.Cache = device.StorageWrapped, label, 16
	d, err := pkcs11.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func servicesOn(t testing.TB, dev device.Device, st wscd.Store) *wscd.Services {
	t.Helper()
	svc, err := wscd.New(wscd.Config{Device: dev, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func openStore(t testing.TB, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// rawTokenSession is a logged-in session on the test token through a
// context of its own (the library is initialised already by a device).
func rawTokenSession(t testing.TB) (*p11.Ctx, p11.SessionHandle) {
	t.Helper()
	cfg := tokenConfig(t)
	lib := p11.New(cfg.Module)
	if err := lib.Initialize(); err != nil && !errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		t.Fatal(err)
	}
	slots, err := lib.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, sl := range slots {
		if ti, err := lib.GetTokenInfo(sl); err != nil || ti.Label != cfg.TokenLabel {
			continue
		}
		s, err := lib.OpenSession(sl, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
		if err != nil {
			t.Fatal(err)
		}
		lib.Login(s, p11.CKU_USER, cfg.PIN) // already logged in through the devices
		t.Cleanup(func() { lib.CloseSession(s) })
		return lib, s
	}
	t.Fatalf("token %q not found", cfg.TokenLabel)
	return nil, 0
}

var at0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

var p256OID = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}

// extractableTokenKey makes a unit's key as a token object that another
// tool made extractable, and records it as the key service would.
func extractableTokenKey(t testing.TB, st *store.Store, unit string) device.Key {
	t.Helper()
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	point := priv.PublicKey().Bytes()
	pub, err := device.PublicKeyFromBytes(point)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := device.KIDOf(pub)
	if err != nil {
		t.Fatal(err)
	}
	lib, s := rawTokenSession(t)
	common := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC), p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_EC_PARAMS, p256OID), p11.NewAttribute(p11.CKA_ID, kid.Bytes()),
		p11.NewAttribute(p11.CKA_LABEL, unit),
	}
	if _, err := lib.CreateObject(s, append([]*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true), p11.NewAttribute(p11.CKA_EXTRACTABLE, true),
		p11.NewAttribute(p11.CKA_SIGN, true), p11.NewAttribute(p11.CKA_DERIVE, true),
		p11.NewAttribute(p11.CKA_VALUE, priv.Bytes()),
	}, common...)); err != nil {
		t.Fatal(err)
	}
	if _, err := lib.CreateObject(s, append([]*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY), p11.NewAttribute(p11.CKA_PRIVATE, false),
		p11.NewAttribute(p11.CKA_VERIFY, true), p11.NewAttribute(p11.CKA_EC_POINT, append([]byte{0x04, byte(len(point))}, point...)),
	}, common...)); err != nil {
		t.Fatal(err)
	}
	if err := st.InsertKey(context.Background(), store.Key{KID: string(kid), UnitID: unit, PublicKey: point,
		Backend: pkcs11.Backend, State: store.KeyActive, CreatedAt: at0}); err != nil {
		t.Fatal(err)
	}
	return device.Key{KID: kid, Owner: device.Owner(unit), Public: pub}
}

// pageStore is the store with a hook on the pages of keys to re-wrap.
type pageStore struct {
	*store.Store
	onPage func([]store.KeyBlob)
}

func (p pageStore) KeyBlobsNotUnder(ctx context.Context, prefix []byte, after string, limit int) ([]store.KeyBlob, error) {
	recs, err := p.Store.KeyBlobsNotUnder(ctx, prefix, after, limit)
	if err == nil && p.onPage != nil {
		p.onPage(recs)
	}
	return recs, err
}

// rewrapAll runs Rewrap from the start until done and sums the batches.
func rewrapAll(t testing.TB, k *wscd.Keys, batch int) (rewrapped, server, lost int) {
	t.Helper()
	cursor := ""
	for {
		r, err := k.Rewrap(context.Background(), cursor, batch)
		if err != nil {
			t.Fatal(err)
		}
		rewrapped, server, lost = rewrapped+r.Rewrapped, server+r.ServerKeys, lost+r.Lost
		if r.Refused != 0 {
			t.Fatalf("refused %v", r.RefusedKIDs)
		}
		if r.Done {
			return
		}
		cursor = r.Cursor
	}
}

// TestRewrapRotation, on both stores: keys made under one wrapping key are
// re-wrapped under a new one by a batched run that is stopped midway and
// started again, while other goroutines sign through an instance still on
// the old label and through the re-wrapping one, and destroy and make
// keys. Every signature verifies; no key is lost or done twice; afterwards
// the old wrapping key is reported unused, deleted on request (and no
// other), and a fresh instance with only the new key uses every key and
// derives the server's sealer from its re-wrapped blob.
func TestRewrapRotation(t *testing.T) {
	for _, b := range testenv.StoreBackends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.DSN(t)
			oldLabel, newLabel := wrapLabel(t), wrapLabel(t)
			a := servicesOn(t, wrappedUnder(t, oldLabel), openStore(t, dsn))
			const n = 30
			keys := map[device.KID]device.Key{}
			var units []string
			for i := range n {
				u := fmt.Sprintf("rot-%02d", i)
				if err := a.Units.Create(ctx, u); err != nil {
					t.Fatal(err)
				}
				k, err := a.Keys.Generate(ctx, u)
				if err != nil {
					t.Fatal(err)
				}
				keys[k.KID], units = k, append(units, u)
			}
			st := openStore(t, dsn)
			newDev := wrappedUnder(t, newLabel)
			bsvc := servicesOn(t, newDev, st)

			// Before: the old key carries every blob.
			uses, err := bsvc.Keys.WrappingKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if u := useOf(uses, oldLabel); u.Keys != n || u.ServerKeys == 0 || !u.Known || u.Unused() {
				t.Fatalf("old wrapping key before the re-wrap: %+v", u)
			}

			var (
				wg     sync.WaitGroup
				stop   = make(chan struct{})
				signed atomic.Int64
				errs   = make(chan error, 8)
			)
			// Keys 0..4 are destroyed while the run goes on; the others
			// sign all along, through both instances.
			for w, svc := range []*wscd.Services{a, bsvc} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						k := keyOf(keys, units[5+(i*7+w)%(n-5)])
						d := digest(fmt.Sprint(w, i))
						sig, err := svc.Keys.Sign(ctx, string(k.Owner), string(k.KID), d)
						if err != nil || !device.VerifyRaw(k.Public, d, sig) {
							errs <- fmt.Errorf("sign %s during the re-wrap: %v", k.KID, err)
							return
						}
						signed.Add(1)
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 5 {
					k := keyOf(keys, units[i])
					if err := a.Keys.Destroy(ctx, string(k.Owner), string(k.KID)); err != nil {
						errs <- fmt.Errorf("destroy during the re-wrap: %v", err)
						return
					}
				}
			}()

			// One batch, then stopped; started again from the start.
			first, err := bsvc.Keys.Rewrap(ctx, "", 7)
			if err != nil || first.Done || first.Cursor == "" || first.Rewrapped == 0 || first.ServerKeys == 0 {
				t.Fatalf("first batch %+v, %v", first, err)
			}
			rewrapped, server, lost := rewrapAll(t, bsvc.Keys, 7)
			close(stop)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if server != 0 {
				t.Fatalf("server keys re-wrapped twice: %d", server)
			}
			if total := first.Rewrapped + rewrapped + lost + first.Lost; total > n {
				t.Fatalf("%d keys re-wrapped or lost, of %d", total, n)
			}
			// Nothing left, and a second run does nothing.
			if again, server, _ := rewrapAll(t, bsvc.Keys, 7); again != 0 || server != 0 {
				t.Fatalf("second run re-wrapped %d keys and %d server keys", again, server)
			}
			if signed.Load() == 0 {
				t.Fatal("nothing signed during the re-wrap")
			}

			uses, err = bsvc.Keys.WrappingKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if u := useOf(uses, oldLabel); !u.Unused() {
				t.Fatalf("old wrapping key after the re-wrap: %+v", u)
			}
			if u := useOf(uses, newLabel); !u.Current || u.Keys != n-5 || u.ServerKeys == 0 || u.Unused() {
				t.Fatalf("new wrapping key after the re-wrap: %+v", u)
			}
			deleted, err := bsvc.Keys.DeleteUnusedWrappingKeys(ctx)
			if err != nil || len(deleted) != 1 || deleted[0].Label != oldLabel {
				t.Fatalf("deleted %+v, %v", deleted, err)
			}

			fresh := servicesOn(t, wrappedUnder(t, newLabel), openStore(t, dsn))
			for i, u := range units {
				k := keyOf(keys, u)
				sig, err := fresh.Keys.Sign(ctx, u, string(k.KID), digest("after"))
				switch {
				case i < 5 && !errors.Is(err, wscd.ErrKeyNotFound):
					t.Fatalf("destroyed key %s: %v", k.KID, err)
				case i >= 5 && (err != nil || !device.VerifyRaw(k.Public, digest("after"), sig)):
					t.Fatalf("key %s after the old wrapping key is gone: %v", k.KID, err)
				}
			}
		})
	}
}

func keyOf(keys map[device.KID]device.Key, unit string) device.Key {
	for _, k := range keys {
		if string(k.Owner) == unit {
			return k
		}
	}
	panic("no key for " + unit)
}

func useOf(uses []wscd.WrappingKeyUse, label string) wscd.WrappingKeyUse {
	for _, u := range uses {
		if u.Label == label {
			return u
		}
	}
	return wscd.WrappingKeyUse{}
}

// TestRewrapLosesToDestroy: a key destroyed between the page read and the
// swap is not brought back: the re-wrapper's blob is discarded (Lost).
func TestRewrapLosesToDestroy(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.SQLite(t)
	a := servicesOn(t, wrappedUnder(t, wrapLabel(t)), openStore(t, dsn))
	if err := a.Units.Create(ctx, "unit-l"); err != nil {
		t.Fatal(err)
	}
	k, err := a.Keys.Generate(ctx, "unit-l")
	if err != nil {
		t.Fatal(err)
	}
	ps := pageStore{Store: openStore(t, dsn)}
	ps.onPage = func(recs []store.KeyBlob) {
		for _, r := range recs {
			if err := a.Keys.Destroy(ctx, r.UnitID, r.KID); err != nil {
				t.Error(err)
			}
		}
	}
	b := servicesOn(t, wrappedUnder(t, wrapLabel(t)), ps)
	r, err := b.Keys.Rewrap(ctx, "", 0)
	if err != nil || !r.Done || r.Rewrapped != 0 || r.Lost != 1 {
		t.Fatalf("rewrap %+v, %v", r, err)
	}
	if _, err := ps.GetKey(ctx, string(k.KID)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("destroyed key after the re-wrap: %v", err)
	}
}

// TestRewrapRefusesChangedRecord: a record moved to another unit fails its
// MAC; the re-wrap leaves it as it is (Refused) and never gives its blob a
// MAC for the new owner.
func TestRewrapRefusesChangedRecord(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.SQLite(t)
	st := openStore(t, dsn)
	a := servicesOn(t, wrappedUnder(t, wrapLabel(t)), st)
	for _, u := range []string{"owner-r", "thief-r"} {
		if err := a.Units.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	k, err := a.Keys.Generate(ctx, "owner-r")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := st.GetKey(ctx, string(k.KID))
	if err != nil {
		t.Fatal(err)
	}
	st.DeleteKey(ctx, rec.KID)
	rec.UnitID = "thief-r"
	if err := st.InsertKey(ctx, rec); err != nil {
		t.Fatal(err)
	}
	b := servicesOn(t, wrappedUnder(t, wrapLabel(t)), openStore(t, dsn))
	r, err := b.Keys.Rewrap(ctx, "", 0)
	if err != nil || r.Refused != 1 || r.Rewrapped != 0 || len(r.RefusedKIDs) != 1 || r.RefusedKIDs[0] != rec.KID {
		t.Fatalf("rewrap %+v, %v", r, err)
	}
	after, err := st.GetKey(ctx, rec.KID)
	if err != nil || string(after.Wrapped) != string(rec.Wrapped) {
		t.Fatalf("the changed record was re-wrapped: %v", err)
	}
	if _, err := b.Keys.Sign(ctx, "thief-r", rec.KID, digest("x")); !errors.Is(err, wscd.ErrKeyNotFound) {
		t.Fatalf("thief signs: %v", err)
	}
}

// TestMigrate, on both stores: token keys that the token lets be wrapped
// move into blobs (their token objects destroyed after the commit) while
// another instance signs with them; keys this device made (never
// extractable) stay token objects, are counted and keep working; a second
// run does nothing again.
func TestMigrate(t *testing.T) {
	for _, b := range testenv.StoreBackends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.DSN(t)
			st := openStore(t, dsn)
			label := wrapLabel(t)
			w := servicesOn(t, wrappedUnder(t, label), st)
			tok := servicesOn(t, testdevice.PKCS11(t), openStore(t, dsn))
			var movable, own []device.Key
			for i := range 7 {
				u := string(devicetest.NewOwner(t, "mig"))
				if err := w.Units.Create(ctx, u); err != nil {
					t.Fatal(err)
				}
				if i%3 == 0 {
					k, err := tok.Keys.Generate(ctx, u)
					if err != nil {
						t.Fatal(err)
					}
					own = append(own, k)
					continue
				}
				movable = append(movable, extractableTokenKey(t, st, u))
			}
			other := servicesOn(t, wrappedUnder(t, label), openStore(t, dsn))
			stale, err := st.GetKeyAccess(ctx, string(movable[0].KID))
			if err != nil {
				t.Fatal(err)
			}

			stop := make(chan struct{})
			errs := make(chan error, 1)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					k := movable[i%len(movable)]
					d := digest(fmt.Sprint(i))
					sig, err := other.Keys.Sign(ctx, string(k.Owner), string(k.KID), d)
					if err != nil || !device.VerifyRaw(k.Public, d, sig) {
						errs <- fmt.Errorf("sign %s during the migration: %v", k.KID, err)
						return
					}
				}
			}()
			var migrated, stay int
			cursor := ""
			for {
				r, err := w.Keys.Migrate(ctx, cursor, 2)
				if err != nil {
					t.Fatal(err)
				}
				if r.Refused != 0 || r.Lost != 0 || r.CopiesLeft != 0 {
					t.Fatalf("batch %+v", r)
				}
				migrated, stay = migrated+r.Migrated, stay+r.StayToken
				if r.Done {
					break
				}
				cursor = r.Cursor
			}
			close(stop)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if migrated != len(movable) || stay != len(own) {
				t.Fatalf("migrated %d (want %d), stay token %d (want %d)", migrated, len(movable), stay, len(own))
			}
			for _, k := range movable {
				rec, err := st.GetKey(ctx, string(k.KID))
				if err != nil || len(rec.Wrapped) == 0 || len(rec.WrappedMAC) == 0 {
					t.Fatalf("record of a migrated key: %+v, %v", rec, err)
				}
				if onToken, err := w.Keys.Device().List(ctx, k.Owner); err != nil || len(onToken) != 0 {
					t.Fatalf("%d token objects left of a migrated key (%v)", len(onToken), err)
				}
				sig, err := w.Keys.Sign(ctx, string(k.Owner), string(k.KID), digest("m"))
				if err != nil || !device.VerifyRaw(k.Public, digest("m"), sig) {
					t.Fatalf("migrated key: %v", err)
				}
			}
			for _, k := range own {
				sig, err := w.Keys.Sign(ctx, string(k.Owner), string(k.KID), digest("o"))
				if err != nil || !device.VerifyRaw(k.Public, digest("o"), sig) {
					t.Fatalf("a key that stays a token object: %v", err)
				}
				if rec, err := st.GetKey(ctx, string(k.KID)); err != nil || rec.Wrapped != nil {
					t.Fatalf("record of a token key: %v", err)
				}
			}
			// A signer that read the record before the migration finds
			// no token object and reads it again.
			sig, err := other.Keys.In("", 0).SignWithAccess(ctx, string(movable[0].Owner), string(movable[0].KID), &stale, digest("s"))
			if err != nil || !device.VerifyRaw(movable[0].Public, digest("s"), sig) {
				t.Fatalf("sign with the record read before the migration: %v", err)
			}
			r, err := w.Keys.Migrate(ctx, "", 0)
			if err != nil || !r.Done || r.Migrated != 0 || r.StayToken != len(own) {
				t.Fatalf("second run %+v, %v", r, err)
			}
			for _, k := range own {
				tok.Keys.Destroy(ctx, string(k.Owner), string(k.KID))
			}
		})
	}
}

// TestWrappedDestroyErases: destroying a wrapped key erases its record
// (blob and MAC) and this instance's unwrapped copy.
func TestWrappedDestroyErases(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, testenv.SQLite(t))
	dev := wrappedUnder(t, wrapLabel(t))
	svc := servicesOn(t, dev, st)
	if err := svc.Units.Create(ctx, "unit-e"); err != nil {
		t.Fatal(err)
	}
	k, err := svc.Keys.Generate(ctx, "unit-e")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Keys.Sign(ctx, "unit-e", string(k.KID), digest("e")); err != nil {
		t.Fatal(err)
	}
	cached := dev.CachedKeys()
	if err := svc.Keys.Destroy(ctx, "unit-e", string(k.KID)); err != nil {
		t.Fatal(err)
	}
	if n := dev.CachedKeys(); n != cached-1 {
		t.Fatalf("cache holds %d keys after destroy, had %d", n, cached)
	}
	if _, err := st.GetKey(ctx, string(k.KID)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("record after destroy: %v", err)
	}
	// The blob, kept by someone who read the database before, is no
	// use through the service.
	if _, err := svc.Keys.Sign(ctx, "unit-e", string(k.KID), digest("e")); !errors.Is(err, wscd.ErrKeyNotFound) {
		t.Fatalf("sign after destroy: %v", err)
	}
}

// TestRewrapInput: the batch and the cursor are checked; a device in token
// storage has nothing to re-wrap.
func TestRewrapInput(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, testenv.SQLite(t))
	w := servicesOn(t, wrappedUnder(t, wrapLabel(t)), st)
	for _, c := range []struct {
		cursor string
		batch  int
	}{{"", -1}, {"", wscd.MaxBlobBatch + 1}, {"not-a-kid", 1}, {strings.Repeat("g", 32), 1}} {
		if _, err := w.Keys.Rewrap(ctx, c.cursor, c.batch); !errors.Is(err, wscd.ErrInvalidInput) {
			t.Fatalf("rewrap %q %d: %v", c.cursor, c.batch, err)
		}
		if _, err := w.Keys.Migrate(ctx, c.cursor, c.batch); !errors.Is(err, wscd.ErrInvalidInput) {
			t.Fatalf("migrate %q %d: %v", c.cursor, c.batch, err)
		}
	}
	tok := servicesOn(t, testdevice.PKCS11(t), st)
	if _, err := tok.Keys.Rewrap(ctx, "", 0); !errors.Is(err, wscd.ErrNotWrapped) {
		t.Fatalf("token storage: %v", err)
	}
	if _, err := tok.Keys.WrappingKeys(ctx); !errors.Is(err, wscd.ErrNotWrapped) {
		t.Fatalf("token storage: %v", err)
	}
}

// TestRewrapKeepsOPRFKeysWrappingKey: a PIN record's HSM OPRF key (a
// derive-only blob, in a record, a pending registration or retired) is
// not re-wrapped, so its wrapping key stays in use after a re-wrap run:
// the report names it and delete-unused leaves it, and the OPRF key still
// derives. Before, the report called the key unused and delete-unused
// deleted it, and every PIN record made before the rotation was useless.
func TestRewrapKeepsOPRFKeysWrappingKey(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		place func(st *store.Store, unit string, k store.OPRFKey) error
	}{
		{"record", func(st *store.Store, unit string, k store.OPRFKey) error {
			return st.PutFirstPINRecord(ctx, unit, "pin", store.PINRecord{Record: []byte("r"), CredNonce: []byte("n"), MAC: []byte("m"), OPRF: k}, at0)
		}},
		{"pending registration", func(st *store.Store, unit string, k store.OPRFKey) error {
			return st.PutPendingRegistration(ctx, store.PendingRegistration{UnitID: unit, Context: "pin", Requester: "q",
				CredNonce: []byte("n"), ExpiresAt: at0.Add(time.Hour), OPRF: k}, 4)
		}},
		{"retired", func(st *store.Store, unit string, k store.OPRFKey) error {
			if err := st.PutFirstPINRecord(ctx, unit, "pin", store.PINRecord{Record: []byte("r"), CredNonce: []byte("n"), MAC: []byte("m"), OPRF: k}, at0); err != nil {
				return err
			}
			return st.ReplacePINRecord(ctx, unit, "pin", store.PINRecord{Record: []byte("r2"), CredNonce: []byte("n2"), MAC: []byte("m")}, at0)
		}},
	} {
		for _, be := range testenv.StoreBackends() {
			t.Run(c.name+"/"+be.Name, func(t *testing.T) {
				dsn := be.DSN(t)
				st := openStore(t, dsn)
				oldLabel, newLabel := wrapLabel(t), wrapLabel(t)
				oldDev := wrappedUnder(t, oldLabel)
				a := servicesOn(t, oldDev, st)
				const unit = "unit-oprf"
				if err := a.Units.Create(ctx, unit); err != nil {
					t.Fatal(err)
				}
				// A wallet key (and the server keys) under the old key too:
				// the re-wrap moves them, and the old key is this store's.
				if _, err := a.Keys.Generate(ctx, unit); err != nil {
					t.Fatal(err)
				}
				k, err := oldDev.GenerateDeriveOnly(ctx, device.Owner(unit))
				if err != nil {
					t.Fatal(err)
				}
				pub, err := k.Public.Bytes()
				if err != nil {
					t.Fatal(err)
				}
				if err := c.place(st, unit, store.OPRFKey{Public: pub, Wrapped: k.Wrapped, MAC: []byte("mac")}); err != nil {
					t.Fatal(err)
				}
				b := servicesOn(t, wrappedUnder(t, newLabel), openStore(t, dsn))
				rewrapAll(t, b.Keys, 0)
				uses, err := b.Keys.WrappingKeys(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if u := useOf(uses, oldLabel); !u.Known || u.Keys != 0 || u.ServerKeys != 0 || u.OPRFKeys != 1 || u.Unused() {
					t.Fatalf("old wrapping key after the re-wrap: %+v", u)
				}
				deleted, err := b.Keys.DeleteUnusedWrappingKeys(ctx)
				if err != nil || len(deleted) != 0 {
					t.Fatalf("deleted %+v, %v", deleted, err)
				}
				peer, err := ecdh.P256().GenerateKey(rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := b.Keys.Device().ECDH(ctx, k.Ref(), peer.PublicKey()); err != nil {
					t.Fatalf("the OPRF key after the rotation: %v", err)
				}
			})
		}
	}
}

// TestWrappingKeysForeignKey: a database writer who makes rows name
// another deployment's wrapping key on the same token (a genuine blob
// under it) cannot make the report mark that key as this store's, so
// --delete-unused never deletes it once the rows are gone. Only a wallet
// key's blob with its valid MAC (or being current) marks a key. Before,
// any row naming the key marked it.
func TestWrappingKeysForeignKey(t *testing.T) {
	ctx := context.Background()
	const unit = "unit-f"
	for _, c := range []struct {
		name  string
		forge func(st *store.Store, ours, foreign device.Key) error
	}{
		{"wallet key with a MAC of its own", func(st *store.Store, _, foreign device.Key) error {
			pub, _ := foreign.Public.Bytes()
			return st.InsertKey(ctx, store.Key{KID: string(foreign.KID), UnitID: unit, PublicKey: pub, Backend: pkcs11.Backend,
				State: store.KeyActive, CreatedAt: at0, Wrapped: foreign.Wrapped, WrappedMAC: make([]byte, 32)})
		}},
		{"our wallet key's record with the foreign blob", func(st *store.Store, ours, foreign device.Key) error {
			rec, err := st.GetKey(ctx, string(ours.KID))
			if err != nil {
				return err
			}
			if err := st.DeleteKey(ctx, rec.KID); err != nil {
				return err
			}
			rec.Wrapped = foreign.Wrapped
			return st.InsertKey(ctx, rec)
		}},
		{"server key", func(st *store.Store, _, foreign device.Key) error {
			pub, _ := foreign.Public.Bytes()
			return st.PutServerKey(ctx, store.ServerKey{Purpose: "forged", KID: string(foreign.KID), PublicKey: pub, Wrapped: foreign.Wrapped, CreatedAt: at0})
		}},
		{"PIN record's OPRF key", func(st *store.Store, _, foreign device.Key) error {
			pub, _ := foreign.Public.Bytes()
			return st.PutFirstPINRecord(ctx, unit, "pin", store.PINRecord{Record: []byte("r"), CredNonce: []byte("n"), MAC: []byte("m"),
				OPRF: store.OPRFKey{Public: pub, Wrapped: foreign.Wrapped, MAC: []byte("m")}}, at0)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := openStore(t, testenv.SQLite(t))
			svc := servicesOn(t, wrappedUnder(t, wrapLabel(t)), st)
			if err := svc.Units.Create(ctx, unit); err != nil {
				t.Fatal(err)
			}
			ours, err := svc.Keys.Generate(ctx, unit)
			if err != nil {
				t.Fatal(err)
			}
			foreignLabel := wrapLabel(t)
			foreign, err := wrappedUnder(t, foreignLabel).Generate(ctx, "other-deployment")
			if err != nil {
				t.Fatal(err)
			}
			if err := c.forge(st, ours, foreign); err != nil {
				t.Fatal(err)
			}
			uses, err := svc.Keys.WrappingKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if u := useOf(uses, foreignLabel); !u.OnDevice || u.Known || u.Unused() {
				t.Fatalf("the foreign wrapping key: %+v", u)
			}
		})
	}
}

// TestRewrapKeepsHeldBlobsWrappingKey: a blob another service keeps sealed
// outside the store's key tables (the PIN server's fake OPRF key) counts
// as a server key once given by SetHeldBlobs, so after a rotation its
// wrapping key is neither reported unused nor deleted. Before, deleting it
// made fake logins fail where real ones did not, telling which units have
// a PIN record.
func TestRewrapKeepsHeldBlobsWrappingKey(t *testing.T) {
	ctx := context.Background()
	for _, be := range testenv.StoreBackends() {
		t.Run(be.Name, func(t *testing.T) {
			dsn := be.DSN(t)
			st := openStore(t, dsn)
			oldLabel, newLabel := wrapLabel(t), wrapLabel(t)
			oldDev := wrappedUnder(t, oldLabel)
			a := servicesOn(t, oldDev, st)
			const unit = "unit-held"
			if err := a.Units.Create(ctx, unit); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Keys.Generate(ctx, unit); err != nil {
				t.Fatal(err)
			}
			held, err := oldDev.GenerateDeriveOnly(ctx, device.Owner("wsca.held"))
			if err != nil {
				t.Fatal(err)
			}
			b := servicesOn(t, wrappedUnder(t, newLabel), openStore(t, dsn))
			rewrapAll(t, b.Keys, 0)
			b.Keys.SetHeldBlobs(func() [][]byte { return [][]byte{held.Wrapped} })
			uses, err := b.Keys.WrappingKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if u := useOf(uses, oldLabel); !u.Known || u.Keys != 0 || u.ServerKeys != 1 || u.Unused() {
				t.Fatalf("old wrapping key with a held blob under it: %+v", u)
			}
			if deleted, err := b.Keys.DeleteUnusedWrappingKeys(ctx); err != nil || len(deleted) != 0 {
				t.Fatalf("deleted %+v, %v", deleted, err)
			}
			peer, err := ecdh.P256().GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Keys.Device().ECDH(ctx, held.Ref(), peer.PublicKey()); err != nil {
				t.Fatalf("the held key after the rotation: %v", err)
			}
		})
	}
}
