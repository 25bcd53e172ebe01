package stack_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/wsca"
	"github.com/wsca/wsca/wscd"
)

// TestStackBackfillKeyMACs: a stack's key-record backfill and its
// attestations use one MAC key. A key recorded before records had a MAC
// is attested once the backfill has proven it with the device; a row
// planted in the same state never is.
func TestStackBackfillKeyMACs(t *testing.T) {
	for _, b := range testenv.StoreBackends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := t.Context()
			dsn := b.DSN(t)
			r := stacktest.Start(t, dsn, testdevice.PKCS11(t), nil)
			db := testenv.RawDB(t, dsn)
			unit := wscd.NewUnitID()
			if err := r.Units.Create(ctx, unit); err != nil {
				t.Fatal(err)
			}
			k, err := r.Keys.Generate(ctx, unit)
			if err != nil {
				t.Fatal(err)
			}
			honest := string(k.KID)
			priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			kid, _ := device.KIDOf(&priv.PublicKey)
			point, _ := priv.PublicKey.Bytes()
			planted := string(kid)
			for _, q := range []struct {
				sql  string
				args []any
			}{
				{`UPDATE keys SET mac = $1, share_mac = $1 WHERE kid = $2`, []any{[]byte{}, honest}},
				{`INSERT INTO keys (kid, unit_id, public_key, backend, state, created_at, context) VALUES ($1, $2, $3, $4, 'active', 1, '')`,
					[]any{planted, unit, point, r.Device.Info().Backend}},
			} {
				if _, err := db.ExecContext(ctx, q.sql, q.args...); err != nil {
					t.Fatal(err)
				}
			}
			attest := func(kid string) error {
				_, err := r.Attestations.KeyAttestation(ctx, unit, []string{kid}, "")
				return err
			}
			// (The backfill Background runs at the start may run too: it
			// is idempotent, so the order does not matter.)
			if err := r.BackfillKeyMACs(ctx); err != nil {
				t.Fatal(err)
			}
			if err := attest(honest); err != nil {
				t.Errorf("the proven key after the backfill: %v", err)
			}
			if err := attest(planted); !errors.Is(err, wsca.ErrForeignKey) {
				t.Errorf("the planted row after the backfill: %v, want ErrForeignKey", err)
			}
		})
	}
}
