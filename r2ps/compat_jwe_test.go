package r2ps

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/go-jose/go-jose/v4"
)

// jwe2faVectors is the layout of testdata/go-r2ps-service/jwe2fa.json
// (README.md there names its source).
type jwe2faVectors struct {
	HKDF struct {
		SessionKeyHex string `json:"session_key_hex"`
		SessionID     string `json:"session_id"`
		KEKC2SHex     string `json:"kek_c2s_hex"`
		KEKS2CHex     string `json:"kek_s2c_hex"`
	} `json:"hkdf_vectors"`
	JWE struct {
		SessionKeyHex string `json:"session_key_hex"`
		SessionID     string `json:"session_id"`
		Plaintext     string `json:"plaintext"`
		C2S           string `json:"c2s"`
		S2C           string `json:"s2c"`
	} `json:"jwe_2fa"`
}

func loadJWE2FA(t testing.TB) jwe2faVectors {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "go-r2ps-service", "jwe2fa.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v jwe2faVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keyLookup returns a lookup that knows one session and counts its calls.
func keyLookup(id string, key []byte, calls *int) func(string) ([]byte, error) {
	return func(s string) ([]byte, error) {
		*calls++
		if s != id {
			return nil, ErrUnknownSession
		}
		return key, nil
	}
}

func TestCompatKEKVectors(t *testing.T) {
	v := loadJWE2FA(t)
	key := mustHex(t, v.HKDF.SessionKeyHex)
	for _, tc := range []struct {
		dir  Direction
		want string
	}{
		{ClientToServer, v.HKDF.KEKC2SHex},
		{ServerToClient, v.HKDF.KEKS2CHex},
	} {
		t.Run(string(tc.dir), func(t *testing.T) {
			kek, err := CompatKEK(key, tc.dir, v.HKDF.SessionID)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(kek); got != tc.want {
				t.Fatalf("KEK %s, want %s", got, tc.want)
			}
		})
	}
}

func TestCompatKEKRefuses(t *testing.T) {
	key := bytes.Repeat([]byte{7}, SessionKeySize)
	for _, tc := range []struct {
		name string
		key  []byte
		dir  Direction
	}{
		{"no direction", key, ""},
		{"upper-case direction", key, "C2S"},
		{"other direction", key, "c2c"},
		{"short key", key[:31], ClientToServer},
		{"long key", append(key, 0), ClientToServer},
		{"no key", nil, ServerToClient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := CompatKEK(tc.key, tc.dir, "s"); err == nil {
				t.Fatal("no error")
			} else if Code(err) != CodeServerError {
				t.Fatalf("code %s: %v", Code(err), err)
			}
		})
	}
}

// TestOpenCompat2FAVectors opens JWEs that go-r2ps-service's EncryptJWE2FA
// produced, and checks that our sealer writes the same protected header.
func TestOpenCompat2FAVectors(t *testing.T) {
	v := loadJWE2FA(t).JWE
	key := mustHex(t, v.SessionKeyHex)
	for _, tc := range []struct {
		name      string
		msg       string
		dir, othr Direction
	}{
		{"c2s", v.C2S, ClientToServer, ServerToClient},
		{"s2c", v.S2C, ServerToClient, ClientToServer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls int
			env, err := OpenCompat2FA([]byte(tc.msg), tc.dir, keyLookup(v.SessionID, key, &calls))
			if err != nil {
				t.Fatal(err)
			}
			if string(env.JWS) != v.Plaintext || env.SessionID != v.SessionID || calls != 1 {
				t.Fatalf("opened %+v after %d lookups", env, calls)
			}
			header, _, _ := strings.Cut(tc.msg, ".")
			if env.ProtectedHeader != header {
				t.Fatalf("ProtectedHeader %q, want %q", env.ProtectedHeader, header)
			}
			if got := ProtectedHeaderCompat2FA(v.SessionID); got != header {
				t.Fatalf("our header %q, go-r2ps-service's %q", got, header)
			}
			if id, err := PeekCompat2FA([]byte(tc.msg)); err != nil || id != v.SessionID {
				t.Fatalf("PeekCompat2FA = %q, %v", id, err)
			}
			_, err = OpenCompat2FA([]byte(tc.msg), tc.othr, keyLookup(v.SessionID, key, &calls))
			wantSentinel(t, err, ErrDecrypt)
			// The I-D's 2FA opener and mode sniffer refuse it: it has an
			// encrypted key, so nothing but OpenCompat2FA opens it.
			_, err = Open2FA([]byte(tc.msg), keyLookup(v.SessionID, key, &calls))
			wantSentinel(t, err, ErrMalformed)
			_, _, err = EnvelopeMode([]byte(tc.msg))
			wantSentinel(t, err, ErrMalformed)
		})
	}
}

func TestSealCompat2FARoundTrip(t *testing.T) {
	f := newFixture(t)
	jws := []byte("eyJhbGciOiJFUzI1NiJ9.e30.c2ln")
	for _, dir := range []Direction{ClientToServer, ServerToClient} {
		t.Run(string(dir), func(t *testing.T) {
			a, err := SealCompat2FA(jws, f.sessionKey, f.sessionID, dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := SealCompat2FA(jws, f.sessionKey, f.sessionID, dir, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			pa, pb := strings.Split(string(a), "."), strings.Split(string(b), ".")
			if pa[1] == pb[1] || pa[2] == pb[2] {
				t.Fatal("two messages share an encrypted key or IV")
			}
			var calls int
			env, err := OpenCompat2FA(a, dir, keyLookup(f.sessionID, f.sessionKey, &calls))
			if err != nil || !bytes.Equal(env.JWS, jws) || env.SessionID != f.sessionID {
				t.Fatalf("opened %+v, %v", env, err)
			}
			// go-jose, as go-r2ps-service's DecryptJWE2FA calls it, opens ours.
			obj, err := jose.ParseEncryptedCompact(string(a), []jose.KeyAlgorithm{jose.A256KW}, []jose.ContentEncryption{jose.A256GCM})
			if err != nil {
				t.Fatal(err)
			}
			kek, err := CompatKEK(f.sessionKey, dir, f.sessionID)
			if err != nil {
				t.Fatal(err)
			}
			pt, err := obj.Decrypt(kek)
			if err != nil || !bytes.Equal(pt, jws) {
				t.Fatalf("go-jose: %q, %v", pt, err)
			}
		})
	}
}

// b64 encodes a compact part.
func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// sealHeader seals under the fixture's session with a header of our choice,
// so that only the check under test can refuse the result.
func sealHeader(t *testing.T, f *fixture, header string) []byte {
	t.Helper()
	msg, err := sealCompatHeader(b64(header), []byte("jws"), f.sessionKey, f.sessionID, ClientToServer, nil)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// setPart replaces part i of a compact JWE.
func setPart(msg []byte, i int, part string) []byte {
	p := strings.Split(string(msg), ".")
	p[i] = part
	return []byte(strings.Join(p, "."))
}

func TestOpenCompat2FARefuses(t *testing.T) {
	f := newFixture(t)
	good, err := SealCompat2FA([]byte("jws"), f.sessionKey, f.sessionID, ClientToServer, nil)
	if err != nil {
		t.Fatal(err)
	}
	hdr := func(members string) string { return `{` + members + `}` }
	const rest = `"cty":"JWT","enc":"A256GCM","kid":"c2Vzc2lvbi1pZC0wMDE","typ":"r2ps-2fa"`
	// The largest header the size bound admits: a kid of maxName bytes,
	// every one escaped. Padded with JSON white space past the bound, it
	// would still open without the bound.
	maxKID := strings.Repeat(`\u0041`, maxName)
	maxHeader := `{"alg":"A256KW","cty":"JWT","enc":"A256GCM","kid":"` + maxKID + `","typ":"r2ps-2fa"}`
	largest := maxHeader + strings.Repeat(" ", maxCompatHeader*3/4-len(maxHeader))
	for len(b64(largest)) > maxCompatHeader {
		largest = largest[:len(largest)-1]
	}
	bigKIDLookup := func(s string) ([]byte, error) { return f.sessionKey, nil }
	sealKID := func(header, kid string) []byte {
		msg, err := sealCompatHeader(b64(header), []byte("jws"), f.sessionKey, kid, ClientToServer, nil)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	if _, err := OpenCompat2FA(sealKID(largest, strings.Repeat("A", maxName)), ClientToServer, bigKIDLookup); err != nil {
		t.Fatalf("largest header refused: %v", err)
	}

	wrongKey := bytes.Repeat([]byte{1}, SessionKeySize)
	otherSession, err := sealCompatHeader(ProtectedHeaderCompat2FA(f.sessionID), []byte("jws"), f.sessionKey, "another-session", ClientToServer, nil)
	if err != nil {
		t.Fatal(err)
	}
	reordered := b64(`{"typ":"r2ps-2fa","alg":"A256KW","cty":"JWT","enc":"A256GCM","kid":"` + f.sessionID + `"}`)

	for _, tc := range []struct {
		name   string
		msg    []byte
		dir    Direction
		key    []byte // returned by lookup; nil means the fixture's
		want   *Error // nil: want the code in code
		code   string
		lookup bool // whether lookup may be called
	}{
		// structure
		{name: "too large", msg: bytes.Repeat([]byte("A"), MaxMessageSize+1), want: ErrTooLarge},
		{name: "four parts", msg: good[:bytes.LastIndexByte(good, '.')], want: ErrMalformed},
		{name: "six parts", msg: append(append([]byte(nil), good...), '.'), want: ErrMalformed},
		{name: "header past the bound", msg: sealKID(largest+" ", strings.Repeat("A", maxName)), want: ErrHeader},
		{name: "padded header", msg: setPart(good, 0, ProtectedHeaderCompat2FA(f.sessionID)+"="), want: ErrMalformed},
		{name: "empty header", msg: setPart(good, 0, ""), want: ErrMalformed},
		{name: "no encrypted key (I-D dir shape)", msg: setPart(good, 1, ""), want: ErrMalformed},
		{name: "32-byte encrypted key", msg: setPart(good, 1, b64(strings.Repeat("k", 32))), want: ErrMalformed},
		{name: "48-byte encrypted key", msg: setPart(good, 1, b64(strings.Repeat("k", 48))), want: ErrMalformed},
		{name: "16-byte IV", msg: setPart(good, 2, b64(strings.Repeat("i", 16))), want: ErrMalformed},
		{name: "ciphertext not base64url", msg: setPart(good, 3, "a+b/"), want: ErrMalformed},
		{name: "12-byte tag", msg: setPart(good, 4, b64(strings.Repeat("t", 12))), want: ErrMalformed},
		// header, each sealed validly
		{name: "alg dir", msg: sealHeader(t, f, hdr(`"alg":"dir",`+rest)), want: ErrHeader},
		{name: "alg A128KW", msg: sealHeader(t, f, hdr(`"alg":"A128KW",`+rest)), want: ErrHeader},
		{name: "no alg", msg: sealHeader(t, f, hdr(rest)), want: ErrHeader},
		{name: "enc A128GCM", msg: sealHeader(t, f, hdr(`"alg":"A256KW","cty":"JWT","enc":"A128GCM","kid":"`+f.sessionID+`","typ":"r2ps-2fa"`)), want: ErrHeader},
		{name: "typ r2ps-1fa", msg: sealHeader(t, f, hdr(`"alg":"A256KW","cty":"JWT","enc":"A256GCM","kid":"`+f.sessionID+`","typ":"r2ps-1fa"`)), want: ErrHeader},
		{name: "no typ", msg: sealHeader(t, f, hdr(`"alg":"A256KW","cty":"JWT","enc":"A256GCM","kid":"`+f.sessionID+`"`)), want: ErrHeader},
		{name: "cty jwt", msg: sealHeader(t, f, hdr(`"alg":"A256KW","cty":"jwt","enc":"A256GCM","kid":"`+f.sessionID+`","typ":"r2ps-2fa"`)), want: ErrHeader},
		{name: "no cty", msg: sealHeader(t, f, hdr(`"alg":"A256KW","enc":"A256GCM","kid":"`+f.sessionID+`","typ":"r2ps-2fa"`)), want: ErrHeader},
		{name: "no kid", msg: sealKID(hdr(`"alg":"A256KW","cty":"JWT","enc":"A256GCM","typ":"r2ps-2fa"`), ""), want: ErrHeader},
		{name: "kid with a control character", msg: sealKID(hdr(`"alg":"A256KW","cty":"JWT","enc":"A256GCM","kid":"a\u0001","typ":"r2ps-2fa"`), "a\x01"), want: ErrHeader},
		{name: "kid too long", msg: sealKID(hdr(`"alg":"A256KW","cty":"JWT","enc":"A256GCM","kid":"`+strings.Repeat("k", maxName+1)+`","typ":"r2ps-2fa"`), strings.Repeat("k", maxName+1)), want: ErrHeader},
		{name: "zip", msg: sealHeader(t, f, hdr(`"alg":"A256KW",`+rest+`,"zip":"DEF"`)), want: ErrHeader},
		{name: "crit", msg: sealHeader(t, f, hdr(`"alg":"A256KW",`+rest+`,"crit":["x"],"x":1`)), want: ErrHeader},
		{name: "duplicate alg", msg: sealHeader(t, f, hdr(`"alg":"A256KW","alg":"A256KW",`+rest)), want: ErrHeader},
		{name: "case-folded member", msg: sealHeader(t, f, hdr(`"ALG":"A256KW",`+rest)), want: ErrHeader},
		{name: "header not an object", msg: sealHeader(t, f, `["A256KW"]`), want: ErrHeader},
		// cryptography
		{name: "unknown session", msg: sealKID(hdr(`"alg":"A256KW","cty":"JWT","enc":"A256GCM","kid":"nobody","typ":"r2ps-2fa"`), "nobody"), code: CodeUnauthorized, lookup: true},
		{name: "wrong session key", msg: good, key: wrongKey, want: ErrDecrypt, lookup: true},
		{name: "wrong direction", msg: good, dir: ServerToClient, want: ErrDecrypt, lookup: true},
		{name: "sealed for another session id", msg: otherSession, want: ErrDecrypt, lookup: true},
		{name: "header re-encoded", msg: setPart(good, 0, reordered), want: ErrDecrypt, lookup: true},
		{name: "encrypted key modified", msg: setPart(good, 1, b64(strings.Repeat("k", wrappedKeySize))), want: ErrDecrypt, lookup: true},
		{name: "IV modified", msg: setPart(good, 2, b64(strings.Repeat("i", ivSize))), want: ErrDecrypt, lookup: true},
		{name: "tag modified", msg: setPart(good, 4, b64(strings.Repeat("t", tagSize))), want: ErrDecrypt, lookup: true},
		// server faults
		{name: "16-byte session key", msg: good, key: wrongKey[:16], code: CodeServerError, lookup: true},
		{name: "no direction", msg: good, dir: "x", code: CodeServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir
			if dir == "" {
				dir = ClientToServer
			}
			key := tc.key
			if key == nil {
				key = f.sessionKey
			}
			var calls int
			env, err := OpenCompat2FA(tc.msg, dir, func(s string) ([]byte, error) {
				calls++
				if s != f.sessionID && s != "another-session" {
					return nil, ErrUnknownSession
				}
				return key, nil
			})
			if err == nil {
				t.Fatalf("opened: %+v", env)
			}
			if tc.want != nil {
				wantSentinel(t, err, tc.want)
			} else if Code(err) != tc.code {
				t.Fatalf("code %s, want %s: %v", Code(err), tc.code, err)
			}
			if !tc.lookup && calls != 0 {
				t.Fatalf("lookup called before the header was checked: %v", err)
			}
			if !tc.lookup && tc.code == "" {
				if _, perr := PeekCompat2FA(tc.msg); perr == nil {
					t.Fatal("PeekCompat2FA accepts it")
				}
			}
		})
	}
}

func TestSealCompat2FARefuses(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name      string
		plaintext []byte
		key       []byte
		id        string
		dir       Direction
		random    *bytes.Reader
		want      *Error
	}{
		{name: "no session id", key: f.sessionKey, dir: ClientToServer, want: ErrMalformed},
		{name: "control character in session id", key: f.sessionKey, id: "a\nb", dir: ClientToServer, want: ErrMalformed},
		{name: "too large", plaintext: make([]byte, MaxMessageSize+1), key: f.sessionKey, id: "s", dir: ClientToServer, want: ErrTooLarge},
		{name: "no direction", key: f.sessionKey, id: "s"},
		{name: "short session key", key: f.sessionKey[:16], id: "s", dir: ServerToClient},
		{name: "short randomness", key: f.sessionKey, id: "s", dir: ServerToClient, random: bytes.NewReader(make([]byte, SessionKeySize+ivSize-1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var random = rand.Reader
			if tc.random != nil {
				random = iotest.DataErrReader(tc.random)
			}
			_, err := SealCompat2FA(tc.plaintext, tc.key, tc.id, tc.dir, random)
			switch {
			case err == nil:
				t.Fatal("sealed")
			case tc.want != nil:
				wantSentinel(t, err, tc.want)
			case Code(err) != CodeServerError:
				t.Fatalf("code %s: %v", Code(err), err)
			}
		})
	}
}

func FuzzOpenCompat2FA(f *testing.F) {
	fx := fixedFixture(f)
	v := loadJWE2FA(f).JWE
	vkey := mustHex(f, v.SessionKeyHex)
	f.Add([]byte(v.C2S))
	f.Add([]byte(v.S2C))
	sealed, err := SealCompat2FA(fx.signRequest(f, seedRequest(f, fx), ProtectedHeaderCompat2FA(fx.sessionID)), fx.sessionKey, fx.sessionID, ClientToServer, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	lookup := func(s string) ([]byte, error) {
		switch s {
		case fx.sessionID:
			return fx.sessionKey, nil
		case v.SessionID:
			return vkey, nil
		}
		return nil, ErrUnknownSession
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, dir := range []Direction{ClientToServer, ServerToClient} {
			env, err := OpenCompat2FA(msg, dir, lookup)
			wantTyped(t, err)
			if err == nil && env.SessionID != fx.sessionID && env.SessionID != v.SessionID {
				t.Fatalf("opened under session %q", env.SessionID)
			}
			if err == nil && !bytes.HasPrefix(msg, []byte(env.ProtectedHeader+".")) {
				t.Fatalf("protected header %q is not the message's", env.ProtectedHeader)
			}
		}
		id, err := PeekCompat2FA(msg)
		wantTyped(t, err)
		if err == nil && id == "" {
			t.Fatal("empty session id")
		}
	})
}
