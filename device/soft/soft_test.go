package soft_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/device/devicetest"
	"github.com/wsca/wsca/device/soft"
)

func openSoft(t testing.TB) (*soft.Device, soft.Config) {
	t.Helper()
	cfg := soft.Config{Dir: filepath.Join(t.TempDir(), "keys")}
	if created, err := soft.Init(cfg); err != nil || !created {
		t.Fatalf("Init = %v, %v", created, err)
	}
	d, err := soft.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, cfg
}

func TestConformance(t *testing.T) {
	d, _ := openSoft(t)
	if d.Info().Assurance != device.AssuranceSoftware {
		t.Fatal("soft device does not report itself as software")
	}
	devicetest.Run(t, d)
}

func TestOpenMissing(t *testing.T) {
	_, err := soft.Open(soft.Config{Dir: t.TempDir()})
	if !errors.Is(err, soft.ErrNoKeystore) {
		t.Fatalf("Open without Init = %v", err)
	}
}

func TestInitKeepsMasterKey(t *testing.T) {
	_, cfg := openSoft(t)
	before, _ := os.ReadFile(filepath.Join(cfg.Dir, soft.MasterKeyFile))
	if created, err := soft.Init(cfg); err != nil || created {
		t.Fatalf("second Init = %v, %v", created, err)
	}
	after, _ := os.ReadFile(filepath.Join(cfg.Dir, soft.MasterKeyFile))
	if string(before) != string(after) {
		t.Fatal("Init replaced the master key")
	}
}

// TestPersistence: keys survive a reopen, and another process's destroy
// (here: another Device on the same directory) takes effect at once.
func TestPersistence(t *testing.T) {
	ctx := context.Background()
	d1, cfg := openSoft(t)
	k, err := d1.Generate(ctx, "unit-p")
	if err != nil {
		t.Fatal(err)
	}
	ref := device.Ref{Owner: "unit-p", KID: k.KID}
	if _, err := d1.Sign(ctx, ref, make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	d2, err := soft.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	sig, err := d2.Sign(ctx, ref, make([]byte, 32))
	if err != nil || !device.VerifyRaw(k.Public, make([]byte, 32), sig) {
		t.Fatalf("reopened device cannot sign: %v", err)
	}
	if err := d2.Destroy(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := d1.Sign(ctx, ref, make([]byte, 32)); !errors.Is(err, device.ErrKeyNotFound) {
		t.Fatalf("key destroyed elsewhere still signs: %v", err)
	}
}

// TestTamper: a key file moved to another owner, or opened under another
// master key, does not open.
func TestTamper(t *testing.T) {
	ctx := context.Background()
	d, cfg := openSoft(t)
	k, err := d.Generate(ctx, "unit-t")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.Dir, string(k.KID)+".key")
	data, _ := os.ReadFile(path)
	moved := strings.Replace(string(data), `"owner":"unit-t"`, `"owner":"unit-x"`, 1)
	if err := os.WriteFile(path, []byte(moved), 0o600); err != nil {
		t.Fatal(err)
	}
	fresh, err := soft.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if _, err := fresh.Sign(ctx, device.Ref{Owner: "unit-x", KID: k.KID}, make([]byte, 32)); err == nil {
		t.Fatal("a key file edited to another owner still signs for it")
	}

	other := soft.Config{Dir: cfg.Dir, MasterKey: filepath.Join(t.TempDir(), "mk")}
	if _, err := soft.Init(other); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, data, 0o600)
	d3, err := soft.Open(other)
	if err != nil {
		t.Fatal(err)
	}
	defer d3.Close()
	if _, err := d3.Sign(ctx, device.Ref{Owner: "unit-t", KID: k.KID}, make([]byte, 32)); err == nil {
		t.Fatal("key opened under another master key")
	}
}
