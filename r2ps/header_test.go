package r2ps

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// decodeHeader returns the protected header of a compact JWE as a map.
func decodeHeader(t testing.TB, msg []byte) map[string]any {
	t.Helper()
	raw, err := decodeB64URL(bytes.SplitN(msg, []byte{'.'}, 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// withHeader replaces the protected header of msg, keeping the other parts.
func withHeader(t testing.TB, msg []byte, h map[string]any) []byte {
	t.Helper()
	rest := bytes.SplitN(msg, []byte{'.'}, 2)[1]
	return append([]byte(b64url(mustJSON(t, h))+"."), rest...)
}

// craftRaw encrypts "a.b.c" under cek with the given header JSON, as a
// correct sender would, so that only the header rules can refuse it.
func craftRaw(t testing.TB, header []byte, cek []byte) []byte {
	t.Helper()
	msg, err := sealCompact(b64url(header), cek, []byte("a.b.c"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// craft1FA builds a 1FA header for the ephemeral key eph, lets mutate
// change it, and encrypts under cek.
func craft1FA(t testing.TB, eph *ecdh.PrivateKey, kid, apu, apv string, mutate func(map[string]any), cek []byte) []byte {
	t.Helper()
	h := map[string]any{
		"alg": AlgECDHES, "enc": EncA256GCM, "typ": TypJWE1FA, "cty": CtyJWT, "kid": kid,
		"epk": newECJWK(eph.PublicKey()), "apu": b64url([]byte(apu)), "apv": b64url([]byte(apv)),
	}
	if mutate != nil {
		mutate(h)
	}
	return craftRaw(t, mustJSON(t, h), cek)
}

func TestHeaderRules1FA(t *testing.T) {
	f := newFixture(t)
	eph := newECDH(t)
	z, _ := eph.ECDH(f.serverAgree.PublicKey())
	cek := concatKDF(z, EncA256GCM, []byte(f.clientID), []byte(f.context))
	p384, _ := ecdh.P384().GenerateKey(rand.Reader)
	p384jwk := map[string]string{"kty": "EC", "crv": "P-384",
		"x": b64url(p384.PublicKey().Bytes()[1:49]), "y": b64url(p384.PublicKey().Bytes()[49:])}
	jwk := newECJWK(eph.PublicKey())
	offCurve := jwk
	offCurve.Y = b64url(append(make([]byte, 31), 1))
	set := func(k string, v any) func(map[string]any) { return func(h map[string]any) { h[k] = v } }
	del := func(k string) func(map[string]any) { return func(h map[string]any) { delete(h, k) } }
	cases := map[string]func(map[string]any){
		"typ 2fa":            set("typ", TypJWE2FA),
		"typ case":           set("typ", "R2PS-1FA"),
		"typ missing":        del("typ"),
		"alg ECDH-ES+A256KW": set("alg", "ECDH-ES+A256KW"),
		"alg dir":            set("alg", AlgDir),
		"alg missing":        del("alg"),
		"enc A128GCM":        set("enc", "A128GCM"),
		"enc CBC":            set("enc", "A256CBC-HS512"),
		"cty jwt":            set("cty", "jwt"),
		"cty octet-stream":   set("cty", "application/octet-stream"),
		"cty missing":        del("cty"),
		"kid empty":          set("kid", ""),
		"kid missing":        del("kid"),
		"kid newline":        set("kid", "a\nb"),
		"kid number":         set("kid", 7),
		"crit":               set("crit", []string{"exp"}),
		"zip":                set("zip", "DEF"),
		"jku":                set("jku", "https://attacker.example/keys"),
		"x5u":                set("x5u", "https://attacker.example/cert"),
		"unknown member":     set("foo", "bar"),
		"case-folded ALG":    set("ALG", AlgECDHES),
		"epk missing":        del("epk"),
		"epk null":           set("epk", nil),
		"epk string":         set("epk", "key"),
		"epk with d":         set("epk", map[string]string{"kty": "EC", "crv": "P-256", "x": jwk.X, "y": jwk.Y, "d": b64url(eph.Bytes())}),
		"epk P-384":          set("epk", p384jwk),
		"epk off curve":      set("epk", offCurve),
		"epk short x":        set("epk", map[string]string{"kty": "EC", "crv": "P-256", "x": b64url(make([]byte, 31)), "y": jwk.Y}),
		"epk padded x":       set("epk", map[string]string{"kty": "EC", "crv": "P-256", "x": jwk.X + "=", "y": jwk.Y}),
		"epk kty OKP":        set("epk", map[string]string{"kty": "OKP", "crv": "X25519", "x": jwk.X}),
		"epk with kid":       set("epk", map[string]string{"kty": "EC", "crv": "P-256", "x": jwk.X, "y": jwk.Y, "kid": "k"}),
		"apu missing":        del("apu"),
		"apu empty":          set("apu", ""),
		"apu padded":         set("apu", b64url([]byte(f.clientID))+"="),
		"apu not UTF-8":      set("apu", b64url([]byte{0xff, 0xfe})),
		"apu control":        set("apu", b64url([]byte("a\x00b"))),
		"apv missing":        del("apv"),
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			called := false
			agree := func(epk *ecdh.PublicKey) ([]byte, error) { called = true; return f.agree(epk) }
			_, err := Open1FA(craft1FA(t, eph, f.serverKID, f.clientID, f.context, mutate, cek), agree)
			wantSentinel(t, err, ErrHeader)
			if called {
				t.Fatal("agree called for a refused header")
			}
		})
	}
	raw := `{"alg":"ECDH-ES","alg":"ECDH-ES","enc":"A256GCM","typ":"r2ps-1fa","cty":"JWT","kid":"k","epk":` +
		string(mustJSON(t, jwk)) + `,"apu":"YQ","apv":"Yg"}`
	if _, err := Open1FA(craftRaw(t, []byte(raw), cek), f.agree); !errors.Is(err, ErrHeader) || !strings.Contains(err.Error(), "duplicate") {
		t.Fatalf("duplicate member: %v", err)
	}
	for _, h := range []string{`null`, `[]`, `"x"`, `{}`, `{"alg":"ECDH-ES"} {}`} {
		if _, err := Open1FA(craftRaw(t, []byte(h), cek), f.agree); !errors.Is(err, ErrHeader) {
			t.Fatalf("header %s: %v", h, err)
		}
	}
}

func TestHeaderRules2FA(t *testing.T) {
	f := newFixture(t)
	good := map[string]any{"alg": AlgDir, "enc": EncA256GCM, "typ": TypJWE2FA, "cty": CtyJWT, "kid": f.sessionID}
	if _, err := Open2FA(craftRaw(t, mustJSON(t, good), f.sessionKey), f.lookup); err != nil {
		t.Fatal(err)
	}
	cases := map[string][2]any{
		"typ 1fa": {"typ", TypJWE1FA}, "alg ECDH-ES": {"alg", AlgECDHES}, "alg A256KW": {"alg", "A256KW"},
		"enc": {"enc", "A128GCM"}, "cty": {"cty", "JOSE"}, "kid empty": {"kid", ""}, "epk": {"epk", newECJWK(f.cak.PublicKey())},
		"apu": {"apu", "YQ"}, "crit": {"crit", []string{"b64"}}, "zip": {"zip", "DEF"}, "iv member": {"iv", "AAAA"},
		"typ missing": {"typ", nil}, "kid missing": {"kid", nil},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			h := map[string]any{}
			for k, v := range good {
				h[k] = v
			}
			h[c[0].(string)] = c[1]
			if c[1] == nil {
				delete(h, c[0].(string))
			}
			looked := false
			lookup := func(s string) ([]byte, error) { looked = true; return f.lookup(s) }
			_, err := Open2FA(craftRaw(t, mustJSON(t, h), f.sessionKey), lookup)
			wantSentinel(t, err, ErrHeader)
			if looked {
				t.Fatal("lookup called for a refused header")
			}
		})
	}
}

func TestCompactStructure(t *testing.T) {
	f := newFixture(t)
	msg := f.seal2FA(t, f.request(t, TypeListKeys, ListKeysRequest{}))
	p := strings.Split(string(msg), ".")
	iv, _ := decodeB64URL([]byte(p[2]))
	tag, _ := decodeB64URL([]byte(p[4]))
	join := func(parts ...string) []byte { return []byte(strings.Join(parts, ".")) }
	cases := map[string][]byte{
		"encrypted key":  join(p[0], "AAAA", p[2], p[3], p[4]),
		"IV 11 bytes":    join(p[0], "", b64url(iv[:11]), p[3], p[4]),
		"IV 13 bytes":    join(p[0], "", b64url(append(iv, 0)), p[3], p[4]),
		"tag 15 bytes":   join(p[0], "", p[2], p[3], b64url(tag[:15])),
		"tag 17 bytes":   join(p[0], "", p[2], p[3], b64url(append(tag, 0))),
		"4 parts":        join(p[0], "", p[2], p[3]),
		"6 parts":        join(p[0], "", p[2], p[3], p[4], ""),
		"padded header":  join(p[0]+"=", "", p[2], p[3], p[4]),
		"std alphabet":   join(strings.NewReplacer("-", "+", "_", "/").Replace(p[0]+"+"), "", p[2], p[3], p[4]),
		"empty header":   join("", "", p[2], p[3], p[4]),
		"newline":        join(p[0][:4]+"\n"+p[0][4:], "", p[2], p[3], p[4]),
		"JWS not JWE":    join(p[0], p[3], p[4]),
		"ciphertext bad": join(p[0], "", p[2], p[3]+"!", p[4]),
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Open2FA(m, f.lookup)
			wantSentinel(t, err, ErrMalformed)
			_, _, err = EnvelopeMode(m)
			wantSentinel(t, err, ErrMalformed)
		})
	}
}

func TestEnvelopeMode(t *testing.T) {
	cek := make([]byte, 32)
	for _, c := range []struct {
		header string
		mode   Mode
		ok     bool
	}{
		{`{"typ":"r2ps-1fa","kid":"k"}`, Mode1FA, true},
		{`{"typ":"r2ps-2fa","kid":"s"}`, Mode2FA, true},
		{`{"typ":"r2ps-3fa","kid":"s"}`, ModeNone, false},
		{`{"typ":"r2ps-2fa"}`, ModeNone, false},
		{`{"typ":"r2ps-2fa","kid":7}`, ModeNone, false},
		{`{"typ":"r2ps-2fa","kid":"s","kid":"t"}`, ModeNone, false},
		{`{"kid":"s"}`, ModeNone, false},
	} {
		mode, _, err := EnvelopeMode(craftRaw(t, []byte(c.header), cek))
		if (err == nil) != c.ok || mode != c.mode {
			t.Errorf("%s: %v %v", c.header, mode, err)
		}
		if err != nil {
			wantSentinel(t, err, ErrHeader)
		}
	}
}
