package wsca_test

import (
	"errors"
	"testing"
	"time"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/wsca"
	"github.com/wsca/wsca/wsca/statuslists"
)

// TestAttestationUnitLimit: a unit gets at most the publisher's UnitLimit
// attestations (key attestations and WIAs together) within UnitWindow; one
// more is refused as a quota (ACCESS_DENIED to the wallet), and another
// unit is not affected.
func TestAttestationUnitLimit(t *testing.T) {
	for _, b := range testenv.StoreBackends() {
		t.Run(b.Name, func(t *testing.T) {
			g := newAttestRig(t, b.DSN(t))
			ctx := t.Context()
			pub := newPublisher(t, g.st, g.ak, func(c *statuslists.Config) { c.UnitLimit, c.UnitWindow = 3, time.Hour })
			a := g.service(t, pub)
			keyAtt := func(unit, kid string) error { _, err := a.KeyAttestation(ctx, unit, []string{kid}, "n"); return err }
			wia := func(unit, kid string) error { _, err := a.WalletAttestation(ctx, unit, kid); return err }
			for i, f := range []func(string, string) error{keyAtt, wia, keyAtt} {
				if err := f(g.unit, g.kid); err != nil {
					t.Fatalf("attestation %d: %v", i+1, err)
				}
			}
			for name, f := range map[string]func(string, string) error{"key attestation": keyAtt, "wia": wia} {
				if err := f(g.unit, g.kid); !errors.Is(err, wsca.ErrQuota) {
					t.Errorf("%s over the limit: %v, want %v", name, err, wsca.ErrQuota)
				}
			}
			if err := g.w.Units.Create(ctx, "bob"); err != nil {
				t.Fatal(err)
			}
			k, err := g.w.Keys.Generate(ctx, "bob")
			if err != nil {
				t.Fatal(err)
			}
			if err := keyAtt("bob", string(k.KID)); err != nil {
				t.Errorf("another unit: %v", err)
			}
		})
	}
}
