package attest

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// Fuzz targets for every parser of the package: the compact JWS and its
// strict JSON, the three verifiers end to end, PEM chains, key sets, JWKs
// and NumericDate. Each checks the parser never panics and that what it
// accepts is consistent.

func FuzzParseCompact(f *testing.F) {
	fx := newFixture(f)
	tok, err := fx.issuer.KeyAttestation(fx.kaInput())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add("e30.e30.")
	f.Add("a.b.c.d")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCompact(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		if c.header.Crit != nil || len(c.signed) >= len(s) {
			t.Fatal("accepted crit or bad signing input")
		}
		var m map[string]any
		_ = c.claims(&m) // must not panic
	})
}

func FuzzVerifyKeyAttestation(f *testing.F) {
	fx := newFixture(f)
	tok, err := fx.issuer.KeyAttestation(fx.kaInput())
	if err != nil {
		f.Fatal(err)
	}
	wia, err := fx.issuer.WalletAttestation(fx.wiaInput())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add(wia)
	f.Fuzz(func(t *testing.T, s string) {
		if ka, err := fx.ver.VerifyKeyAttestation(s, KeyAttestationOptions{AcceptLegacyTyp: true, StatusOptional: true}); err == nil && len(ka.Keys) == 0 {
			t.Fatal("accepted without keys")
		}
		if wa, err := fx.ver.VerifyWalletAttestation(s, WalletAttestationOptions{StatusOptional: true}); err == nil && wa.Key.Public == nil {
			t.Fatal("accepted without cnf key")
		}
		if p, err := fx.ver.VerifyProofOfAssociation(s, ProofOfAssociationOptions{}); err == nil && len(p.Keys) < 2 {
			t.Fatal("accepted fewer than two keys")
		}
	})
}

func FuzzVerifyClientAttestationPoP(f *testing.F) {
	fx := newFixture(f)
	wiaTok, err := fx.issuer.WalletAttestation(fx.wiaInput())
	if err != nil {
		f.Fatal(err)
	}
	wa, err := fx.ver.VerifyWalletAttestation(wiaTok, WalletAttestationOptions{})
	if err != nil {
		f.Fatal(err)
	}
	pop, err := NewClientAttestationPoP(fx.wallet[2], PoPInput{Audience: testAS, Now: func() time.Time { return testNow }})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pop)
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = fx.ver.VerifyClientAttestationPoP(t.Context(), s, wa, PoPOptions{Audience: testAS, Seen: &memSeen{}})
	})
}

func FuzzParseChainPEM(f *testing.F) {
	fx := newFixture(f)
	f.Add(EncodeChainPEM(fx.chain))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		chain, err := ParseChainPEM(b)
		if err != nil {
			return
		}
		if len(chain) == 0 || len(chain) > maxChainLen {
			t.Fatalf("accepted %d certificates", len(chain))
		}
		_, _ = CheckChain(chain, []*x509.Certificate{fx.ca.Root}, testNow)
	})
}

func FuzzParseKeySet(f *testing.F) {
	fx := newFixture(f)
	ks, err := NewKeySet(fx.chain)
	if err != nil {
		f.Fatal(err)
	}
	b, err := json.Marshal(ks)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"keys":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ks, err := ParseKeySet(b)
		if err != nil {
			return
		}
		for _, j := range ks.Keys {
			if _, err := j.publicKey(); err != nil {
				t.Fatalf("accepted key fails: %v", err)
			}
		}
	})
}

func FuzzParseJWK(f *testing.F) {
	fx := newFixture(f)
	j, err := NewJWK(&fx.key.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	b, err := json.Marshal(j)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		j, pub, err := ParseJWK(b)
		if err != nil {
			return
		}
		again, err := NewJWK(pub)
		if err != nil || again.X != j.X || again.Y != j.Y {
			t.Fatalf("accepted JWK does not round-trip: %v", err)
		}
	})
}

func FuzzNumericDate(f *testing.F) {
	for _, s := range []string{"0", "1767225600", "1.5", "-1", "1e20", `"1"`, "null"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d NumericDate
		if err := json.Unmarshal([]byte(s), &d); err == nil && (d < 0 || d > maxNumericDate) {
			t.Fatalf("%q decoded to %d", s, d)
		}
	})
}
