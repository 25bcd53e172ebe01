package datadir

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/device/pkcs11"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/wscd"
)

func TestSoft(t *testing.T) {
	dir := Dir(filepath.Join(t.TempDir(), "d"))
	def, err := Load(dir, Soft)
	if err != nil {
		t.Fatal(err)
	}
	if !def.Created || !strings.HasPrefix(def.DeviceURI, "soft:") || def.SoftHSMConf != "" {
		t.Fatalf("%+v", def)
	}
	// A second load keeps the device, whatever backend it asks for.
	again, err := Load(dir, SoftHSM)
	if err != nil || again.Created || again.DeviceURI != def.DeviceURI {
		t.Fatalf("%+v %v", again, err)
	}
	if fi, err := os.Stat(string(dir)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data directory mode: %v %v", fi.Mode(), err)
	}
	d, err := wscd.OpenDevice(context.Background(), def.DeviceURI, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if _, err := Load(Dir(t.TempDir()), "tpm"); err == nil {
		t.Fatal("unknown backend accepted")
	}
}

// TestSoftHSM makes a token in a data directory through PKCS#11
// (C_InitToken, C_InitPIN) and opens it by the URI written for it. It
// must be the only test in this process that loads SoftHSM, as SoftHSM
// reads SOFTHSM2_CONF once.
func TestSoftHSM(t *testing.T) {
	if softHSMModule() == "" || !pkcs11.Available {
		testenv.Unavailable(t, "pkcs11", "SoftHSM not installed or no PKCS#11 in this build")
	}
	dir := Dir(filepath.Join(t.TempDir(), "d"))
	def, err := Load(dir, Auto)
	if err != nil {
		t.Fatal(err)
	}
	if def.SoftHSMConf == "" || !strings.HasPrefix(def.DeviceURI, "pkcs11:") || strings.Contains(def.DeviceURI, "pin-value") {
		t.Fatalf("%+v", def)
	}
	d, err := wscd.OpenDevice(context.Background(), def.DeviceURI, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if a := d.Info().Assurance; a != device.AssuranceSoftware {
		t.Fatalf("the data directory's SoftHSM token reports assurance %q, want software", a)
	}
	if _, err := d.Generate(context.Background(), "unit-1"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"softhsm/pin", "softhsm/so-pin", "device.uri"} {
		fi, err := os.Stat(filepath.Join(string(dir), f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, fi, err)
		}
	}
}
