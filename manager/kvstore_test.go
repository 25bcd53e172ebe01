package manager_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/kv"
)

func TestKVStoreRefusesCorrupt(t *testing.T) {
	d, err := kv.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := manager.NewKVStore(d)
	// An issuer of any length and content still names a valid kv key.
	c, err := st.Choose(ctx, manager.Choice{Issuer: strings.Repeat("\n../", 100), CredentialType: "x", Plugin: "a"})
	if err != nil || c.Plugin != "a" {
		t.Fatal(c, err)
	}
	kid := manager.KID(b64(make([]byte, 32)))
	other := manager.KID(b64(bytes.Repeat([]byte{1}, 32)))
	for _, tc := range []struct{ name, rec string }{
		{"names another kid", `{"kid":"` + string(other) + `","plugin":"a","handle":"h","created":"2026-01-01T00:00:00Z"}`},
		{"unknown member", `{"kid":"` + string(kid) + `","plugin":"a","handle":"h","evil":1}`},
		{"not JSON", `{"kid":`},
		{"too large", `{"kid":"` + string(kid) + `","plugin":"` + strings.Repeat("a", 70<<10) + `"}`},
	} {
		if err := d.Put(ctx, "bindings/keys/"+string(kid), []byte(tc.rec)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Binding(ctx, kid); !errors.Is(err, manager.ErrCorruptBinding) {
			t.Errorf("%s: Binding: %v, want ErrCorruptBinding", tc.name, err)
		}
		if _, err := st.Bindings(ctx); tc.name != "names another kid" && !errors.Is(err, manager.ErrCorruptBinding) {
			t.Errorf("%s: Bindings: %v, want ErrCorruptBinding", tc.name, err)
		}
	}
	if err := st.Bind(ctx, manager.Binding{KID: kid, Plugin: "b", Handle: "h2"}); !errors.Is(err, manager.ErrExists) {
		t.Fatalf("Bind over an existing record: %v, want ErrExists", err)
	}
	if err := st.Release(ctx, kid); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("Release of no claim: %v, want ErrNotFound", err)
	}
	if err := st.DeleteIntent(ctx, "nothing"); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("DeleteIntent of no intent: %v, want ErrNotFound", err)
	}
}

func FuzzKVStoreRecord(f *testing.F) {
	f.Add([]byte(`{"kid":"x","plugin":"a","handle":"h"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := kv.OpenDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		st := manager.NewKVStore(d)
		kid := manager.KID(b64(make([]byte, 32)))
		if err := d.Put(ctx, "bindings/keys/"+string(kid), b); err != nil {
			t.Skip()
		}
		if got, err := st.Binding(ctx, kid); err == nil && got.KID != kid {
			t.Fatalf("accepted a binding for %s", got.KID)
		}
		_, _ = st.Bindings(ctx)
	})
}
