package fido2_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/fido2"
	"github.com/wsca/wsca/manager/fido2/ctap2soft"
	"github.com/wsca/wsca/manager/kv"
)

func TestNewConfig(t *testing.T) {
	st, err := kv.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cfg  fido2.Config
		ok   bool
	}{
		{"defaults", fido2.Config{RPID: rpID, Store: st}, true},
		{"localhost over http", fido2.Config{RPID: "localhost", Origin: "http://localhost:8080", Store: st}, true},
		{"subdomain origin", fido2.Config{RPID: rpID, Origin: "https://app.wallet.example", Store: st}, true},
		{"no RP id", fido2.Config{Store: st}, false},
		{"RP id with a scheme", fido2.Config{RPID: "https://wallet.example", Store: st}, false},
		{"RP id in capitals", fido2.Config{RPID: "Wallet.example", Store: st}, false},
		{"RP id with a port", fido2.Config{RPID: "wallet.example:443", Store: st}, false},
		{"RP id an IP address", fido2.Config{RPID: "127.0.0.1", Store: st}, false},
		{"origin on another site", fido2.Config{RPID: rpID, Origin: "https://other.example", Store: st}, false},
		{"no store", fido2.Config{RPID: rpID}, false},
		{"user verification", fido2.Config{RPID: rpID, Store: st, UserVerification: "always"}, false},
		{"id with a slash", fido2.Config{ID: "a/b", RPID: rpID, Store: st}, false},
	} {
		_, err := fido2.New(c.cfg)
		if (err == nil) != c.ok {
			t.Errorf("%s: New: %v", c.name, err)
		}
	}
}

// TestProperties: storage and factors are what the host stated and the
// ceremony reported, never more.
func TestProperties(t *testing.T) {
	for _, c := range []struct {
		name      string
		dev       ctap2soft.Options
		cfg       func(*fido2.Config)
		wantProps manager.Properties
		wantAMR   []string
	}{
		{"defaults", ctap2soft.Options{}, nil,
			manager.Properties{Storage: manager.StorageSoftware}, []string{"swk", "user"}},
		{"hardware stated", ctap2soft.Options{}, func(c *fido2.Config) {
			c.Properties = manager.Properties{Storage: manager.StorageHardware, KeyStorageAttackPotential: "iso_18045_high", Exportable: true}
		}, manager.Properties{Storage: manager.StorageHardware, KeyStorageAttackPotential: "iso_18045_high"}, []string{"hwk", "user"}},
		{"user verified, method unstated", ctap2soft.Options{UV: true}, func(c *fido2.Config) { c.UserVerification = fido2.UVRequired },
			manager.Properties{Storage: manager.StorageSoftware, UserVerification: []string{"fido2-uv"}}, []string{"swk", "user", "mfa"}},
		{"user verified by fingerprint", ctap2soft.Options{UV: true}, func(c *fido2.Config) {
			c.UserVerification = fido2.UVRequired
			c.Properties = manager.Properties{Storage: manager.StorageHardware, UserVerification: []string{"fpt"}}
		}, manager.Properties{Storage: manager.StorageHardware, UserVerification: []string{"fpt"}}, []string{"hwk", "user", "fpt"}},
		{"synced passkey", ctap2soft.Options{BackupEligible: true}, func(c *fido2.Config) {
			c.Properties = manager.Properties{Storage: manager.StorageHardware, KeyStorageAttackPotential: "iso_18045_high", Certification: "CC EAL4+"}
		}, manager.Properties{Storage: manager.StorageSoftware}, []string{"swk", "user"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := native(t, ctap2soft.New(c.dev), c.cfg)
			k, amr, err := p.Generate(ctx, "l", manager.Env{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(amr, c.wantAMR) {
				t.Errorf("Generate amr %v, want %v", amr, c.wantAMR)
			}
			props, err := p.Properties(ctx, k.Handle, manager.Env{})
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := json.Marshal(props); string(got) != mustJSON(c.wantProps) {
				t.Errorf("properties %s, want %s", got, mustJSON(c.wantProps))
			}
			_, amr, err = p.SignAssertion(ctx, k.Handle, []byte("c"), manager.Env{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(amr, c.wantAMR) {
				t.Errorf("SignAssertion amr %v, want %v", amr, c.wantAMR)
			}
		})
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestRecords: a record of another RP id or a corrupt one is never used.
func TestRecords(t *testing.T) {
	st, err := kv.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dev := ctap2soft.New(ctap2soft.Options{})
	a, err := fido2.New(fido2.Config{RPID: rpID, Store: st, Transport: dev})
	if err != nil {
		t.Fatal(err)
	}
	b, err := fido2.New(fido2.Config{RPID: "other.example", Store: st, Transport: dev})
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := a.Generate(ctx, "l", manager.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if list, err := b.List(ctx, manager.Env{}); err != nil || len(list) != 0 {
		t.Fatalf("another RP id's plugin lists %d keys, %v", len(list), err)
	}
	if _, _, err := b.SignAssertion(ctx, k.Handle, []byte("c"), manager.Env{}); !errors.Is(err, fido2.ErrOtherRP) {
		t.Fatalf("another RP id's plugin signs: %v", err)
	}
	good, err := st.Get(ctx, "fido2/"+k.Handle)
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(m map[string]any){
		"no credential id":    func(m map[string]any) { m["credential_id"] = "" },
		"credential id large": func(m map[string]any) { m["credential_id"] = base64.StdEncoding.EncodeToString(make([]byte, 1024)) },
		"not a COSE key":      func(m map[string]any) { m["public_key"] = "oA==" },
		"not JSON":            nil,
	} {
		v := []byte("{")
		if change != nil {
			var m map[string]any
			if err := json.Unmarshal(good, &m); err != nil {
				t.Fatal(err)
			}
			change(m)
			v, _ = json.Marshal(m)
		}
		if err := st.Put(ctx, "fido2/"+k.Handle, v); err != nil {
			t.Fatal(err)
		}
		if _, err := a.PublicKey(ctx, k.Handle, manager.Env{}); !errors.Is(err, fido2.ErrCorruptRecord) {
			t.Errorf("%s: %v, want ErrCorruptRecord", name, err)
		}
	}
	if err := st.Put(ctx, "fido2/"+k.Handle, good); err != nil {
		t.Fatal(err)
	}
	if _, err := a.PublicKey(ctx, k.Handle, manager.Env{}); err != nil {
		t.Errorf("the record restored: %v", err)
	}
}

// TestInputs: bad challenges, a browser plugin without a host, and a
// device without built-in user verification when it is required.
func TestInputs(t *testing.T) {
	p := native(t, ctap2soft.New(ctap2soft.Options{}), nil)
	k, _, err := p.Generate(ctx, "l", manager.Env{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 65} {
		if _, _, err := p.SignAssertion(ctx, k.Handle, make([]byte, n), manager.Env{}); !errors.Is(err, manager.ErrInvalidInput) {
			t.Errorf("a %d-byte challenge: %v", n, err)
		}
	}
	if _, _, err := p.SignAssertion(ctx, k.Handle, make([]byte, 64), manager.Env{}); err != nil {
		t.Errorf("a 64-byte challenge: %v", err)
	}
	bp, _ := browser(t, nil, nil)
	if _, _, err := bp.Generate(ctx, "l", manager.Env{}); !errors.Is(err, manager.ErrAuthRequired) {
		t.Errorf("browser plugin without a host: %v", err)
	}
	np := native(t, ctap2soft.New(ctap2soft.Options{}), func(c *fido2.Config) { c.UserVerification = fido2.UVRequired })
	var ce *fido2.CTAPError
	if _, _, err := np.Generate(ctx, "l", manager.Env{}); !errors.As(err, &ce) || ce.Status != ctap2soft.StatusInvalidOption {
		t.Errorf("required UV on a device without it: %v", err)
	}
	dp := native(t, ctap2soft.New(ctap2soft.Options{Deny: true}), nil)
	if _, _, err := dp.Generate(ctx, "l", manager.Env{}); !errors.Is(err, manager.ErrAuthCancelled) {
		t.Errorf("the user denies: %v", err)
	}
	// The credential is on another authenticator than the one plugged in.
	st, err := kv.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	one, _ := fido2.New(fido2.Config{RPID: rpID, Store: st, Transport: ctap2soft.New(ctap2soft.Options{})})
	two, _ := fido2.New(fido2.Config{RPID: rpID, Store: st, Transport: ctap2soft.New(ctap2soft.Options{})})
	k, _, err = one.Generate(ctx, "l", manager.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := two.SignAssertion(ctx, k.Handle, []byte("c"), manager.Env{}); !errors.Is(err, manager.ErrKeyNotFound) {
		t.Errorf("a credential of another authenticator: %v", err)
	}
}
