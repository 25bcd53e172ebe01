// Package testdevice opens the real devices tests run against. It is apart
// from testenv so that the device backends' own tests can use testenv.
package testdevice

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/device/pkcs11"
	"github.com/wsca/wsca/device/soft"
	"github.com/wsca/wsca/internal/testenv"
)

// Backend is a device backend and a way to open it for a test.
type Backend struct {
	Name string
	// Open returns an open device, closed when the test ends. It skips the
	// test when the backend is not available.
	Open func(testing.TB) device.Device
}

// Backends returns every device backend: the soft keystore and the
// test token through PKCS#11.
func Backends() []Backend {
	return []Backend{
		{Name: soft.Backend, Open: Soft},
		{Name: pkcs11.Backend, Open: PKCS11},
		{Name: pkcs11.Backend + "-wrapped", Open: PKCS11Wrapped},
	}
}

// PKCS11Wrapped opens the test token in wrapped storage
// (docs/wrapped-keys.md): keys come back as blobs under the token's
// wrapping key for tests, made on first use.
func PKCS11Wrapped(t testing.TB) device.Device {
	t.Helper()
	if !pkcs11.Available {
		testenv.Unavailable(t, "pkcs11", pkcs11.ErrNotCompiled.Error())
	}
	uri := testenv.PKCS11URI(t)
	path, query, _ := strings.Cut(uri, "?")
	cfg, err := pkcs11.ParseURI(path + ";x-wsca-storage=wrapped;x-wsca-wrap-label=wsca-test-wrap;x-wsca-cache=64?" + query)
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

// Soft opens a new soft keystore in the test's temporary directory.
func Soft(t testing.TB) device.Device {
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

// PKCS11 opens the test token.
func PKCS11(t testing.TB) device.Device {
	t.Helper()
	if !pkcs11.Available {
		testenv.Unavailable(t, "pkcs11", pkcs11.ErrNotCompiled.Error())
	}
	cfg, err := pkcs11.ParseURI(testenv.PKCS11URI(t))
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
