package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
)

// TestPutClientKey: an operator-provisioned client key replaces only a key
// of its own profile and never reaches a revoked unit, both decided in its
// transaction with the unit's row locked (a strict enrolment or a
// revocation between the caller's checks and the write is not overwritten).
func TestPutClientKey(t *testing.T) {
	for _, be := range testenv.StoreBackends() {
		t.Run(be.Name, func(t *testing.T) {
			s := open(t, be.DSN(t))
			ctx := t.Context()
			key := func(unit, kid, profile string) store.ClientKey {
				return store.ClientKey{KID: kid, UnitID: unit, Usage: store.UsageSign, PublicKey: point(t), Profile: profile,
					MAC: []byte("m"), CreatedAt: at(0)}
			}
			mustCreateUnit(t, s, "strict")
			mustCreateUnit(t, s, "compat")
			mustCreateUnit(t, s, "revoked")
			must(t, s.PutClientKey(ctx, key("strict", "k-strict", "strict")))
			must(t, s.PutClientKey(ctx, key("compat", "k-compat-1", "compat")))
			must(t, s.SetUnitState(ctx, "revoked", store.UnitRevoked, at(time.Second)))
			for _, c := range []struct {
				name string
				k    store.ClientKey
				want error
			}{
				{"over a strict key", key("strict", "k-op", "compat"), store.ErrProfileConflict},
				{"revoked unit", key("revoked", "k-rev", "compat"), store.ErrUnitNotActive},
				{"unknown unit", key("nobody", "k-none", "compat"), store.ErrUnitNotFound},
				{"over a compat key", key("compat", "k-compat-2", "compat"), nil},
			} {
				if err := s.PutClientKey(ctx, c.k); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
					t.Errorf("%s: %v, want %v", c.name, err, c.want)
				}
			}
			if k, err := s.GetUnitClientKey(ctx, "strict", store.UsageSign); err != nil || k.KID != "k-strict" {
				t.Errorf("the strict key after a refused provisioning: %+v, %v", k, err)
			}
			if k, err := s.GetUnitClientKey(ctx, "compat", store.UsageSign); err != nil || k.KID != "k-compat-2" {
				t.Errorf("the compat key after its replacement: %+v, %v", k, err)
			}
			if _, err := s.GetUnitClientKey(ctx, "revoked", store.UsageSign); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a revoked unit got a key: %v", err)
			}
		})
	}
}
