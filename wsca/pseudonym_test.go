package wsca_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wsca"
	"github.com/wsca/wsca/wscd"
)

// pseudonyms returns pseudonym storage over a fresh store of backend b and
// the soft device's sealer, with two units.
func pseudonyms(t *testing.T, dsn string, quota int) (*wsca.Pseudonyms, *store.Store) {
	t.Helper()
	ctx := t.Context()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w, err := wscd.New(wscd.Config{Device: testdevice.Soft(t), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := w.ServerKeys.Sealer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if err := w.Units.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	p, err := wsca.NewPseudonyms(wsca.PseudonymsConfig{Store: st, Sealer: sealer, Quota: quota})
	if err != nil {
		t.Fatal(err)
	}
	return p, st
}

func TestPseudonyms(t *testing.T) {
	for _, b := range testenv.StoreBackends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			p, st := pseudonyms(t, b.DSN(t), 2)
			secret := []byte("pseudonym-for-rp.example")

			if created, err := p.Put(ctx, "alice", "rp.example", secret); err != nil || !created {
				t.Fatalf("put = %v, %v", created, err)
			}
			got, err := p.Get(ctx, "alice", "rp.example")
			if err != nil || !bytes.Equal(got, secret) {
				t.Fatalf("get = %q, %v", got, err)
			}
			// The store holds ciphertext only.
			raw, err := st.GetPseudonym(ctx, "alice", "rp.example")
			if err != nil || bytes.Contains(raw.Value, secret) {
				t.Fatalf("stored value holds the plaintext (%v)", err)
			}
			// Another unit sees nothing of it.
			if _, err := p.Get(ctx, "bob", "rp.example"); !errors.Is(err, wsca.ErrNotFound) {
				t.Fatalf("bob gets alice's slot: %v", err)
			}
			if err := p.Delete(ctx, "bob", "rp.example"); !errors.Is(err, wsca.ErrNotFound) {
				t.Fatalf("bob deletes alice's slot: %v", err)
			}
			// A sealed value copied to another unit's slot, or to another
			// slot, in the database does not open.
			for _, dst := range [][2]string{{"bob", "rp.example"}, {"alice", "other"}} {
				if _, err := st.PutPseudonym(ctx, dst[0], dst[1], raw.Value, raw.UpdatedAt, 0); err != nil {
					t.Fatal(err)
				}
				if _, err := p.Get(ctx, dst[0], dst[1]); !errors.Is(err, wsca.ErrIntegrity) {
					t.Fatalf("moved value to %v: %v, want ErrIntegrity", dst, err)
				}
			}
			// Quota: alice holds 2 slots now (rp.example, other).
			if _, err := p.Put(ctx, "alice", "third", []byte("x")); !errors.Is(err, wsca.ErrQuota) {
				t.Fatalf("third slot: %v, want ErrQuota", err)
			}
			if created, err := p.Put(ctx, "alice", "other", []byte("y")); err != nil || created {
				t.Fatalf("replace at quota = %v, %v", created, err)
			}
			slots, err := p.List(ctx, "alice")
			if err != nil || len(slots) != 2 || slots[0].Name != "other" || slots[1].Name != "rp.example" {
				t.Fatalf("list = %+v, %v", slots, err)
			}
			if err := p.Delete(ctx, "alice", "other"); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Get(ctx, "alice", "other"); !errors.Is(err, wsca.ErrNotFound) {
				t.Fatalf("deleted slot: %v", err)
			}
		})
	}
}

// TestPseudonymInput: bad names and values are refused before the store.
func TestPseudonymInput(t *testing.T) {
	p, _ := pseudonyms(t, testenv.SQLite(t), 0)
	ctx := t.Context()
	cases := []struct {
		name, slot string
		value      []byte
	}{
		{"empty slot", "", []byte("x")},
		{"long slot", strings.Repeat("a", wsca.MaxSlotNameLen+1), []byte("x")},
		{"slash", "a/b", []byte("x")},
		{"space", "a b", []byte("x")},
		{"non-ascii", "é", []byte("x")},
		{"empty value", "a", nil},
		{"huge value", "a", make([]byte, wsca.MaxPseudonymSize+1)},
	}
	for _, c := range cases {
		if _, err := p.Put(ctx, "alice", c.slot, c.value); !errors.Is(err, wsca.ErrInvalidInput) {
			t.Errorf("%s: %v, want ErrInvalidInput", c.name, err)
		}
	}
	if _, err := p.Put(ctx, "nobody", "a", []byte("x")); !errors.Is(err, wsca.ErrInvalidInput) {
		t.Errorf("unknown unit: %v", err)
	}
	if _, err := p.Put(ctx, "alice", strings.Repeat("a", wsca.MaxSlotNameLen), make([]byte, wsca.MaxPseudonymSize)); err != nil {
		t.Errorf("largest name and value: %v", err)
	}
}
