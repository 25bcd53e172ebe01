package testenv

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/device/pkcs11"
	"github.com/wsca/wsca/device/soft"
)

// DeviceBackend is a device backend and a way to open it for a test.
type DeviceBackend struct {
	Name string
	// Open returns an open device, closed when the test ends. It skips the
	// test when the backend is not available.
	Open func(testing.TB) device.Device
}

// DeviceBackends returns every device backend: the soft keystore and the
// test token through PKCS#11.
func DeviceBackends() []DeviceBackend {
	return []DeviceBackend{
		{Name: soft.Backend, Open: SoftDevice},
		{Name: pkcs11.Backend, Open: PKCS11Device},
	}
}

// SoftDevice opens a new soft keystore in the test's temporary directory.
func SoftDevice(t testing.TB) device.Device {
	t.Helper()
	cfg := soft.Config{Dir: filepath.Join(t.TempDir(), "soft")}
	if _, err := soft.Init(cfg); err != nil {
		t.Fatal(err)
	}
	d, err := soft.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// PKCS11Device opens the test token.
func PKCS11Device(t testing.TB) device.Device {
	t.Helper()
	cfg, err := pkcs11.ParseURI(PKCS11URI(t))
	if err != nil {
		t.Fatal(err)
	}
	d, err := pkcs11.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}
