package wsca_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wsca"
	"github.com/wsca/wsca/wsca/statuslists"
	"github.com/wsca/wsca/wscd"
)

// boundRig is a WSCD on the test token with a share key agreed with a
// WSCA-only instance (its own soft device), over one store: the two ways
// an attestation service checks key records.
type boundRig struct {
	st       *store.Store
	db       *sql.DB
	w        *wscd.Services
	dev      device.Device
	pub      *statuslists.Publisher
	ak       *wsca.AttestationKey
	wscdSh   *wscd.Share
	wscaSh   *wscd.Share
	victim   string
	attacker string
}

func newBoundRig(t *testing.T, dsn string) *boundRig {
	t.Helper()
	ctx := t.Context()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dev := testdevice.PKCS11(t)
	w, err := wscd.New(wscd.Config{Device: dev, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	wscaKeys, err := wscd.NewServerKeys(wscd.ServerKeysConfig{Device: testdevice.Soft(t), Store: st, Prefix: wscd.WSCAPrefix})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*wscd.ServerKeys{w.ServerKeys, wscaKeys} {
		if _, err := k.Key(ctx, wscd.PurposeShare); err != nil {
			t.Fatal(err)
		}
	}
	g := &boundRig{st: st, db: testenv.RawDB(t, dsn), w: w, dev: dev,
		wscdSh: wscd.NewShare(w.ServerKeys, wscd.WSCAPrefix, ""), wscaSh: wscd.NewShare(wscaKeys, "", ""),
		victim: wscd.NewUnitID(), attacker: wscd.NewUnitID()}
	w.Keys.SetShare(g.wscdSh)
	if g.ak, err = wsca.LoadAttestationKey(ctx, wsca.AttestationKeyConfig{Keys: w.ServerKeys, Store: st, DevCA: true}); err != nil {
		t.Fatal(err)
	}
	g.pub = newPublisher(t, st, g.ak, nil)
	for _, u := range []string{g.victim, g.attacker} {
		if err := w.Units.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

// service returns the attestation service of a WSCD instance (own sealer,
// its device's backend) or of a WSCA-only one (share view, share key, the
// backend the WSCD published); backend is the wallet-key device's.
func (g *boundRig) service(t *testing.T, wscaOnly bool, backend string) *wsca.Attestations {
	t.Helper()
	ctx := t.Context()
	cfg := wsca.AttestationsConfig{Store: g.st, Statuses: g.pub, Issuer: g.ak.Issuer,
		KeyStorage: "iso_18045_high", UserAuthentication: "iso_18045_high",
		Wallet: wsca.WalletSolution{Subject: "w", Name: "w", Link: "https://wsca.example", Version: "1"}}
	if wscaOnly {
		info := g.dev.Info()
		info.Backend = backend
		if err := g.wscdSh.PublishAssurance(ctx, g.st, info); err != nil {
			t.Fatal(err)
		}
		sl, err := g.wscaSh.Sealer(ctx)
		if err != nil || sl == nil {
			t.Fatalf("share sealer: %v, %v", sl, err)
		}
		cfg.Store, cfg.KeyMAC = g.st.ShareView(), sl
		cfg.PublishedBackend = func(ctx context.Context) (string, error) { return g.wscaSh.ReadBackend(ctx, g.st) }
	} else {
		sl, err := g.w.ServerKeys.Sealer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cfg.KeyMAC, cfg.Backend = sl, backend
	}
	a, err := wsca.NewAttestations(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (g *boundRig) generate(t *testing.T, unit string) store.Key {
	t.Helper()
	k, err := g.w.Keys.Generate(t.Context(), unit)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := g.st.GetKey(t.Context(), string(k.KID))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func (g *boundRig) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := g.db.ExecContext(t.Context(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// macs reads a key row's MAC and share MAC.
func (g *boundRig) macs(t *testing.T, kid string) (mac, share []byte) {
	t.Helper()
	if err := g.db.QueryRowContext(t.Context(), `SELECT mac, share_mac FROM keys WHERE kid = $1`, kid).Scan(&mac, &share); err != nil {
		t.Fatal(err)
	}
	if len(mac) == 0 || len(share) == 0 {
		t.Fatalf("key %s: generated without a MAC (%x) or share MAC (%x)", kid, mac, share)
	}
	return mac, share
}

// TestAttestationKeyRecordBound: a key is attested only when its record
// carries a valid MAC under the WSCD's HSM-derived key (on a WSCA-only
// instance, its share MAC under the share key) and names the wallet-key
// device's backend. Someone who can write the database but not use the
// HSM plants a row of their own point under the victim's unit, moves a
// real key to the victim, swaps a real key's point, changes its context
// or backend, copies a MAC from another row or clears it: each is refused
// like another unit's key (ErrForeignKey), on both stores and both kinds
// of instance; the honest key is attested.
func TestAttestationKeyRecordBound(t *testing.T) {
	rows := []struct {
		name string
		// tamper changes the database and returns the kid the victim asks
		// an attestation for.
		tamper func(t *testing.T, g *boundRig) string
		// backend is the wallet-key device's, if not the test token's.
		backend string
		want    error
	}{
		{"honest key", func(t *testing.T, g *boundRig) string {
			return g.generate(t, g.victim).KID
		}, "", nil},
		{"planted row: the attacker's point under the victim's unit", func(t *testing.T, g *boundRig) string {
			p, kid := testenv.ForeignP256(t)
			g.exec(t, `INSERT INTO keys (kid, unit_id, public_key, backend, state, created_at, context) VALUES ($1, $2, $3, $4, 'active', 1, '')`,
				kid, g.victim, p, g.dev.Info().Backend)
			return kid
		}, "", wsca.ErrForeignKey},
		{"planted row with the MACs of the victim's real key", func(t *testing.T, g *boundRig) string {
			real := g.generate(t, g.victim)
			mac, share := g.macs(t, real.KID)
			p, kid := testenv.ForeignP256(t)
			g.exec(t, `INSERT INTO keys (kid, unit_id, public_key, backend, state, created_at, context, mac, share_mac) VALUES ($1, $2, $3, $4, 'active', 1, '', $5, $6)`,
				kid, g.victim, p, g.dev.Info().Backend, mac, share)
			return kid
		}, "", wsca.ErrForeignKey},
		{"the attacker's real key moved to the victim's unit", func(t *testing.T, g *boundRig) string {
			k := g.generate(t, g.attacker)
			g.exec(t, `UPDATE keys SET unit_id = $1 WHERE kid = $2`, g.victim, k.KID)
			return k.KID
		}, "", wsca.ErrForeignKey},
		{"the victim's key with the attacker's point", func(t *testing.T, g *boundRig) string {
			k := g.generate(t, g.victim)
			p, _ := testenv.ForeignP256(t)
			g.exec(t, `UPDATE keys SET public_key = $1 WHERE kid = $2`, p, k.KID)
			return k.KID
		}, "", wsca.ErrForeignKey},
		{"the victim's key in another context", func(t *testing.T, g *boundRig) string {
			k := g.generate(t, g.victim)
			g.exec(t, `UPDATE keys SET context = 'signing' WHERE kid = $1`, k.KID)
			return k.KID
		}, "", wsca.ErrForeignKey},
		{"the victim's key relabelled with another backend", func(t *testing.T, g *boundRig) string {
			k := g.generate(t, g.victim)
			g.exec(t, `UPDATE keys SET backend = 'soft' WHERE kid = $1`, k.KID)
			return k.KID
		}, "", wsca.ErrForeignKey},
		{"the victim's key with the MACs of another of its keys", func(t *testing.T, g *boundRig) string {
			other := g.generate(t, g.victim)
			mac, share := g.macs(t, other.KID)
			k := g.generate(t, g.victim)
			g.exec(t, `UPDATE keys SET mac = $1, share_mac = $2 WHERE kid = $3`, mac, share, k.KID)
			return k.KID
		}, "", wsca.ErrForeignKey},
		{"the victim's key without MACs (a row made before they existed)", func(t *testing.T, g *boundRig) string {
			k := g.generate(t, g.victim)
			g.exec(t, `UPDATE keys SET mac = $1, share_mac = $1 WHERE kid = $2`, []byte{}, k.KID)
			return k.KID
		}, "", wsca.ErrForeignKey},
		{"an honest key of a device backend that is not the wallet-key device's", func(t *testing.T, g *boundRig) string {
			return g.generate(t, g.victim).KID
		}, "soft", wsca.ErrForeignKey},
	}
	for _, b := range testenv.StoreBackends() {
		t.Run(b.Name, func(t *testing.T) {
			g := newBoundRig(t, b.DSN(t))
			for _, r := range rows {
				for _, wscaOnly := range []bool{false, true} {
					name := r.name + "/wscd"
					if wscaOnly {
						name = r.name + "/wsca-only"
					}
					t.Run(name, func(t *testing.T) {
						kid := r.tamper(t, g)
						backend := r.backend
						if backend == "" {
							backend = g.dev.Info().Backend
						}
						a := g.service(t, wscaOnly, backend)
						_, err := a.KeyAttestation(t.Context(), g.victim, []string{kid}, "n")
						if !errors.Is(err, r.want) || (r.want == nil) != (err == nil) {
							t.Errorf("key attestation: err = %v, want %v", err, r.want)
						}
						_, err = a.WalletAttestation(t.Context(), g.victim, kid)
						if !errors.Is(err, r.want) || (r.want == nil) != (err == nil) {
							t.Errorf("wallet attestation: err = %v, want %v", err, r.want)
						}
					})
				}
			}
		})
	}
}

// TestAttestationPublishedBackendForged: on a WSCA-only instance, the
// WSCD's published device backend is MACed under the share key; one
// written into the database without it attests no key, and before the
// WSCD published one none is attested either.
func TestAttestationPublishedBackendForged(t *testing.T) {
	for _, b := range testenv.StoreBackends() {
		t.Run(b.Name, func(t *testing.T) {
			g := newBoundRig(t, b.DSN(t))
			k := g.generate(t, g.victim)
			ctx := t.Context()
			a := g.service(t, true, g.dev.Info().Backend)
			if _, err := a.KeyAttestation(ctx, g.victim, []string{k.KID}, ""); err != nil {
				t.Fatalf("honest key: %v", err)
			}
			for _, v := range [][]byte{
				append([]byte(g.dev.Info().Backend+"\x00"), make([]byte, 32)...),
				[]byte(g.dev.Info().Backend),
			} {
				if err := g.st.SetServerSecret(ctx, "wscd-device-backend", v, time.Now()); err != nil {
					t.Fatal(err)
				}
				if _, err := a.KeyAttestation(ctx, g.victim, []string{k.KID}, ""); !errors.Is(err, wsca.ErrForeignKey) {
					t.Errorf("published backend %q without its MAC: err = %v, want ErrForeignKey", v, err)
				}
			}
		})
	}
}
