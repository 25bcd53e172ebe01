package r2ps

import (
	"bytes"
	"crypto/ecdh"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Tests of the caps that bound what an unauthenticated body costs (issue 6,
// defect 5). Each row is refused by one cap, and would pass, or cost
// megabytes, without it.

// allocated returns the bytes f allocates (runtime.MemStats.TotalAlloc,
// which counts every allocation, of other goroutines too: the bounds below
// are 16 KiB where a cap's absence costs megabytes).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// members is a JSON object of n distinct members "m0":0, "m1":0, ….
func members(n int) json.RawMessage {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"m` + strconv.Itoa(i) + `":0`)
	}
	b.WriteByte('}')
	return json.RawMessage(b.String())
}

// padded returns header JSON with spaces before its closing brace, so that
// its encoding is at least size bytes and it still decodes as it did.
func padded(header string, size int) string {
	n := size*3/4 - len(header) + 3
	return strings.TrimSuffix(header, "}") + strings.Repeat(" ", max(n, 0)) + "}"
}

// escaped writes every byte of s as a \u escape, as a JSON encoder may.
func escaped(s string) string {
	var b strings.Builder
	for i := range len(s) {
		fmt.Fprintf(&b, `\u%04x`, s[i])
	}
	return b.String()
}

func TestCaps(t *testing.T) {
	f := newFixture(t)
	dots := bytes.Repeat([]byte{'.'}, MaxMessageSize)
	parts := bytes.Repeat([]byte("A."), MaxMessageSize/2)[:MaxMessageSize-1]
	jws := f.signRequest(t, f.request(t, TypeListKeys, ListKeysRequest{}), "x")
	jwsHeader := `{"alg":"ES256","kid":"` + f.cskKID + `","typ":"r2ps-request+jwt"}`
	good2FA := `{"alg":"dir","enc":"A256GCM","typ":"r2ps-2fa","cty":"JWT","kid":"` + f.sessionID + `"}`
	huge := string(bytes.Repeat([]byte{'k'}, 3000))

	// A request with k members in its data has k+7 JSON values: the
	// payload object, its five other members, and the data object.
	request := func(k int) []byte {
		req := f.request(t, TypeListKeys, nil)
		req.Data, req.JWEHash = members(k), make([]byte, JWEHashSize)
		b, err := EncodeRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	curves := func(n int) json.RawMessage {
		return mustJSON(t, ListKeysRequest{Curve: strings.Split(strings.Repeat("P-256,", n-1)+"P-256", ",")})
	}

	open2FA := func(m []byte) error { _, err := Open2FA(m, f.lookup); return err }
	parseJWE := func(m []byte) error { _, err := ParseJWE(m); return err }
	verify := func(m []byte) error { _, _, err := VerifyJWS(m, TypRequest, f.cskKey); return err }
	classify := func(m []byte) error { _, err := Classify(m); return err }
	decodeRequest := func(m []byte) error { _, err := DecodeRequest(m); return err }
	decodeCompat := func(m []byte) error { _, _, err := DecodeCompat(m); return err }
	listKeys := func(m []byte) error { return DecodeData(m, new(ListKeysRequest)) }

	for _, c := range []struct {
		name     string
		parse    func([]byte) error
		in       []byte
		want     *Error // nil: accepted
		maxAlloc uint64 // 0: not measured
	}{
		// The size of the body.
		{"Classify/over 1 MiB", classify, bytes.Repeat([]byte{'A'}, MaxMessageSize+1), ErrTooLarge, 16 << 10},
		{"ParseJWE/over 1 MiB", parseJWE, bytes.Repeat([]byte{'A'}, MaxMessageSize+1), ErrTooLarge, 16 << 10},
		{"VerifyJWS/over 1 MiB", verify, bytes.Repeat([]byte{'A'}, MaxMessageSize+1), ErrTooLarge, 16 << 10},

		// Dots are counted before anything is split: 1 MiB of dots costs a
		// scan, not a slice header per part (24 MiB with bytes.Split).
		{"Classify/1 MiB of dots", classify, dots, ErrMalformed, 16 << 10},
		{"ParseJWE/1 MiB of dots", parseJWE, dots, ErrMalformed, 16 << 10},
		{"VerifyJWS/1 MiB of dots", verify, dots, ErrMalformed, 16 << 10},
		{"ParseJWE/512k parts", parseJWE, parts, ErrMalformed, 16 << 10},
		{"VerifyJWS/512k parts", verify, parts, ErrMalformed, 16 << 10},

		// The protected header is capped before it is decoded. Each row is
		// a message that opens or verifies without the cap.
		{"Classify/header over MaxHeaderSize", classify, append(bytes.Repeat([]byte{'A'}, MaxHeaderSize+1), "...."...), ErrTooLarge, 16 << 10},
		{"Open2FA/header at MaxHeaderSize", open2FA, craftRaw(t, []byte(padded(good2FA, MaxHeaderSize-3)), f.sessionKey), nil, 0},
		{"Open2FA/header over MaxHeaderSize", open2FA, craftRaw(t, []byte(padded(good2FA, MaxHeaderSize+1)), f.sessionKey), ErrTooLarge, 16 << 10},
		{"VerifyJWS/header at MaxHeaderSize", verify, signRaw(t, padded(jwsHeader, MaxHeaderSize-3), []byte("{}"), f.csk), nil, 0},
		{"VerifyJWS/header over MaxHeaderSize", verify, signRaw(t, padded(jwsHeader, MaxHeaderSize+1), []byte("{}"), f.csk), ErrTooLarge, 16 << 10},
		{"VerifyJWS/header of 70k members", verify, append([]byte(b64url(members(70000))), jws[bytes.IndexByte(jws, '.'):]...), ErrTooLarge, 16 << 10},

		// The signature is checked before the payload is decoded.
		{"VerifyJWS/unsigned payload of 1 MiB", verify, append(append([]byte(b64url([]byte(jwsHeader))+"."), bytes.Repeat([]byte{'A'}, MaxMessageSize-400)...), jws[bytes.LastIndexByte(jws, '.'):]...), ErrSignature, 64 << 10},

		// Inside the header: depth and names.
		{"ParseJWE/epk nested 40 deep", parseJWE, craftRaw(t, []byte(`{"typ":"r2ps-1fa","kid":"k","epk":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+`}`), f.sessionKey), ErrHeader, 0},
		{"ParseJWE/kid of 3000 bytes", parseJWE, craftRaw(t, []byte(`{"typ":"r2ps-2fa","kid":"`+huge+`"}`), f.sessionKey), ErrHeader, 0},
		{"VerifyJWS/kid of 3000 bytes", verify, signRaw(t, `{"alg":"ES256","kid":"`+huge+`","typ":"r2ps-request+jwt"}`, []byte("{}"), f.csk), ErrHeader, 0},

		// The strict checker walks at most maxJSONValues values.
		{"DecodeRequest/1024 values", decodeRequest, request(maxJSONValues - 7), nil, 0},
		{"DecodeRequest/1025 values", decodeRequest, request(maxJSONValues - 6), ErrMalformed, 0},
		{"DecodeRequest/70k members", decodeRequest, request(70000), ErrMalformed, 1 << 20},
		{"DecodeCompat/attestation data of 1100 members", decodeCompat, compatRequestFor(t, TypeWKA, string(members(1100)), ""), ErrMalformed, 0},
		{"DecodeCompat/attestation data of 1000 members", decodeCompat, compatRequestFor(t, TypeWKA, string(members(1000)), ""), nil, 0},
		{"DecodeData/1023 curves", listKeys, curves(maxJSONValues - 2), nil, 0},
		{"DecodeData/1024 curves", listKeys, curves(maxJSONValues - 1), ErrMalformed, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var err error
			n := allocated(func() { err = c.parse(c.in) })
			switch {
			case c.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != nil:
				wantSentinel(t, err, c.want)
			}
			if c.maxAlloc > 0 && n > c.maxAlloc {
				t.Fatalf("allocated %d bytes, want at most %d", n, c.maxAlloc)
			}
		})
	}
}

// TestCapsAdmitLegitimate: the largest headers of the profile fit
// MaxHeaderSize with room, and responses are not limited in values.
func TestCapsAdmitLegitimate(t *testing.T) {
	f := newFixture(t)
	eph := newECDH(t)
	name := func(c byte) string { return string(bytes.Repeat([]byte{c}, maxName)) }
	kid, clientID, context := name('k'), name('u'), name('c')
	z, _ := eph.ECDH(f.serverAgree.PublicKey())
	cek := concatKDF(z, EncA256GCM, []byte(clientID), []byte(context))
	// Every kid byte escaped as \uXXXX: the longest header JSON a sender
	// of valid names can produce.
	header := `{"alg":"ECDH-ES","enc":"A256GCM","typ":"r2ps-1fa","cty":"JWT","kid":"` + escaped(kid) + `","epk":` +
		string(mustJSON(t, newECJWK(eph.PublicKey()))) + `,"apu":"` + b64url([]byte(clientID)) + `","apv":"` + b64url([]byte(context)) + `"}`
	if n := len(b64url([]byte(header))); n > MaxHeaderSize*7/8 {
		t.Fatalf("largest 1FA header is %d bytes encoded, too close to MaxHeaderSize %d", n, MaxHeaderSize)
	}
	env, err := Open1FA(craftRaw(t, []byte(header), cek), f.agree)
	if err != nil || env.KID != kid || env.ClientID != clientID {
		t.Fatalf("largest 1FA header: %v", err)
	}

	// A compat JWS header with every member a jwk may carry.
	jwk := strings.TrimSuffix(string(mustJSON(t, newECJWK(ecdhPub(t, f.csk)))), "}") +
		`,"kid":"` + name('j')[:128] + `","alg":"ES256","use":"sig","key_ops":["verify"],"x5t":"` + b64url(make([]byte, 20)) +
		`","x5t#S256":"` + b64url(make([]byte, 32)) + `"}`
	h := `{"alg":"ES256","kid":"` + Thumbprint(&f.csk.PublicKey) + `","typ":"r2ps-request+jwt","jwk":` + jwk + `}`
	if n := len(b64url([]byte(h))); n > MaxHeaderSize/2 {
		t.Fatalf("compat JWS header with a jwk is %d bytes encoded", n)
	}
	if _, _, err := VerifyJWS(signRaw(t, h, []byte("{}"), f.csk), TypRequest, f.cskKey); err != nil {
		t.Fatalf("compat JWS header with a jwk: %v", err)
	}

	// A response listing 500 keys has over 5000 values.
	keys := make([]KeyInfo, 500)
	for i := range keys {
		keys[i] = KeyInfo{KID: fmt.Sprintf("%032x", i), CurveName: CurveP256, CreationTime: 1, PublicKey: p256JWK(t, f)}
	}
	data, err := EncodeData(ListKeysResponse{Success: true, KeyInfo: keys})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := EncodeResponse(Response{Nonce: make([]byte, MinNonceSize), IssuedAt: time.Unix(1, 0), Data: data})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := DecodeResponse(payload)
	if err != nil {
		t.Fatalf("DecodeResponse of 500 keys: %v", err)
	}
	var list ListKeysResponse
	if err := DecodeData(resp.Data, &list); err != nil || len(list.KeyInfo) != 500 {
		t.Fatalf("DecodeData of 500 keys: %v", err)
	}
}

func TestClassify(t *testing.T) {
	f := newFixture(t)
	req := f.request(t, TypeListKeys, ListKeysRequest{})
	for _, c := range []struct {
		name string
		body []byte
		want Kind
		err  *Error
	}{
		{"1FA", f.seal1FA(t, req), KindJWE, nil},
		{"2FA", f.seal2FA(t, req), KindJWE, nil},
		{"JWS", f.signRequest(t, req, "x"), KindJWS, nil},
		{"empty", nil, KindNone, ErrMalformed},
		{"one dot", []byte("a.b"), KindNone, ErrMalformed},
		{"four parts", []byte("a.b.c.d"), KindNone, ErrMalformed},
		{"six parts", []byte("a.b.c.d.e.f"), KindNone, ErrMalformed},
		{"two dots", []byte(".."), KindJWS, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, err := Classify(c.body)
			if k != c.want || (c.err == nil) != (err == nil) {
				t.Fatalf("Classify = %v, %v; want %v", k, err, c.want)
			}
			if c.err != nil {
				wantSentinel(t, err, c.err)
			}
		})
	}
	body := f.seal1FA(t, req)
	if n := testing.AllocsPerRun(10, func() { Classify(body) }); n != 0 {
		t.Fatalf("Classify allocates %v times", n)
	}
}

// p256JWK is the CSK's public key as a go-jose JWK.
func p256JWK(t *testing.T, f *fixture) *jose.JSONWebKey {
	t.Helper()
	return &jose.JSONWebKey{Key: &f.csk.PublicKey}
}

// TestParseJWEOnce: a parsed JWE opens in the mode its typ names and in no
// other, and the one header type it is decoded into still refuses the
// members of the other mode, even as null.
func TestParseJWEOnce(t *testing.T) {
	f := newFixture(t)
	req := f.request(t, TypeListKeys, ListKeysRequest{})
	j1, err := ParseJWE(f.seal1FA(t, req))
	if err != nil || j1.Mode() != Mode1FA || j1.KID() != f.serverKID {
		t.Fatalf("1FA: %v", err)
	}
	if _, err := j1.Open1FA(f.agree); err != nil {
		t.Fatal(err)
	}
	if _, err := j1.Open2FA(f.lookup); !errors.Is(err, ErrHeader) {
		t.Fatalf("1FA opened as 2FA: %v", err)
	}
	j2, err := ParseJWE(f.seal2FA(t, req))
	if err != nil || j2.Mode() != Mode2FA || j2.KID() != f.sessionID || !strings.HasPrefix(j2.ProtectedHeader(), "ey") {
		t.Fatalf("2FA: %v", err)
	}
	if _, err := j2.Open1FA(func(*ecdh.PublicKey) ([]byte, error) { t.Fatal("agree called"); return nil, nil }); !errors.Is(err, ErrHeader) {
		t.Fatalf("2FA opened as 1FA: %v", err)
	}
	env, err := j2.Open2FA(f.lookup)
	if err != nil || env.SessionID != f.sessionID {
		t.Fatal(err)
	}
	// Opening does not consume the parsed message.
	if _, err := j2.Open2FA(f.lookup); err != nil {
		t.Fatalf("second open: %v", err)
	}
	good := `{"alg":"dir","enc":"A256GCM","typ":"r2ps-2fa","cty":"JWT","kid":"` + f.sessionID + `"`
	for _, extra := range []string{`"epk":null`, `"apu":null`, `"apv":null`, `"apv":"YQ"`} {
		_, err := Open2FA(craftRaw(t, []byte(good+","+extra+"}"), f.sessionKey), f.lookup)
		wantSentinel(t, err, ErrHeader)
	}
}
