package fido2_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/fido2"
	"github.com/wsca/wsca/manager/fido2/ctap2soft"
)

// onAuthData returns an AuthData hook for cmd that changes ad with f.
func onAuthData(cmd byte, f func(ad []byte) []byte) ctap2soft.Tamper {
	return ctap2soft.Tamper{AuthData: func(c byte, ad []byte) []byte {
		if c != cmd {
			return ad
		}
		return f(bytes.Clone(ad))
	}}
}

func clearFlag(bit byte) func([]byte) []byte {
	return func(ad []byte) []byte { ad[32] &^= bit; return ad }
}

// replaceKey puts another COSE key into registration authenticator data.
func replaceKey(key map[int]any) func([]byte) []byte {
	return func(ad []byte) []byte {
		n := int(binary.BigEndian.Uint16(ad[53:55]))
		k, err := cbor.Marshal(key)
		if err != nil {
			panic(err)
		}
		return append(ad[:55+n:55+n], k...)
	}
}

func p384Key() map[int]any {
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	raw, _ := k.PublicKey.Bytes()
	return map[int]any{1: 2, 3: -35, -1: 2, -2: raw[1:49], -3: raw[49:]}
}

// credentialID replaces the credential id of registration authenticator
// data.
func credentialID(id []byte) func([]byte) []byte {
	return func(ad []byte) []byte {
		n := int(binary.BigEndian.Uint16(ad[53:55]))
		out := binary.BigEndian.AppendUint16(bytes.Clone(ad[:53]), uint16(len(id)))
		return append(append(out, id...), ad[55+n:]...)
	}
}

// splitKey is a P-256 point whose x and y are cut at the wrong place: the
// 64 bytes are a point, the coordinates are 33 and 31 bytes.
func splitKey() map[int]any {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	raw, _ := k.PublicKey.Bytes()
	return map[int]any{1: 2, 3: -7, -1: 1, -2: raw[1:34], -3: raw[34:]}
}

// onClientData rewrites the browser's client data with old → new.
func onClientData(old, new string) func([]byte) []byte {
	return func(cd []byte) []byte { return bytes.Replace(cd, []byte(old), []byte(new), 1) }
}

// onAnswer rewrites one member of the host's JSON answer.
func onAnswer(member string, f func(string) string) func([]byte) []byte {
	return func(b []byte) []byte {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			panic(err)
		}
		s, _ := m[member].(string)
		m[member] = f(s)
		out, _ := json.Marshal(m)
		return out
	}
}

var b64 = base64.RawURLEncoding.EncodeToString

// TestRefusals: every check of the plugin, each row an answer that only
// that check refuses: the device or the host misbehaves after a correct
// registration (phase "get") or during it ("create").
func TestRefusals(t *testing.T) {
	otherID := bytes.Repeat([]byte{7}, 32)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	type row struct {
		name    string
		browser bool
		create  bool // the tamper applies to the registration
		uv      bool // user verification required (device has UV)
		tamper  ctap2soft.Tamper
		cd      func([]byte) []byte // browser client data
		answer  func([]byte) []byte // browser JSON answer
		want    error
	}
	rows := []row{
		// Native assertions.
		{name: "rp id hash", tamper: onAuthData(2, func(ad []byte) []byte { ad[0] ^= 1; return ad }), want: fido2.ErrRejected},
		{name: "user not present", tamper: onAuthData(2, clearFlag(0x01)), want: fido2.ErrRejected},
		{name: "user not verified when required", uv: true, tamper: onAuthData(2, clearFlag(0x04)), want: fido2.ErrRejected},
		{name: "another credential", tamper: ctap2soft.Tamper{Response: func(c byte, m map[int]any) {
			if c == 2 {
				m[1] = map[string]any{"id": otherID, "type": "public-key"}
			}
		}}, want: fido2.ErrRejected},
		{name: "bad signature", tamper: ctap2soft.Tamper{Signature: func([]byte) []byte {
			d := sha256.Sum256([]byte("something else"))
			s, _ := ecdsa.SignASN1(rand.Reader, otherKey, d[:])
			return s
		}}, want: fido2.ErrRejected},
		{name: "signature value out of range", tamper: ctap2soft.Tamper{Signature: func([]byte) []byte {
			s, _ := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).Lsh(big.NewInt(1), 264), big.NewInt(1)})
			return s
		}}, want: fido2.ErrMalformed},
		{name: "credential type", tamper: ctap2soft.Tamper{Response: func(c byte, m map[int]any) {
			if d, ok := m[1].(ctap2soft.Descriptor); ok {
				d.Type = "other"
				m[1] = d
			}
		}}, want: fido2.ErrMalformed},
		{name: "signature not DER", tamper: ctap2soft.Tamper{Signature: func(s []byte) []byte { return append(s, 0) }}, want: fido2.ErrMalformed},
		{name: "malformed CBOR", tamper: ctap2soft.Tamper{Raw: func(c byte, r []byte) []byte {
			if c == 2 {
				return r[:len(r)-1]
			}
			return r
		}}, want: fido2.ErrMalformed},
		{name: "duplicate CBOR key", tamper: ctap2soft.Tamper{Raw: func(c byte, r []byte) []byte {
			if c == 2 { // one more pair, key 3 again, after the map's declared pairs
				r = bytes.Clone(r)
				r[1]++
				return append(r, 0x03, 0x41, 0x00)
			}
			return r
		}}, want: fido2.ErrMalformed},
		{name: "oversized response", tamper: ctap2soft.Tamper{Response: func(c byte, m map[int]any) {
			if c == 2 {
				m[9] = make([]byte, 65<<10)
			}
		}}, want: fido2.ErrMalformed},
		{name: "attested data in an assertion", tamper: onAuthData(2, func(ad []byte) []byte { ad[32] |= 0x40; return ad }), want: fido2.ErrMalformed},
		{name: "bytes after the authenticator data", tamper: onAuthData(2, func(ad []byte) []byte { return append(ad, 0) }), want: fido2.ErrMalformed},
		{name: "operation denied", tamper: ctap2soft.Tamper{Raw: func(byte, []byte) []byte { return []byte{0x27} }}, want: manager.ErrAuthCancelled},
		{name: "no credentials", tamper: ctap2soft.Tamper{Raw: func(byte, []byte) []byte { return []byte{0x2E} }}, want: manager.ErrKeyNotFound},
		// Native registrations.
		{name: "create: rp id hash", create: true, tamper: onAuthData(1, func(ad []byte) []byte { ad[31] ^= 1; return ad }), want: fido2.ErrRejected},
		{name: "create: user not present", create: true, tamper: onAuthData(1, clearFlag(0x01)), want: fido2.ErrRejected},
		{name: "create: user not verified when required", create: true, uv: true, tamper: onAuthData(1, clearFlag(0x04)), want: fido2.ErrRejected},
		{name: "create: P-384 key", create: true, tamper: onAuthData(1, replaceKey(p384Key())), want: fido2.ErrUnsupportedKey},
		{name: "create: Ed25519 key", create: true, tamper: onAuthData(1, replaceKey(map[int]any{1: 1, 3: -8, -1: 6, -2: make([]byte, 32)})), want: fido2.ErrUnsupportedKey},
		{name: "create: point not on the curve", create: true, tamper: onAuthData(1, replaceKey(map[int]any{1: 2, 3: -7, -1: 1, -2: bytes.Repeat([]byte{1}, 32), -3: bytes.Repeat([]byte{1}, 32)})), want: fido2.ErrMalformed},
		{name: "create: coordinates of 33 and 31 bytes", create: true, tamper: onAuthData(1, replaceKey(splitKey())), want: fido2.ErrMalformed},
		{name: "create: no attested data", create: true, tamper: onAuthData(1, clearFlag(0x40)), want: fido2.ErrMalformed},
		{name: "create: attestation statement not a map", create: true, tamper: ctap2soft.Tamper{Response: func(c byte, m map[int]any) { m[3] = 5 }}, want: fido2.ErrMalformed},
		{name: "create: credential id of 1024 bytes", create: true, tamper: onAuthData(1, credentialID(make([]byte, 1024))), want: fido2.ErrMalformed},
		{name: "create: empty credential id", create: true, tamper: onAuthData(1, credentialID(nil)), want: fido2.ErrMalformed},
		{name: "create: attestation format", create: true, tamper: ctap2soft.Tamper{Response: func(c byte, m map[int]any) { m[1] = "tpm" }}, want: fido2.ErrMalformed},
		{name: "create: oversized response", create: true, tamper: ctap2soft.Tamper{Response: func(c byte, m map[int]any) { m[9] = make([]byte, 65<<10) }}, want: fido2.ErrMalformed},
		{name: "create: PIN required", create: true, tamper: ctap2soft.Tamper{Raw: func(byte, []byte) []byte { return []byte{0x36} }}, want: &fido2.CTAPError{Status: 0x36}},
		// Browser assertions: the client data and the host's answer.
		{name: "browser: client data type", browser: true, cd: onClientData("webauthn.get", "webauthn.create"), want: fido2.ErrRejected},
		{name: "browser: client data challenge", browser: true, cd: func(cd []byte) []byte {
			var m map[string]any
			_ = json.Unmarshal(cd, &m)
			m["challenge"] = b64([]byte("another challenge"))
			out, _ := json.Marshal(m)
			return out
		}, want: fido2.ErrRejected},
		{name: "browser: origin on another site", browser: true, cd: onClientData(origin, "https://wallet.example.evil"), want: fido2.ErrRejected},
		{name: "browser: origin on a look-alike domain", browser: true, cd: onClientData(origin, "https://evilwallet.example"), want: fido2.ErrRejected},
		{name: "browser: origin over http", browser: true, cd: onClientData(origin, "http://wallet.example"), want: fido2.ErrRejected},
		{name: "browser: cross-origin frame", browser: true, cd: onClientData(`"crossOrigin":false`, `"crossOrigin":true`), want: fido2.ErrRejected},
		{name: "browser: oversized client data", browser: true, cd: onClientData(`"crossOrigin":false`, `"crossOrigin":false,"x":"`+strings.Repeat("a", 9<<10)+`"`), want: fido2.ErrMalformed},
		{name: "browser: another credential", browser: true, answer: onAnswer("id", func(string) string { return b64(otherID) }), want: fido2.ErrRejected},
		{name: "browser: padded base64", browser: true, answer: onAnswer("signature", func(s string) string { return s + "=" }), want: fido2.ErrMalformed},
		{name: "browser: oversized answer", browser: true, answer: func(b []byte) []byte {
			return append(append(b[:len(b)-1:len(b)-1], `,"x":"`+strings.Repeat("a", 65<<10)+`"`...), '}')
		}, want: fido2.ErrMalformed},
		{name: "browser: rp id hash", browser: true, tamper: onAuthData(2, func(ad []byte) []byte { ad[0] ^= 1; return ad }), want: fido2.ErrRejected},
		{name: "browser: bad signature", browser: true, tamper: ctap2soft.Tamper{Signature: func([]byte) []byte {
			d := sha256.Sum256([]byte("something else"))
			s, _ := ecdsa.SignASN1(rand.Reader, otherKey, d[:])
			return s
		}}, want: fido2.ErrRejected},
		// Browser registrations.
		{name: "browser create: client data type", browser: true, create: true, cd: onClientData("webauthn.create", "webauthn.get"), want: fido2.ErrRejected},
		{name: "browser create: origin", browser: true, create: true, cd: onClientData(origin, "https://evil.example"), want: fido2.ErrRejected},
		{name: "browser create: challenge", browser: true, create: true, cd: func(cd []byte) []byte {
			var m map[string]any
			_ = json.Unmarshal(cd, &m)
			m["challenge"] = b64(make([]byte, 32))
			out, _ := json.Marshal(m)
			return out
		}, want: fido2.ErrRejected},
		{name: "browser create: id is not the credential's", browser: true, create: true, answer: onAnswer("id", func(string) string { return b64(otherID) }), want: fido2.ErrRejected},
		{name: "browser create: attestation object", browser: true, create: true, answer: onAnswer("attestationObject", func(s string) string { return s[:len(s)-4] }), want: fido2.ErrMalformed},
		{name: "browser create: user not present", browser: true, create: true, tamper: onAuthData(1, clearFlag(0x01)), want: fido2.ErrRejected},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			dev := ctap2soft.New(ctap2soft.Options{UV: r.uv})
			mod := func(c *fido2.Config) {
				if r.uv {
					c.UserVerification = fido2.UVRequired
				}
			}
			var p *fido2.Plugin
			env := manager.Env{}
			var host *ctap2soft.Browser
			if r.browser {
				p, host = browser(t, dev, mod)
				env.Auth = host
			} else {
				p = native(t, dev, mod)
			}
			tamper := func() {
				dev.SetTamper(r.tamper)
				if host != nil {
					host.ClientData, host.Answer = r.cd, r.answer
				}
			}
			if r.create {
				tamper()
				_, _, err := p.Generate(ctx, "l", env)
				check(t, err, r.want)
				if list, _ := p.List(ctx, env); len(list) != 0 {
					t.Fatalf("a refused registration left %d records", len(list))
				}
				return
			}
			k, _, err := p.Generate(ctx, "l", env)
			if err != nil {
				t.Fatal(err)
			}
			// The untampered assertion passes, so the row's refusal is
			// the tamper's.
			if _, _, err := p.SignAssertion(ctx, k.Handle, []byte("challenge"), env); err != nil {
				t.Fatal(err)
			}
			tamper()
			a, _, err := p.SignAssertion(ctx, k.Handle, []byte("challenge"), env)
			check(t, err, r.want)
			if err == nil {
				t.Logf("assertion %x", a.Signature)
			}
		})
	}
}

func check(t *testing.T, err, want error) {
	t.Helper()
	var ce *fido2.CTAPError
	if w, ok := want.(*fido2.CTAPError); ok {
		if !errors.As(err, &ce) || ce.Status != w.Status {
			t.Fatalf("error %v, want CTAP status 0x%02x", err, w.Status)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
}
