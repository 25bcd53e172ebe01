package store_test

import (
	"bytes"
	"testing"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
)

// TestKeyMACs: a key row keeps its MAC and share MAC; a ShareView reads
// the share MAC as MAC; the backfill reads list only active rows without
// one, by kid from a cursor; SetKeyMAC writes only a row that still holds
// what was proven and never replaces a MAC; SetKeyShareMAC only the row
// with that point.
func TestKeyMACs(t *testing.T) {
	for _, b := range testenv.StoreBackends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := t.Context()
			s := open(t, b.DSN(t))
			mustCreateUnit(t, s, "u")
			mustCreateUnit(t, s, "v")
			withMAC := newKey(t, "u", "k1", at(0))
			withMAC.MAC, withMAC.ShareMAC = []byte("own"), []byte("share")
			mustInsertKey(t, s, withMAC)
			bare := newKey(t, "u", "k2", at(0))
			mustInsertKey(t, s, bare)
			dying := newKey(t, "u", "k3", at(0))
			mustInsertKey(t, s, dying)
			must(t, s.SetKeyState(ctx, dying.KID, store.KeyDestroying))
			bare2 := newKey(t, "v", "k4", at(0))
			mustInsertKey(t, s, bare2)

			if k, err := s.GetKey(ctx, "k1"); err != nil || !bytes.Equal(k.MAC, []byte("own")) {
				t.Fatalf("GetKey MAC = %q, %v", k.MAC, err)
			}
			if k, err := s.ShareView().GetKey(ctx, "k1"); err != nil || !bytes.Equal(k.MAC, []byte("share")) {
				t.Fatalf("ShareView GetKey MAC = %q, %v", k.MAC, err)
			}
			if ks, err := s.ShareView().ListKeys(ctx, "u"); err != nil || len(ks) != 3 || !bytes.Equal(ks[0].MAC, []byte("share")) {
				t.Fatalf("ShareView ListKeys = %+v, %v", ks, err)
			}
			kids := func(ks []store.Key, err error) []string {
				t.Helper()
				must(t, err)
				var out []string
				for _, k := range ks {
					out = append(out, k.KID)
				}
				return out
			}
			if got := kids(s.KeysWithoutMAC(ctx, "", 10)); len(got) != 2 || got[0] != "k2" || got[1] != "k4" {
				t.Fatalf("KeysWithoutMAC = %q, want k2 k4", got)
			}
			if got := kids(s.KeysWithoutMAC(ctx, "k2", 1)); len(got) != 1 || got[0] != "k4" {
				t.Fatalf("KeysWithoutMAC after k2 = %q, want k4", got)
			}
			if got := kids(s.KeysWithoutShareMAC(ctx, "", 10)); len(got) != 0 {
				t.Fatalf("KeysWithoutShareMAC = %q: rows without a MAC of their own are not listed", got)
			}
			_, err := s.KeysWithoutMAC(ctx, "", 0)
			wantErr(t, "limit 0", err, store.ErrInvalid)

			// A row changed since it was proven is not written.
			for name, change := range map[string]func(*store.Key){
				"unit":    func(k *store.Key) { k.UnitID = "v" },
				"point":   func(k *store.Key) { k.PublicKey = point(t) },
				"backend": func(k *store.Key) { k.Backend = "pkcs11" },
				"context": func(k *store.Key) { k.Context = "signing" },
			} {
				k := bare
				change(&k)
				wantErr(t, "SetKeyMAC with another "+name, s.SetKeyMAC(ctx, k, []byte("m")), store.ErrNotFound)
			}
			wantErr(t, "SetKeyMAC of a key being destroyed", s.SetKeyMAC(ctx, dying, []byte("m")), store.ErrNotFound)
			wantErr(t, "SetKeyMAC replacing a MAC", s.SetKeyMAC(ctx, withMAC, []byte("m")), store.ErrNotFound)
			wantErr(t, "SetKeyMAC empty", s.SetKeyMAC(ctx, bare, nil), store.ErrInvalid)
			must(t, s.SetKeyMAC(ctx, bare, []byte("m2")))
			if k, err := s.GetKey(ctx, "k2"); err != nil || !bytes.Equal(k.MAC, []byte("m2")) {
				t.Fatalf("after SetKeyMAC: %q, %v", k.MAC, err)
			}
			if got := kids(s.KeysWithoutShareMAC(ctx, "", 10)); len(got) != 1 || got[0] != "k2" {
				t.Fatalf("KeysWithoutShareMAC = %q, want k2", got)
			}
			wantErr(t, "SetKeyShareMAC with another point", s.SetKeyShareMAC(ctx, "k2", point(t), []byte("s")), store.ErrNotFound)
			must(t, s.SetKeyShareMAC(ctx, "k2", bare.PublicKey, []byte("s2")))
			if k, err := s.ShareView().GetKey(ctx, "k2"); err != nil || !bytes.Equal(k.MAC, []byte("s2")) {
				t.Fatalf("after SetKeyShareMAC: %q, %v", k.MAC, err)
			}
		})
	}
}
