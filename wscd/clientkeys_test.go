package wscd_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

func p256Key(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pemPublic(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func jwkOf(t testing.TB, key any) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseClientKey: PEM SPKI and JWK P-256 public keys parse to the same
// key; private keys, other curves and types, and anything around the key
// are refused with ErrBadClientKey.
func TestParseClientKey(t *testing.T) {
	k := p256Key(t)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	privDER, _ := x509.MarshalPKCS8PrivateKey(k)
	ecDER, _ := x509.MarshalECPrivateKey(k)
	pemKey := pemPublic(t, &k.PublicKey)
	withHeader := strings.Replace(string(pemKey), "-----BEGIN PUBLIC KEY-----\n", "-----BEGIN PUBLIC KEY-----\nProc-Type: 4,ENCRYPTED\n\n", 1)
	for _, good := range [][]byte{pemKey, jwkOf(t, &k.PublicKey), append([]byte("\n  "), append(pemKey, '\n')...),
		[]byte(`{"kty":"EC","crv":"P-256","kid":"x","use":"sig","x":"` + jwkField(t, k, "x") + `","y":"` + jwkField(t, k, "y") + `"}`)} {
		pub, err := wscd.ParseClientKey(good)
		if err != nil || !pub.Equal(&k.PublicKey) {
			t.Errorf("%q: %v", good, err)
		}
	}
	notOnCurve := `{"kty":"EC","crv":"P-256","x":"` + jwkField(t, k, "x") + `","y":"` + jwkField(t, p256Key(t), "y") + `"}`
	for name, bad := range map[string][]byte{
		"empty":          nil,
		"text":           []byte("hello"),
		"PKCS#8 private": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}),
		"EC private":     pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}),
		"private JWK":    jwkOf(t, k),
		"P-384 PEM":      pemPublic(t, &p384.PublicKey),
		"P-384 JWK":      jwkOf(t, &p384.PublicKey),
		"two PEM blocks": append(pemKey, pemKey...),
		"PEM then junk":  append(append([]byte{}, pemKey...), "junk"...),
		"PEM headers":    []byte(withHeader),
		"PEM not a key":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{0x30, 0}}),
		"bad PEM":        []byte("-----BEGIN PUBLIC KEY-----\nAAAA"),
		"bad JSON":       []byte(`{"kty":`),
		"not on curve":   []byte(notOnCurve),
		"RSA-ish JWK":    []byte(`{"kty":"RSA","n":"AQAB","e":"AQAB"}`),
		"wrong PEM type": bytes.Replace(pemKey, []byte("PUBLIC KEY"), []byte("EC PUBLIC KEY"), 2),
		"oversized":      []byte("{" + strings.Repeat(" ", 9<<10) + string(jwkOf(t, &k.PublicKey))[1:]),
	} {
		if _, err := wscd.ParseClientKey(bad); !errors.Is(err, wscd.ErrBadClientKey) || !errors.Is(err, wscd.ErrInvalidInput) {
			t.Errorf("%s: %v, want ErrBadClientKey", name, err)
		}
	}
}

func jwkField(t testing.TB, k *ecdsa.PrivateKey, name string) string {
	t.Helper()
	var m map[string]string
	json.Unmarshal(jwkOf(t, &k.PublicKey), &m)
	return m[name]
}

// FuzzParseClientKey: any input either fails with ErrBadClientKey or
// gives a P-256 key whose thumbprint is r2ps's.
func FuzzParseClientKey(f *testing.F) {
	k := p256Key(f)
	f.Add(pemPublic(f, &k.PublicKey))
	f.Add(jwkOf(f, &k.PublicKey))
	f.Add([]byte(`{"kty":"EC","crv":"P-256","x":"","y":""}`))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pub, err := wscd.ParseClientKey(data)
		if err != nil {
			if !errors.Is(err, wscd.ErrBadClientKey) {
				t.Fatalf("error %v is not ErrBadClientKey", err)
			}
			return
		}
		kid, err := wscd.ClientKeyThumbprint(pub)
		if err != nil || kid != r2ps.Thumbprint(pub) {
			t.Fatalf("thumbprint %q %v, r2ps says %q", kid, err, r2ps.Thumbprint(pub))
		}
	})
}

// TestProvisionClientKey: an operator-provisioned CSK is stored under the
// compat profile with a MAC the sealer verifies and the kid r2ps computes,
// replaces the unit's earlier compat CSK, and ends the unit's sessions.
// Reserved, unknown and revoked units, strict-enrolled units, another
// unit's key and a non-P-256 key are refused, and nothing is stored.
func TestProvisionClientKey(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		unit := newUnit(t, f, "csk")
		sealer, err := f.svc.ServerKeys.Sealer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		k := p256Key(t)
		sid := sha256.Sum256([]byte("session-" + unit))
		now := time.Now()
		if err := f.st.CreateSession(ctx, store.Session{IDHash: sid[:], UnitID: unit, Context: "hsm", State: store.SessionVerified,
			Secret: []byte("sealed"), UsesLeft: store.Unlimited, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		ck, err := f.svc.Units.ProvisionClientKey(ctx, unit, &k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.st.GetUnitClientKey(ctx, unit, store.UsageSign)
		if err != nil {
			t.Fatal(err)
		}
		wantPoint, _ := k.PublicKey.Bytes()
		switch {
		case got.KID != r2ps.Thumbprint(&k.PublicKey) || ck.KID != got.KID:
			t.Fatalf("kid %q, want %q", got.KID, r2ps.Thumbprint(&k.PublicKey))
		case got.Profile != wscd.ProfileCompat || got.Usage != store.UsageSign || string(got.PublicKey) != string(wantPoint):
			t.Fatalf("stored %+v", got)
		case !sealer.VerifyMAC(got.MAC, wscd.ClientKeyMACDomain, []byte(got.KID), []byte(unit), []byte(store.UsageSign), wantPoint, []byte(wscd.ProfileCompat)):
			t.Fatal("the stored MAC does not verify")
		case string(got.MAC) != string(wscd.ClientKeyMAC(sealer, got)):
			t.Fatal("ClientKeyMAC differs from the stored MAC")
		}
		if _, err := f.st.GetSession(ctx, sid[:], now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the unit's session survived provisioning: %v", err)
		}
		// A new key replaces the old one.
		k2 := p256Key(t)
		if _, err := f.svc.Units.ProvisionClientKey(ctx, unit, &k2.PublicKey); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.st.GetUnitClientKey(ctx, unit, store.UsageSign); got.KID != r2ps.Thumbprint(&k2.PublicKey) {
			t.Fatal("the second key did not replace the first")
		}
		if _, err := f.st.GetClientKey(ctx, ck.KID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the replaced key is still stored: %v", err)
		}

		strict := newUnit(t, f, "strict")
		sk := p256Key(t)
		sp, _ := sk.PublicKey.Bytes()
		row := store.ClientKey{KID: r2ps.Thumbprint(&sk.PublicKey), UnitID: strict, Usage: store.UsageSign, PublicKey: sp, Profile: "strict", CreatedAt: now}
		row.MAC = wscd.ClientKeyMAC(sealer, row)
		if err := f.st.PutClientKey(ctx, row); err != nil {
			t.Fatal(err)
		}
		revoked := newUnit(t, f, "revoked")
		if err := f.svc.Units.SetState(ctx, revoked, store.UnitRevoked); err != nil {
			t.Fatal(err)
		}
		suspended := newUnit(t, f, "suspended")
		if err := f.svc.Units.SetState(ctx, suspended, store.UnitSuspended); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Units.ProvisionClientKey(ctx, suspended, &p256Key(t).PublicKey); err != nil {
			t.Fatalf("suspended unit: %v", err)
		}
		p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		other := newUnit(t, f, "other")
		for _, tc := range []struct {
			name string
			unit string
			pub  *ecdsa.PublicKey
			want error
		}{
			{"reserved", wscd.ReservedPrefix + "x", &p256Key(t).PublicKey, wscd.ErrInvalidInput},
			{"malformed id", "a b", &p256Key(t).PublicKey, wscd.ErrInvalidInput},
			{"unknown", "nobody-" + unit, &p256Key(t).PublicKey, wscd.ErrUnitNotActive},
			{"revoked", revoked, &p256Key(t).PublicKey, wscd.ErrUnitRevoked},
			{"strict", strict, &p256Key(t).PublicKey, wscd.ErrStrictEnrolled},
			{"P-384", other, &p384.PublicKey, wscd.ErrBadClientKey},
			{"nil", other, nil, wscd.ErrBadClientKey},
			{"another unit's key", other, &k2.PublicKey, wscd.ErrClientKeyInUse},
		} {
			if _, err := f.svc.Units.ProvisionClientKey(ctx, tc.unit, tc.pub); !errors.Is(err, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			}
		}
		for _, u := range []string{revoked, other} {
			if _, err := f.st.GetUnitClientKey(ctx, u, store.UsageSign); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: a refused key was stored: %v", u, err)
			}
		}
		if got, _ := f.st.GetUnitClientKey(ctx, strict, store.UsageSign); got.KID != row.KID || got.Profile != "strict" {
			t.Errorf("the strict unit's key was replaced: %+v", got)
		}
	})
}
