package wscd_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wsca/wsca/device/pkcs11"
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
