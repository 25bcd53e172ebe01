package attest

import (
	"crypto/ecdsa"
	"errors"
	"testing"
	"time"
)

func TestProofOfAssociation(t *testing.T) {
	f := newFixture(t)
	in := ProofOfAssociationInput{
		Keys:     []*ecdsa.PublicKey{&f.wallet[0].PublicKey, &f.wallet[1].PublicKey},
		Audience: "https://rp.example", Nonce: "poa-n", Lifetime: 5 * time.Minute,
	}
	good, err := f.issuer.ProofOfAssociation(in)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.ver.VerifyProofOfAssociation(good, ProofOfAssociationOptions{Audience: "https://rp.example", Nonce: "poa-n"})
	if err != nil {
		t.Fatal(err)
	}
	j0, _ := NewJWK(&f.wallet[0].PublicKey)
	j1, _ := NewJWK(&f.wallet[1].PublicKey)
	j2, _ := NewJWK(&f.wallet[2].PublicKey)
	if !p.Covers(j0.Kid, j1.Kid) || p.Covers(j0.Kid, j2.Kid) {
		t.Fatalf("Covers wrong for %v", p.Keys)
	}
	for _, tc := range []struct {
		name string
		edit func(h, c map[string]any)
		opts ProofOfAssociationOptions
		want error
	}{
		{name: "valid"},
		{name: "typ", edit: func(h, _ map[string]any) { h["typ"] = "poa+jwt" }, want: ErrTyp},
		{name: "x5c missing", edit: func(h, _ map[string]any) { delete(h, "x5c") }, want: ErrNoX5C},
		{name: "one key", edit: func(_, c map[string]any) { c["associated_keys"] = c["associated_keys"].([]any)[:1] }, want: ErrKey},
		{name: "repeated key", edit: func(_, c map[string]any) {
			ks := c["associated_keys"].([]any)
			c["associated_keys"] = []any{ks[0], ks[0]}
		}, want: ErrKey},
		{name: "kid missing", edit: func(_, c map[string]any) { delete(c["associated_keys"].([]any)[1].(map[string]any), "kid") }, want: ErrKey},
		{name: "aud mismatch", opts: ProofOfAssociationOptions{Audience: "https://other.example"}, want: ErrAudience},
		{name: "nonce mismatch", opts: ProofOfAssociationOptions{Nonce: "other"}, want: ErrNonce},
		{name: "exp missing", edit: func(_, c map[string]any) { delete(c, "exp") }, want: ErrTime},
		{name: "exp past", edit: func(_, c map[string]any) { c["iat"] = testNow.Unix() - 7200; c["exp"] = testNow.Unix() - 3600 }, want: ErrTime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, c := decodeToken(t, good)
			if tc.edit != nil {
				tc.edit(h, c)
			}
			_, err := f.ver.VerifyProofOfAssociation(resign(t, f.key, h, c), tc.opts)
			if !errors.Is(err, tc.want) || tc.want == nil && err != nil {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// The builder refuses fewer than two keys and a repeated key.
	for _, keys := range [][]*ecdsa.PublicKey{{&f.wallet[0].PublicKey}, {&f.wallet[0].PublicKey, &f.wallet[0].PublicKey}} {
		if _, err := f.issuer.ProofOfAssociation(ProofOfAssociationInput{Keys: keys, Lifetime: time.Minute}); err == nil {
			t.Fatalf("%d keys accepted", len(keys))
		}
	}
}
