package pkcs11

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsca/wsca/device"
)

func TestParseURI(t *testing.T) {
	pinFile := filepath.Join(t.TempDir(), "pin")
	os.WriteFile(pinFile, []byte("4321\n"), 0o600)
	slot := uint(7)
	for _, tc := range []struct {
		uri  string
		want *Config
	}{
		{"pkcs11:token=wsca?module-path=/lib/p11.so&pin-value=1234",
			&Config{Module: "/lib/p11.so", TokenLabel: "wsca", PIN: "1234"}},
		{"pkcs11:token=my%20token;x-sessions=8?module-path=/lib/p11.so&pin-source=file:" + pinFile,
			&Config{Module: "/lib/p11.so", TokenLabel: "my token", PIN: "4321", Sessions: 8}},
		{"pkcs11:serial=abc?module-path=/m.so&pin-source=" + pinFile,
			&Config{Module: "/m.so", Serial: "abc", PIN: "4321"}},
		{"pkcs11:slot-id=7?module-path=/m.so&pin-value=1", &Config{Module: "/m.so", SlotID: &slot, PIN: "1"}},
		{"pkcs11:token=a;serial=b?module-path=/m.so&pin-value=1", nil}, // two selectors
		{"pkcs11:?module-path=/m.so&pin-value=1", nil},                 // no selector
		{"pkcs11:token=a?pin-value=1", nil},                            // no module
		{"pkcs11:token=a?module-path=/m.so", nil},                      // no PIN
		{"pkcs11:token=a?module-path=/m.so&pin-value=1&pin-source=" + pinFile, nil},
		{"pkcs11:token=a;token=b?module-path=/m.so&pin-value=1", nil},         // repeated
		{"pkcs11:token=a;manufacturer=x?module-path=/m.so&pin-value=1", nil},  // unsupported narrowing
		{"pkcs11:token=a;pin-value=1?module-path=/m.so", nil},                 // PIN in the path
		{"pkcs11:token=a?module-path=/m.so&pin-value=1&token=b", nil},         // selector in the query
		{"pkcs11:token=a?module-path=/m.so&pin-source=/nonexistent/pin", nil}, // unreadable pin file
		{"pkcs11:token=%zz?module-path=/m.so&pin-value=1", nil},               // bad escape
		{"pkcs11:token=a;x-sessions=0?module-path=/m.so&pin-value=1", nil},
		{"pkcs11:slot-id=x?module-path=/m.so&pin-value=1", nil},
		{"pkcs11:token=a;x-wsca-assurance=iso_18045_high?module-path=/m.so&pin-value=1",
			&Config{Module: "/m.so", TokenLabel: "a", PIN: "1", Assurance: device.AssuranceHigh}},
		{"pkcs11:token=a;x-wsca-assurance=software?module-path=/m.so&pin-value=1",
			&Config{Module: "/m.so", TokenLabel: "a", PIN: "1", Assurance: device.AssuranceSoftware}},
		{"pkcs11:token=a;x-wsca-assurance=hardware?module-path=/m.so&pin-value=1", nil},
		{"pkcs11:token=a;x-wsca-assurance=?module-path=/m.so&pin-value=1", nil},
		{"pkcs11:token=a?module-path=/m.so&pin-value=1&x-wsca-assurance=software", nil}, // in the query
		{"pkcs12:token=a?module-path=/m.so&pin-value=1", nil},
		{"pkcs11:token=a;x-wsca-storage=wrapped?module-path=/m.so&pin-value=1",
			&Config{Module: "/m.so", TokenLabel: "a", PIN: "1", Storage: device.StorageWrapped}},
		{"pkcs11:token=a;x-wsca-storage=token?module-path=/m.so&pin-value=1",
			&Config{Module: "/m.so", TokenLabel: "a", PIN: "1"}},
		{"pkcs11:token=a;x-wsca-storage=wrapped;x-wsca-wrap-label=w2;x-wsca-wrap-mech=aes-key-wrap;x-wsca-cache=64?module-path=/m.so&pin-value=1",
			&Config{Module: "/m.so", TokenLabel: "a", PIN: "1", Storage: device.StorageWrapped, WrapLabel: "w2",
				WrapMech: WrapAESKeyWrap, Cache: 64}},
		{"pkcs11:token=a;x-wsca-storage=object?module-path=/m.so&pin-value=1", nil},
		{"pkcs11:token=a;x-wsca-wrap-label=w?module-path=/m.so&pin-value=1", nil},                                 // wrap attribute, token storage
		{"pkcs11:token=a;x-wsca-storage=token;x-wsca-cache=8?module-path=/m.so&pin-value=1", nil},                 // same
		{"pkcs11:token=a;x-wsca-storage=wrapped;x-wsca-wrap-mech=aes-cbc-pad?module-path=/m.so&pin-value=1", nil}, // not offered
		{"pkcs11:token=a;x-wsca-storage=wrapped;x-wsca-cache=0?module-path=/m.so&pin-value=1", nil},
		{"pkcs11:token=a;x-wsca-storage=wrapped;x-wsca-cache=1048577?module-path=/m.so&pin-value=1", nil},
		{"pkcs11:token=a;x-wsca-storage=wrapped;x-wsca-wrap-label=?module-path=/m.so&pin-value=1", nil},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			got, err := ParseURI(tc.uri)
			if tc.want == nil {
				if !errors.Is(err, ErrURI) {
					t.Fatalf("got %v, want ErrURI", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got.LogValue()) != fmt.Sprint(tc.want.LogValue()) || got.PIN != tc.want.PIN {
				t.Fatalf("got %v, want %v", got.LogValue(), tc.want.LogValue())
			}
		})
	}
}

// TestURISecretsNotShown: neither errors nor the logged form of a config
// show the PIN.
func TestURISecretsNotShown(t *testing.T) {
	const pin = "s3cr3t-PIN"
	_, err := ParseURI("pkcs11:token=a;bogus=1?module-path=/m.so&pin-value=" + pin)
	if err == nil || strings.Contains(err.Error(), pin) {
		t.Fatalf("error %v", err)
	}
	cfg, err := ParseURI("pkcs11:token=a?module-path=/m.so&pin-value=" + pin)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	slog.New(slog.NewTextHandler(&sb, nil)).Info("x", "cfg", cfg)
	if strings.Contains(sb.String(), pin) || strings.Contains(cfg.String(), pin) || strings.Contains(fmt.Sprint(cfg), pin) {
		t.Fatalf("PIN shown: %s", sb.String())
	}
}

func FuzzParseURI(f *testing.F) {
	f.Add("pkcs11:token=wsca;x-sessions=2?module-path=/lib/p11.so&pin-value=1234")
	f.Add("pkcs11:slot-id=1?module-path=%2Fm&pin-value=1")
	f.Fuzz(func(t *testing.T, uri string) {
		if strings.Contains(uri, "pin-source") {
			return // would read files
		}
		c, err := ParseURI(uri)
		if err != nil {
			if !errors.Is(err, ErrURI) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if c.validate() != nil {
			t.Fatal("ParseURI returned an invalid config")
		}
	})
}

func TestParseECPoint(t *testing.T) {
	// A real CKA_EC_POINT from SoftHSM is DER-wrapped; bare points are accepted too.
	pt := []byte{4}
	pt = append(pt, mustHexBytes("60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6")...)
	pt = append(pt, mustHexBytes("7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299")...)
	for _, in := range [][]byte{pt, wrapOctetString(pt)} {
		if _, err := parseECPoint(in); err != nil {
			t.Fatal(err)
		}
	}
	for _, in := range [][]byte{nil, {4}, wrapOctetString(pt[:64]), append(wrapOctetString(pt), 0)} {
		if _, err := parseECPoint(in); !errors.Is(err, errECPoint) {
			t.Fatalf("parseECPoint(%x) = %v", in, err)
		}
	}
}

func FuzzParseECPoint(f *testing.F) {
	f.Add(wrapOctetString(make([]byte, 65)))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := parseECPoint(b); err != nil && !errors.Is(err, errECPoint) {
			t.Fatal(err)
		}
	})
}

func mustHexBytes(s string) []byte {
	b := make([]byte, len(s)/2)
	fmt.Sscanf(s, "%x", &b)
	return b
}
