package soft_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/device/soft"
)

// TestDeriveOnlyUsageBound: the usage of a derive-only key survives a
// reopen, and a key file whose usage was removed (to sign with the key)
// does not open.
func TestDeriveOnlyUsageBound(t *testing.T) {
	ctx := context.Background()
	d, cfg := openSoft(t)
	k, err := d.GenerateDeriveOnly(ctx, "unit-a")
	if err != nil {
		t.Fatal(err)
	}
	d2, err := soft.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if _, err := d2.Sign(ctx, k.Ref(), make([]byte, 32)); !errors.Is(err, device.ErrKeyUsage) {
		t.Fatalf("Sign after reopen = %v, want ErrKeyUsage", err)
	}
	path := filepath.Join(cfg.Dir, string(k.KID)+".key")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	stripped := strings.Replace(string(b), `"usage":"derive",`, "", 1)
	if stripped == string(b) {
		t.Fatal("no usage in the key file")
	}
	if err := os.WriteFile(path, []byte(stripped), 0o600); err != nil {
		t.Fatal(err)
	}
	d3, err := soft.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d3.Close()
	if _, err := d3.Sign(ctx, k.Ref(), make([]byte, 32)); err == nil {
		t.Fatal("a key file without its usage signs")
	}
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	if _, err := d3.ECDH(ctx, k.Ref(), peer.PublicKey()); err == nil {
		t.Fatal("a key file without its usage opens")
	}
}
