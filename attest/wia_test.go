package attest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"io"
	"testing"
	"time"
)

// Client attestation rows: the OIDF conditions ValidateClientAttestationIssuer,
// …Subject and …NotBefore, ABCA -11 and TS3 v1.5 rules.
type wiaRow struct {
	name string
	edit func(f *fixture, h, c map[string]any)
	opts WalletAttestationOptions
	want error
}

func TestWalletAttestationConformance(t *testing.T) {
	f := newFixture(t)
	good, err := f.issuer.WalletAttestation(f.wiaInput())
	if err != nil {
		t.Fatal(err)
	}
	sub := f.wiaInput().Subject
	for _, tc := range []wiaRow{
		{name: "valid"},
		{name: "valid/expected iss and sub", opts: WalletAttestationOptions{Issuer: "https://wp.example", Subject: sub}},
		{name: "valid/no iss, none required", edit: func(_ *fixture, _, c map[string]any) { delete(c, "iss") }},
		{name: "typ", edit: func(_ *fixture, h, _ map[string]any) { h["typ"] = "jwt" }, want: ErrTyp},
		{name: "alg", edit: func(_ *fixture, h, _ map[string]any) { h["alg"] = "RS256" }, want: ErrAlg},
		{name: "x5c missing", edit: func(_ *fixture, h, _ map[string]any) { delete(h, "x5c") }, want: ErrNoX5C},
		{name: "x5c self-signed", edit: func(f *fixture, h, _ map[string]any) { h["x5c"] = encodeX5C(f.selfSigned) }, want: ErrSelfSigned},
		{name: "ValidateClientAttestationIssuer/missing", edit: func(_ *fixture, _, c map[string]any) { delete(c, "iss") }, opts: WalletAttestationOptions{Issuer: "https://wp.example"}, want: ErrIssuer},
		{name: "ValidateClientAttestationIssuer/mismatch", opts: WalletAttestationOptions{Issuer: "https://other.example"}, want: ErrIssuer},
		{name: "ValidateClientAttestationSubject/missing", edit: func(_ *fixture, _, c map[string]any) { delete(c, "sub") }, want: ErrSubject},
		{name: "ValidateClientAttestationSubject/mismatch", opts: WalletAttestationOptions{Subject: "other"}, want: ErrSubject},
		{name: "ValidateClientAttestationNotBefore/future", edit: func(_ *fixture, _, c map[string]any) { c["nbf"] = testNow.Unix() + 3600 }, want: ErrTime},
		{name: "ValidateClientAttestationNotBefore/past", edit: func(_ *fixture, _, c map[string]any) { c["nbf"] = testNow.Unix() - 60 }},
		{name: "exp missing", edit: func(_ *fixture, _, c map[string]any) { delete(c, "exp") }, want: ErrTime},
		{name: "exp past", edit: func(_ *fixture, _, c map[string]any) {
			c["iat"] = testNow.Unix() - 7200
			c["exp"] = testNow.Unix() - 3600
		}, want: ErrTime},
		{name: "lifetime over 24h", edit: func(_ *fixture, _, c map[string]any) {
			c["iat"] = testNow.Unix() - 60
			c["exp"] = testNow.Unix() - 60 + 24*3600 + 1
			cs(c)["exp"] = c["exp"]
		}, want: ErrLifetime},
		{name: "lifetime exactly 24h", edit: func(_ *fixture, _, c map[string]any) {
			c["iat"] = testNow.Unix() - 60
			c["exp"] = testNow.Unix() - 60 + 24*3600
			cs(c)["exp"] = c["exp"]
		}},
		{name: "cnf missing", edit: func(_ *fixture, _, c map[string]any) { delete(c, "cnf") }, want: ErrKey},
		{name: "cnf.jwk private", edit: func(_ *fixture, _, c map[string]any) { c["cnf"].(map[string]any)["jwk"].(map[string]any)["d"] = "AA" }, want: ErrKey},
		{name: "client_status missing", edit: func(_ *fixture, _, c map[string]any) { delete(c, "client_status") }, want: ErrStatus},
		{name: "client_status missing, optional", edit: func(_ *fixture, _, c map[string]any) { delete(c, "client_status") }, opts: WalletAttestationOptions{StatusOptional: true}},
		{name: "client_status exp before exp", edit: func(_ *fixture, _, c map[string]any) { cs(c)["exp"] = testNow.Unix() + 60 }, want: ErrLifetime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, c := decodeToken(t, good)
			if tc.edit != nil {
				tc.edit(f, h, c)
			}
			_, err := f.ver.VerifyWalletAttestation(resign(t, f.key, h, c), tc.opts)
			if !errors.Is(err, tc.want) || tc.want == nil && err != nil {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// cs is the client_status of claims c.
func cs(c map[string]any) map[string]any {
	return c["client_status"].(map[string]any)
}

const testAS = "https://as.example"

// popRow forges a PoP from a valid one; popKey, when set, signs instead of
// the wallet instance key.
type popRow struct {
	name   string
	edit   func(c map[string]any)
	popKey func(f *fixture) *ecdsa.PrivateKey
	opts   PoPOptions
	want   error
}

func TestClientAttestationPoP(t *testing.T) {
	f := newFixture(t)
	wiaTok, err := f.issuer.WalletAttestation(f.wiaInput())
	if err != nil {
		t.Fatal(err)
	}
	wa, err := f.ver.VerifyWalletAttestation(wiaTok, WalletAttestationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	good, err := NewClientAttestationPoP(f.wallet[2], PoPInput{
		Audience: testAS, Challenge: "ch-1", ClientID: wa.Claims.Subject, Lifetime: time.Minute,
		Now: func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []popRow{
		{name: "valid"},
		{name: "valid/challenge", opts: PoPOptions{Challenge: "ch-1"}},
		{name: "valid/aud array", edit: func(c map[string]any) { c["aud"] = []string{"https://x.example", testAS} }},
		{name: "valid/no iss (ABCA -11)", edit: func(c map[string]any) { delete(c, "iss") }},
		{name: "typ", want: ErrTyp},
		{name: "alg", want: ErrAlg},
		{name: "cnf binding: signed by another key", popKey: func(f *fixture) *ecdsa.PrivateKey { return f.wallet[0] }, want: ErrSignature},
		{name: "ValidateClientAttestationSubject: PoP iss is not sub", edit: func(c map[string]any) { c["iss"] = "other" }, want: ErrSubject},
		{name: "aud mismatch", edit: func(c map[string]any) { c["aud"] = "https://other.example" }, want: ErrAudience},
		{name: "aud missing", edit: func(c map[string]any) { delete(c, "aud") }, want: ErrAudience},
		{name: "iat missing", edit: func(c map[string]any) { delete(c, "iat") }, want: ErrTime},
		{name: "iat too old", edit: func(c map[string]any) { c["iat"] = testNow.Unix() - 3600; delete(c, "exp") }, want: ErrTime},
		{name: "iat future", edit: func(c map[string]any) { c["iat"] = testNow.Unix() + 3600 }, want: ErrTime},
		{name: "exp past", edit: func(c map[string]any) { c["exp"] = testNow.Unix() - 3600 }, want: ErrTime},
		{name: "challenge mismatch", opts: PoPOptions{Challenge: "ch-2"}, want: ErrNonce},
		{name: "jti missing", edit: func(c map[string]any) { delete(c, "jti") }, want: ErrReplay},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, c := decodeToken(t, good)
			switch tc.name {
			case "typ":
				h["typ"] = TypClientAttestation
			case "alg":
				h["alg"] = "HS256"
			}
			if tc.edit != nil {
				tc.edit(c)
			}
			key := f.wallet[2]
			if tc.popKey != nil {
				key = tc.popKey(f)
			}
			opts := tc.opts
			opts.Audience, opts.Seen = testAS, &memSeen{}
			_, err := f.ver.VerifyClientAttestationPoP(t.Context(), resign(t, key, h, c), wa, opts)
			if !errors.Is(err, tc.want) || tc.want == nil && err != nil {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestCheckForClientAttestationProofJwtReuse: the same PoP twice is a
// replay (OIDF CheckForClientAttestationProofJwtReuse); a fresh one passes.
func TestCheckForClientAttestationProofJwtReuse(t *testing.T) {
	f := newFixture(t)
	wiaTok, err := f.issuer.WalletAttestation(f.wiaInput())
	if err != nil {
		t.Fatal(err)
	}
	wa, err := f.ver.VerifyWalletAttestation(wiaTok, WalletAttestationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen := &memSeen{}
	opts := PoPOptions{Audience: testAS, Seen: seen}
	in := PoPInput{Audience: testAS, Now: func() time.Time { return testNow }}
	pop, err := NewClientAttestationPoP(f.wallet[2], in)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := f.ver.VerifyClientAttestationPoP(ctx, pop, wa, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ver.VerifyClientAttestationPoP(ctx, pop, wa, opts); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: err = %v, want ErrReplay", err)
	}
	pop2, err := NewClientAttestationPoP(f.wallet[2], in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ver.VerifyClientAttestationPoP(ctx, pop2, wa, opts); err != nil {
		t.Fatalf("fresh PoP: %v", err)
	}
	if got := seen.seen; len(got) != 2 {
		t.Fatalf("seen set holds %d jti, want 2", len(got))
	}
	for _, until := range seen.seen {
		if want := testNow.Add(DefaultPoPMaxAge + DefaultSkew); !until.Equal(want) {
			t.Fatalf("jti kept until %v, want %v", until, want)
		}
	}
}

// TestPoPSeenSetError: a failing seen set fails the verification (never
// fail open).
func TestPoPSeenSetError(t *testing.T) {
	f := newFixture(t)
	wiaTok, err := f.issuer.WalletAttestation(f.wiaInput())
	if err != nil {
		t.Fatal(err)
	}
	wa, err := f.ver.VerifyWalletAttestation(wiaTok, WalletAttestationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pop, err := NewClientAttestationPoP(f.wallet[2], PoPInput{Audience: testAS, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("store down")
	_, err = f.ver.VerifyClientAttestationPoP(t.Context(), pop, wa, PoPOptions{Audience: testAS, Seen: failingSeen{boom}})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the store's", err)
	}
}

// TestPoPNeedsAudience: a verifier without its own identifier cannot
// check aud and refuses to verify, even a PoP whose aud is empty.
func TestPoPNeedsAudience(t *testing.T) {
	f := newFixture(t)
	wiaTok, err := f.issuer.WalletAttestation(f.wiaInput())
	if err != nil {
		t.Fatal(err)
	}
	wa, err := f.ver.VerifyWalletAttestation(wiaTok, WalletAttestationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pop, err := NewClientAttestationPoP(f.wallet[2], PoPInput{Audience: testAS, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	h, c := decodeToken(t, pop)
	c["aud"] = ""
	_, err = f.ver.VerifyClientAttestationPoP(t.Context(), resign(t, f.wallet[2], h, c), wa, PoPOptions{Seen: &memSeen{}})
	if !errors.Is(err, ErrInput) {
		t.Fatalf("err = %v, want ErrInput", err)
	}
}

type failingSeen struct{ err error }

func (s failingSeen) Add(context.Context, string, time.Time) (bool, error) { return false, s.err }

func TestNewClientAttestationPoPRefuses(t *testing.T) {
	f := newFixture(t)
	for name, tc := range map[string]struct {
		key  *ecdsa.PrivateKey
		in   PoPInput
		want error
	}{
		"no key":          {nil, PoPInput{Audience: testAS}, ErrInput},
		"no aud":          {f.wallet[2], PoPInput{}, ErrInput},
		"negative expiry": {f.wallet[2], PoPInput{Audience: testAS, Lifetime: -time.Second}, ErrLifetime},
		"random failure":  {f.wallet[2], PoPInput{Audience: testAS, Rand: bytes.NewReader(nil)}, io.EOF},
	} {
		var err error
		if tc.key == nil {
			_, err = NewClientAttestationPoP(nil, tc.in)
		} else {
			_, err = NewClientAttestationPoP(tc.key, tc.in)
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
	// Without Lifetime there is no exp; with it, exp = iat + Lifetime.
	for lifetime, want := range map[time.Duration]any{0: nil, time.Minute: float64(testNow.Unix() + 60)} {
		pop, err := NewClientAttestationPoP(f.wallet[2], PoPInput{Audience: testAS, Lifetime: lifetime, Now: func() time.Time { return testNow }})
		if err != nil {
			t.Fatal(err)
		}
		if _, c := decodeToken(t, pop); c["exp"] != want || c["aud"] != testAS || len(c["jti"].(string)) != 22 {
			t.Errorf("lifetime %v: claims %v", lifetime, c)
		}
	}
}
