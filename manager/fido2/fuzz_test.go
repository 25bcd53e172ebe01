package fido2

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"testing"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/fido2/ctap2soft"
)

// corpus is what the soft device and the soft browser really send: the
// seeds of every fuzz target.
type corpus struct {
	makeCredential, getAssertion []byte // responses, status byte included
	creation, get                []byte // the browser's JSON answers
	handle                       string // the browser plugin's key
	browser                      *Plugin
}

func newCorpus(t testing.TB) *corpus {
	ctx := context.Background()
	dev := ctap2soft.New(ctap2soft.Options{Format: "packed"})
	var last []byte
	dev.SetTamper(ctap2soft.Tamper{Raw: func(_ byte, r []byte) []byte { last = bytes.Clone(r); return r }})
	p := testPlugin(t, "wallet.example", "", dev)
	k, _, err := p.Generate(ctx, "l", manager.Env{})
	if err != nil {
		t.Fatal(err)
	}
	c := &corpus{makeCredential: last}
	if _, _, err := p.SignAssertion(ctx, k.Handle, []byte("challenge"), manager.Env{}); err != nil {
		t.Fatal(err)
	}
	c.getAssertion = last
	rec := &recorder{AuthCallback: &ctap2soft.Browser{Device: dev, Origin: "https://wallet.example"}}
	c.browser = testPlugin(t, "wallet.example", "", nil)
	bk, _, err := c.browser.Generate(ctx, "l", manager.Env{Auth: rec})
	if err != nil {
		t.Fatal(err)
	}
	c.creation, c.handle = rec.last, bk.Handle
	if _, _, err := c.browser.SignAssertion(ctx, bk.Handle, []byte("challenge"), manager.Env{Auth: rec}); err != nil {
		t.Fatal(err)
	}
	c.get = rec.last
	return c
}

// recorder keeps the last answer of the host it wraps.
type recorder struct {
	manager.AuthCallback
	last []byte
}

func (r *recorder) RequestWebAuthnAssertion(ctx context.Context, req manager.WebAuthnRequest) ([]byte, error) {
	b, err := r.AuthCallback.RequestWebAuthnAssertion(ctx, req)
	r.last = bytes.Clone(b)
	return b, err
}

// answer is a host that answers every ceremony with the same bytes.
type answer []byte

func (answer) RequestPIN(context.Context, manager.PINRequest) (*manager.Secret, error) {
	return nil, manager.ErrUnsupported
}

func (a answer) RequestWebAuthnAssertion(context.Context, manager.WebAuthnRequest) ([]byte, error) {
	return a, nil
}

func FuzzCTAPResponse(f *testing.F) {
	c := newCorpus(f)
	f.Add(c.makeCredential)
	f.Add(c.getAssertion)
	f.Add([]byte{0x27})
	cd := newCodec()
	f.Fuzz(func(t *testing.T, resp []byte) {
		body, err := parseStatus(resp)
		if err != nil {
			return
		}
		if a, err := cd.parseMakeCredential(body); err == nil {
			if !onCurve(a.public) || len(a.credentialID) == 0 {
				t.Fatalf("accepted a registration without a P-256 key or a credential id")
			}
		}
		if r, a, err := cd.parseGetAssertion(body); err == nil && (a == nil || r == nil || a.public != nil) {
			t.Fatal("an assertion parsed with attested data")
		}
	})
}

func FuzzAuthData(f *testing.F) {
	c := newCorpus(f)
	cd := newCodec()
	for _, resp := range [][]byte{c.makeCredential, c.getAssertion} {
		var r struct {
			AuthData []byte `cbor:"2,keyasint"`
		}
		if err := cd.dec.Unmarshal(resp[1:], &r); err != nil {
			f.Fatal(err)
		}
		f.Add(r.AuthData, r.AuthData[32]&flagAT != 0)
	}
	f.Fuzz(func(t *testing.T, b []byte, attested bool) {
		a, err := cd.parseAuthData(b, attested)
		if err != nil {
			return
		}
		if attested != (a.public != nil) || len(a.rpIDHash) != 32 {
			t.Fatal("parsed authenticator data is inconsistent")
		}
	})
}

func FuzzCOSEKey(f *testing.F) {
	cd := newCodec()
	f.Add([]byte{0xa0})
	f.Add(mustHex(f, "a5010203262001215820"+"6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"+"225820"+"4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pub, err := cd.parseCOSEKey(b)
		if err == nil && !onCurve(pub) {
			t.Fatal("accepted a point off the curve")
		}
	})
}

func FuzzAttestationObject(f *testing.F) {
	c := newCorpus(f)
	cd := newCodec()
	var w struct {
		AttestationObject string `json:"attestationObject"`
	}
	if err := jsonUnmarshal(c.creation, &w); err != nil {
		f.Fatal(err)
	}
	att, err := b64(w.AttestationObject)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(att)
	f.Fuzz(func(t *testing.T, b []byte) {
		if a, err := cd.parseAttestationObject(b); err == nil && a.public == nil {
			t.Fatal("accepted an attestation object without a key")
		}
	})
}

func FuzzClientData(f *testing.F) {
	p := testPlugin(f, "wallet.example", "", nil)
	f.Add(buildClientData(typeGet, []byte("challenge"), "https://wallet.example"))
	f.Add([]byte(`{"type":"webauthn.get","challenge":"Y2hhbGxlbmdl","origin":"https://a.wallet.example:1","crossOrigin":false,"topOrigin":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = p.checkClientData(b, typeGet, []byte("challenge"))
	})
}

func FuzzDERToRaw(f *testing.F) {
	f.Add(mustHex(f, "3006020101020101"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if raw, err := derToRaw(b); err == nil && len(raw) != 64 {
			t.Fatalf("raw signature of %d bytes", len(raw))
		}
	})
}

// FuzzBrowserAnswer: whatever a host answers, the browser path returns an
// error or a checked result, never a panic.
func FuzzBrowserAnswer(f *testing.F) {
	c := newCorpus(f)
	f.Add(c.creation)
	f.Add(c.get)
	f.Add([]byte(`{"id":"","authenticatorData":null}`))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, b []byte) {
		env := manager.Env{Auth: answer(b)}
		if a, _, err := c.browser.SignAssertion(ctx, c.handle, []byte("challenge"), env); err == nil {
			pub, _ := c.browser.PublicKey(ctx, c.handle, env)
			if err := a.Verify(pub, []byte("challenge")); err != nil {
				t.Fatalf("accepted an assertion that does not verify: %v", err)
			}
		}
		if k, _, err := c.browser.Generate(ctx, "f", env); err == nil {
			_, _ = c.browser.Delete(ctx, k.Handle, env)
		}
	})
}

// onCurve reports whether pub is a valid P-256 point (crypto/ecdh checks).
func onCurve(pub *ecdsa.PublicKey) bool {
	if pub == nil {
		return false
	}
	_, err := pub.ECDH()
	return err == nil
}
