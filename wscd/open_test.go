package wscd_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/device/pkcs11"
	"github.com/wsca/wsca/device/soft"
	"github.com/wsca/wsca/wscd"
)

func TestParseSoftURI(t *testing.T) {
	for in, ok := range map[string]bool{
		"/var/lib/wsca/soft":            true,
		"//var/lib/wsca/soft":           true,
		"rel/dir":                       true,
		"/d?master-key=/run/secrets/mk": true,
		"":                              false,
		"/d?master-key=":                false,
		"/d?other=1":                    false,
		"/d?master-key=a&master-key=b":  false,
		"/d?%zz":                        false,
	} {
		_, err := wscd.ParseSoftURI(in)
		if (err == nil) != ok {
			t.Errorf("ParseSoftURI(%q) = %v", in, err)
		}
	}
}

func TestOpenDeviceErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := wscd.OpenDevice(ctx, "tpm:0", nil); !errors.Is(err, wscd.ErrDeviceURI) {
		t.Errorf("unknown scheme: %v", err)
	}
	if _, err := wscd.OpenDevice(ctx, "pkcs11:token=x?module-path=/m.so&pin-value=secret-pin;", nil); err == nil {
		t.Error("bad pkcs11 URI accepted")
	} else if errors.Is(err, pkcs11.ErrURI) && strings.Contains(err.Error(), "secret-pin") {
		t.Error("error shows the PIN")
	}
	if _, err := wscd.OpenDevice(ctx, "soft:"+t.TempDir(), nil); err == nil {
		t.Error("uninitialised keystore opened")
	}
}

func FuzzParseSoftURI(f *testing.F) {
	f.Add("/var/lib/wsca/soft?master-key=/run/mk")
	f.Add("//x?a=b&a=c")
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := wscd.ParseSoftURI(s)
		if err != nil {
			if !errors.Is(err, wscd.ErrDeviceURI) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if cfg.Dir == "" {
			t.Fatalf("%q parsed to an empty directory", s)
		}
	})
}

// TestDeviceAssurance: a device claims what its configuration declares and
// no more: a PKCS#11 token nothing by default (not certified, never
// hardware), the soft keystore always software.
func TestDeviceAssurance(t *testing.T) {
	const p11 = "pkcs11:token=x?module-path=/m.so&pin-value=1"
	const p11High = "pkcs11:token=x;x-wsca-assurance=iso_18045_high?module-path=/m.so&pin-value=1"
	for _, tc := range []struct {
		uri, flag string
		ok        bool
	}{
		{p11, "", true},
		{p11, "iso_18045_moderate", true},
		{p11, "software", true},
		{p11High, "", true},
		{p11High, "iso_18045_high", true},
		{p11High, "iso_18045_basic", false}, // URI and flag disagree
		{p11, "hardware", false},
		{"soft:/d", "", true},
		{"soft:/d", "software", true},
		{"soft:/d", "iso_18045_high", false},
		{"soft:/d", "not-certified", false},
	} {
		_, err := wscd.ParseDeviceURI(tc.uri, tc.flag)
		if (err == nil) != tc.ok {
			t.Errorf("ParseDeviceURI(%q, %q) = %v", tc.uri, tc.flag, err)
		}
	}
	// The soft keystore reports software whatever is declared.
	dir := t.TempDir()
	if _, err := soft.Init(soft.Config{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	c, err := wscd.ParseDeviceURI("soft:"+dir, "software")
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Open(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if a := d.Info().Assurance; a != device.AssuranceSoftware {
		t.Fatalf("soft keystore reports %q", a)
	}
}

func FuzzParseDeviceURI(f *testing.F) {
	f.Add("pkcs11:token=x;x-wsca-assurance=software?module-path=/m.so&pin-value=1", "")
	f.Add("soft:/d", "iso_18045_high")
	f.Fuzz(func(t *testing.T, uri, assurance string) {
		c, err := wscd.ParseDeviceURI(uri, assurance)
		if err != nil {
			if !errors.Is(err, wscd.ErrDeviceURI) && !errors.Is(err, pkcs11.ErrURI) && !errors.Is(err, device.ErrAssurance) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		_ = c
	})
}
