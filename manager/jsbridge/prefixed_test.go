//go:build !(js && wasm)

package jsbridge

import (
	"context"
	"slices"
	"testing"

	"github.com/wsca/wsca/manager/kv"
	"github.com/wsca/wsca/manager/kv/kvtest"
)

// A prefixed store keeps the kv contract and its keys under its prefix.
func TestPrefixed(t *testing.T) {
	d, err := kv.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := prefixed{Store: d, prefix: "fido2/"}
	kvtest.RunStoreTests(t, p)
	all, err := d.List(context.Background(), "")
	if err != nil || len(all) == 0 {
		t.Fatal(all, err)
	}
	for _, k := range all {
		if len(k) < 6 || k[:6] != "fido2/" {
			t.Fatalf("key %q outside the prefix", k)
		}
	}
	mine, _ := p.List(context.Background(), "t/")
	if !slices.Contains(mine, "t/race") {
		t.Fatalf("List under the prefix: %q", mine)
	}
}
