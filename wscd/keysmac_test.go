package wscd_test

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"testing"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// logLines keeps the log records of a test.
type logLines struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logLines) WithGroup(string) slog.Handler      { return l }

// errorsAbout counts ERROR records with attribute kid = kid.
func (l *logLines) errorsAbout(kid string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if r.Level != slog.LevelError {
			continue
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "kid" && a.Value.String() == kid {
				n++
			}
			return true
		})
	}
	return n
}

// TestBackfillKeyMACs: a key row made before key records had a MAC gets
// one only once the device proves it; a row a database writer planted or
// changed before the upgrade gets none (so it is never attested) and an
// ERROR log line naming it. On every device backend (a wrapped key's blob
// also passes its own MAC first) and both stores; a second run changes
// nothing.
func TestBackfillKeyMACs(t *testing.T) {
	type row struct {
		name string
		// stage makes the row (without a MAC, as before schema 0014) and
		// returns its kid; wrappedOnly rows need blobs.
		stage       func(t *testing.T, r *backfillRig) string
		wrappedOnly bool
		proven      bool
	}
	rows := []row{
		{"honest key", func(t *testing.T, r *backfillRig) string {
			return r.preMAC(t, r.generate(t, r.victim))
		}, false, true},
		{"planted row: a point of the attacker's under the victim's unit", func(t *testing.T, r *backfillRig) string {
			p, kid := testenv.ForeignP256(t)
			r.exec(t, `INSERT INTO keys (kid, unit_id, public_key, backend, state, created_at, context) VALUES ($1, $2, $3, $4, 'active', 1, '')`,
				kid, r.victim, p, r.dev.Info().Backend)
			return kid
		}, false, false},
		{"another unit's key moved to the victim", func(t *testing.T, r *backfillRig) string {
			kid := r.preMAC(t, r.generate(t, r.attacker))
			r.exec(t, `UPDATE keys SET unit_id = $1 WHERE kid = $2`, r.victim, kid)
			return kid
		}, false, false},
		{"the victim's key with another point", func(t *testing.T, r *backfillRig) string {
			kid := r.preMAC(t, r.generate(t, r.victim))
			p, _ := testenv.ForeignP256(t)
			r.exec(t, `UPDATE keys SET public_key = $1 WHERE kid = $2`, p, kid)
			return kid
		}, false, false},
		{"a key of another device backend", func(t *testing.T, r *backfillRig) string {
			kid := r.preMAC(t, r.generate(t, r.victim))
			r.exec(t, `UPDATE keys SET backend = 'other' WHERE kid = $1`, kid)
			return kid
		}, false, false},
		{"the unit's derive-only key (a SECDSA aU, a PIN record's OPRF key) planted as a wallet key", func(t *testing.T, r *backfillRig) string {
			g, ok := r.dev.(device.DeriveOnlyGenerator)
			if !ok {
				t.Fatalf("%T makes no derive-only keys", r.dev)
			}
			k, err := g.GenerateDeriveOnly(t.Context(), device.Owner(r.victim))
			if err != nil {
				t.Fatal(err)
			}
			return r.plant(t, r.victim, k)
		}, false, false},
		{"a server key planted under a reserved unit id", func(t *testing.T, r *backfillRig) string {
			k, err := r.dev.Generate(t.Context(), wscd.ServerOwner)
			if err != nil {
				t.Fatal(err)
			}
			r.exec(t, `INSERT INTO units (id, state, created_at, updated_at) VALUES ($1, 'active', 1, 1)`, string(wscd.ServerOwner))
			return r.plant(t, string(wscd.ServerOwner), k)
		}, false, false},
		{"a wrapped key whose blob fails its MAC", func(t *testing.T, r *backfillRig) string {
			kid := r.preMAC(t, r.generate(t, r.victim))
			r.exec(t, `UPDATE keys SET wrapped_mac = $1 WHERE kid = $2`, make([]byte, 32), kid)
			return kid
		}, true, false},
	}
	for _, db := range testenv.StoreBackends() {
		for _, dv := range testdevice.Backends() {
			t.Run(db.Name+"/"+dv.Name, func(t *testing.T) {
				ctx := t.Context()
				r := newBackfillRig(t, db.DSN(t), dv.Open(t))
				wrapped := r.dev.Info().Storage == device.StorageWrapped
				kids := make([]string, len(rows))
				want := 0
				for i, row := range rows {
					if row.wrappedOnly && !wrapped {
						continue
					}
					kids[i] = row.stage(t, r)
					if row.proven {
						want++
					}
				}
				// A key being destroyed is left alone.
				dying := r.preMAC(t, r.generate(t, r.victim))
				if err := r.st.SetKeyState(ctx, dying, store.KeyDestroying); err != nil {
					t.Fatal(err)
				}
				n, err := r.w.Keys.BackfillMACs(ctx, r.st)
				if err != nil || n != want {
					t.Fatalf("BackfillMACs = %d, %v; want %d", n, err, want)
				}
				sealer, err := r.w.ServerKeys.Sealer(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for i, row := range rows {
					if kids[i] == "" {
						continue
					}
					k, err := r.st.GetKey(ctx, kids[i])
					if err != nil {
						t.Fatal(err)
					}
					switch {
					case row.proven && !bytes.Equal(k.MAC, wscd.KeyMAC(sealer, k)):
						t.Errorf("%s: MAC %x, want the key's", row.name, k.MAC)
					case !row.proven && len(k.MAC) != 0:
						t.Errorf("%s: given a MAC", row.name)
					case !row.proven && r.log.errorsAbout(kids[i]) == 0:
						t.Errorf("%s: no ERROR line names it", row.name)
					}
				}
				if k, err := r.st.GetKey(ctx, dying); err != nil || len(k.MAC) != 0 {
					t.Errorf("a key being destroyed: MAC %x, %v", k.MAC, err)
				}
				// Idempotent: nothing left to prove, nothing changed.
				if n, err := r.w.Keys.BackfillMACs(ctx, r.st); err != nil || n != 0 {
					t.Errorf("second BackfillMACs = %d, %v; want 0", n, err)
				}
			})
		}
	}
}

type backfillRig struct {
	st               *store.Store
	db               *sql.DB
	dev              device.Device
	w                *wscd.Services
	log              *logLines
	victim, attacker string
}

func newBackfillRig(t *testing.T, dsn string, dev device.Device) *backfillRig {
	t.Helper()
	st, err := store.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &backfillRig{st: st, db: testenv.RawDB(t, dsn), dev: dev, log: &logLines{}, victim: wscd.NewUnitID(), attacker: wscd.NewUnitID()}
	if r.w, err = wscd.New(wscd.Config{Device: dev, Store: st, Logger: slog.New(r.log)}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{r.victim, r.attacker} {
		if err := r.w.Units.Create(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (r *backfillRig) generate(t *testing.T, unit string) string {
	t.Helper()
	k, err := r.w.Keys.Generate(t.Context(), unit)
	if err != nil {
		t.Fatal(err)
	}
	return string(k.KID)
}

func (r *backfillRig) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := r.db.ExecContext(t.Context(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// plant inserts a row, as a database writer would, naming the device key
// k (its blob, if any, without a MAC) as unit's wallet key.
func (r *backfillRig) plant(t *testing.T, unit string, k device.Key) string {
	t.Helper()
	p, err := k.Public.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	r.exec(t, `INSERT INTO keys (kid, unit_id, public_key, backend, state, created_at, context, wrapped) VALUES ($1, $2, $3, $4, 'active', 1, '', $5)`,
		string(k.KID), unit, p, r.dev.Info().Backend, append([]byte{}, k.Wrapped...))
	return string(k.KID)
}

// preMAC makes kid's row look as made before schema 0014: no MACs.
func (r *backfillRig) preMAC(t *testing.T, kid string) string {
	t.Helper()
	r.exec(t, `UPDATE keys SET mac = $1, share_mac = $1 WHERE kid = $2`, []byte{}, kid)
	return kid
}

// TestShareBackfillKeys: keys made before a WSCA instance existed get
// their share MAC once the share key is agreed, each only if its own MAC
// verifies under the WSCD's sealer; keys made after carry it from the
// start.
func TestShareBackfillKeys(t *testing.T) {
	for _, db := range testenv.StoreBackends() {
		t.Run(db.Name, func(t *testing.T) {
			ctx := t.Context()
			r := newBackfillRig(t, db.DSN(t), testdevice.Soft(t))
			if _, err := r.w.ServerKeys.Key(ctx, wscd.PurposeShare); err != nil {
				t.Fatal(err)
			}
			share := wscd.NewShare(r.w.ServerKeys, wscd.WSCAPrefix, "")
			r.w.Keys.SetShare(share)
			honest := r.generate(t, r.victim) // no WSCA yet: no share MAC
			forged := r.generate(t, r.victim)
			r.exec(t, `UPDATE keys SET mac = $1 WHERE kid = $2`, make([]byte, 32), forged)

			wscaKeys, err := wscd.NewServerKeys(wscd.ServerKeysConfig{Device: testdevice.Soft(t), Store: r.st, Prefix: wscd.WSCAPrefix})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := wscaKeys.Key(ctx, wscd.PurposeShare); err != nil {
				t.Fatal(err)
			}
			peer, err := wscd.NewShare(wscaKeys, "", "").Sealer(ctx)
			if err != nil || peer == nil {
				t.Fatalf("the WSCA's share sealer: %v, %v", peer, err)
			}
			sealer, err := r.w.ServerKeys.Sealer(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// NewShare looks for the peer again only after a while: a new
			// one finds it now.
			share = wscd.NewShare(r.w.ServerKeys, wscd.WSCAPrefix, "")
			n, err := share.BackfillKeys(ctx, r.st, sealer)
			if err != nil || n != 1 {
				t.Fatalf("BackfillKeys = %d, %v; want 1", n, err)
			}
			view := r.st.ShareView()
			k, err := view.GetKey(ctx, honest)
			if err != nil || !wscd.VerifyKeyMAC(peer, k, k.MAC) {
				t.Errorf("the honest key's share MAC does not verify under the WSCA's share key: %v", err)
			}
			if k, err := view.GetKey(ctx, forged); err != nil || len(k.MAC) != 0 {
				t.Errorf("the key with a forged MAC got a share MAC: %x, %v", k.MAC, err)
			}
			if r.log.errorsAbout(forged) == 0 {
				t.Error("no ERROR line names the key with a forged MAC")
			}
			r.w.Keys.SetShare(share)
			later := r.generate(t, r.victim)
			if k, err := view.GetKey(ctx, later); err != nil || !wscd.VerifyKeyMAC(peer, k, k.MAC) {
				t.Errorf("a key made with the share key in place has no valid share MAC: %v", err)
			}
		})
	}
}

// emptyMACer gives no MAC, like a share key not agreed yet.
type emptyMACer struct{}

func (emptyMACer) MAC(string, ...[]byte) []byte { return nil }

// TestVerifyKeyMACEmpty: an empty MAC never verifies, even against a MAC
// key that gives none (hmac.Equal calls two empty slices equal).
func TestVerifyKeyMACEmpty(t *testing.T) {
	k := store.Key{KID: "k", UnitID: "u", Backend: "soft"}
	for _, mac := range [][]byte{nil, {}} {
		if wscd.VerifyKeyMAC(emptyMACer{}, k, mac) {
			t.Errorf("VerifyKeyMAC(%#v) under a MAC key that gives none = true", mac)
		}
	}
}
