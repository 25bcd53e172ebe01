package profile_test

import (
	"crypto"
	"errors"
	"strings"
	"testing"

	"github.com/bytemare/ksf"
	"github.com/bytemare/opaque"

	"github.com/wsca/wsca/pin/profile"
)

func TestParseKSF(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want profile.KSF
		ok   bool
	}{
		{"identity", profile.KSFIdentity, true},
		{"argon2id", profile.KSFArgon2id, true},
		{"scrypt", profile.KSFScrypt, true},
		{"pbkdf2-sha512", profile.KSFPBKDF2, true},
		{"Identity", 0, false},
		{"pbkdf2", 0, false},
		{"", 0, false},
		{"KSF(9)", 0, false},
	} {
		got, err := profile.ParseKSF(tc.in)
		if !tc.ok {
			if !errors.Is(err, profile.ErrInvalid) {
				t.Errorf("ParseKSF(%q) = %v, %v; want ErrInvalid", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want || got.String() != tc.in {
			t.Errorf("ParseKSF(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if s := profile.KSF(9).String(); s != "KSF(9)" {
		t.Errorf("KSF(9).String() = %q", s)
	}
}

// TestConfiguration: the fixed suite, the KSF each name selects, the
// context, and the checks on both.
func TestConfiguration(t *testing.T) {
	for _, tc := range []struct {
		name    string
		p       profile.Profile
		ksf     ksf.Identifier
		context string
		ok      bool
	}{
		{"zero", profile.Profile{}, 0, "", true},
		{"argon2id", profile.Profile{KSF: profile.KSFArgon2id}, ksf.Argon2id, "", true},
		{"scrypt", profile.Profile{KSF: profile.KSFScrypt}, ksf.Scrypt, "", true},
		{"pbkdf2", profile.Profile{KSF: profile.KSFPBKDF2}, ksf.PBKDF2Sha512, "", true},
		{"context", profile.Profile{Context: "wsca-test"}, 0, "wsca-test", true},
		{"longest context", profile.Profile{Context: strings.Repeat("c", 1<<16-1)}, 0, strings.Repeat("c", 1<<16-1), true},
		{"context too long", profile.Profile{Context: strings.Repeat("c", 1<<16)}, 0, "", false},
		{"unknown KSF", profile.Profile{KSF: 4}, 0, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.p.Configuration()
			if !tc.ok {
				if !errors.Is(err, profile.ErrInvalid) {
					t.Fatalf("Configuration = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.OPRF != opaque.P256Sha256 || c.AKE != opaque.P256Sha256 || c.KDF != crypto.SHA256 ||
				c.MAC != crypto.SHA256 || c.Hash != crypto.SHA256 {
				t.Fatalf("suite %+v is not P256-SHA256", c)
			}
			if c.KSF != tc.ksf || string(c.Context) != tc.context {
				t.Fatalf("KSF %v context %q, want %v %q", c.KSF, c.Context, tc.ksf, tc.context)
			}
			if _, err := c.Client(); err != nil {
				t.Fatalf("opaque rejects the configuration: %v", err)
			}
		})
	}
}

func FuzzParseKSF(f *testing.F) {
	f.Add("identity")
	f.Add("pbkdf2-sha512")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := profile.ParseKSF(s)
		if err != nil {
			if !errors.Is(err, profile.ErrInvalid) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if k.String() != s {
			t.Fatalf("ParseKSF(%q) = %v", s, k)
		}
		if _, err := (profile.Profile{KSF: k}).Configuration(); err != nil {
			t.Fatalf("parsed KSF %v has no configuration: %v", k, err)
		}
	})
}
