package r2ps

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// fixture holds one unit's and the server's keys, all real P-256 keys.
type fixture struct {
	serverAgree *ecdh.PrivateKey // server static agreement key (the HSM key)
	serverKID   string
	ssk         *ecdsa.PrivateKey // server signing key
	sskKID      string
	csk         *ecdsa.PrivateKey // client signing key
	cskKID      string
	cak         *ecdh.PrivateKey // client agreement key
	cakKID      string
	sessionKey  []byte
	sessionID   string
	clientID    string
	context     string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{
		serverAgree: newECDH(t),
		ssk:         newECDSA(t),
		csk:         newECDSA(t),
		cak:         newECDH(t),
		sessionKey:  randBytes(t, SessionKeySize),
		sessionID:   "c2Vzc2lvbi1pZC0wMDE",
		clientID:    "unit-0042",
		context:     "wscd",
	}
	f.serverKID = Thumbprint(ecdhToECDSA(t, f.serverAgree.PublicKey()))
	f.sskKID = Thumbprint(&f.ssk.PublicKey)
	f.cskKID = Thumbprint(&f.csk.PublicKey)
	f.cakKID = Thumbprint(ecdhToECDSA(t, f.cak.PublicKey()))
	return f
}

func newECDH(t testing.TB) *ecdh.PrivateKey {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newECDSA(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func ecdhToECDSA(t testing.TB, pub *ecdh.PublicKey) *ecdsa.PublicKey {
	t.Helper()
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pub.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecdhPrivToECDSA(t testing.TB, priv *ecdh.PrivateKey) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), priv.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// hsmSigner is a crypto.Signer and nothing more, as an HSM key is: it
// returns ASN.1 DER signatures, which SignJWS must turn into R || S.
type hsmSigner struct{ k *ecdsa.PrivateKey }

func (s hsmSigner) Public() crypto.PublicKey { return &s.k.PublicKey }
func (s hsmSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.k.Sign(r, digest, opts)
}

var _ crypto.Signer = hsmSigner{}

func mustJSON(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// request returns a fresh request for typ.
func (f *fixture) request(t testing.TB, typ string, data any) Request {
	t.Helper()
	return Request{Nonce: randBytes(t, MinNonceSize), IssuedAt: time.Unix(time.Now().Unix(), 0).UTC(), Type: typ, Data: mustJSON(t, data)}
}

// signRequest fills in jwe_hash for protected and signs with the CSK.
func (f *fixture) signRequest(t testing.TB, req Request, protected string) []byte {
	t.Helper()
	req.JWEHash = JWEHash(protected)
	payload, err := EncodeRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := SignJWS(payload, TypRequest, f.cskKID, hsmSigner{f.csk}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

// seal1FA builds a complete 1FA request as a client does.
func (f *fixture) seal1FA(t testing.TB, req Request) []byte {
	t.Helper()
	msg, err := SealRequest1FA(func(protected string) ([]byte, error) {
		return f.signRequest(t, req, protected), nil
	}, f.serverAgree.PublicKey(), f.serverKID, f.clientID, f.context, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// seal2FA builds a complete 2FA request.
func (f *fixture) seal2FA(t testing.TB, req Request) []byte {
	t.Helper()
	jws := f.signRequest(t, req, ProtectedHeader2FA(f.sessionID))
	msg, err := Seal2FA(jws, f.sessionKey, f.sessionID, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// sealResponse signs a response with the SSK and encrypts it in mode.
func (f *fixture) sealResponse(t testing.TB, mode Mode, nonce []byte, data any) []byte {
	t.Helper()
	payload, err := EncodeResponse(Response{Nonce: nonce, IssuedAt: time.Now(), Data: mustJSON(t, data)})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := SignJWS(payload, TypResponse, f.sskKID, f.ssk, nil)
	if err != nil {
		t.Fatal(err)
	}
	var msg []byte
	if mode == Mode1FA {
		msg, err = SealResponse1FA(jws, f.cak.PublicKey(), f.cakKID, f.clientID, f.context, rand.Reader)
	} else {
		msg, err = Seal2FA(jws, f.sessionKey, f.sessionID, rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func (f *fixture) agree(epk *ecdh.PublicKey) ([]byte, error) { return f.serverAgree.ECDH(epk) }

func (f *fixture) lookup(sessionID string) ([]byte, error) {
	if sessionID != f.sessionID {
		return nil, ErrUnknownSession
	}
	return f.sessionKey, nil
}

func (f *fixture) cskKey(kid string, _ *jose.JSONWebKey) (*ecdsa.PublicKey, error) {
	if kid != f.cskKID {
		return nil, ErrUnknownKey
	}
	return &f.csk.PublicKey, nil
}

func (f *fixture) sskKey(kid string, _ *jose.JSONWebKey) (*ecdsa.PublicKey, error) {
	if kid != f.sskKID {
		return nil, ErrUnknownKey
	}
	return &f.ssk.PublicKey, nil
}

// serverOpen runs the server side in the order of docs/protocol.md §4:
// decrypt, JWS signature, payload, jwe_hash.
func (f *fixture) serverOpen(t testing.TB, msg []byte) (Request, string, error) {
	t.Helper()
	mode, _, err := EnvelopeMode(msg)
	if err != nil {
		return Request{}, "", err
	}
	var jws []byte
	var protected string
	if mode == Mode1FA {
		env, err := Open1FA(msg, f.agree)
		if err != nil {
			return Request{}, "", err
		}
		jws, protected = env.JWS, env.ProtectedHeader
	} else {
		env, err := Open2FA(msg, f.lookup)
		if err != nil {
			return Request{}, "", err
		}
		jws, protected = env.JWS, env.ProtectedHeader
	}
	payload, _, err := VerifyJWS(jws, TypRequest, f.cskKey)
	if err != nil {
		return Request{}, "", err
	}
	req, err := DecodeRequest(payload)
	if err != nil {
		return Request{}, "", err
	}
	return req, protected, CheckJWEHash(req, protected)
}

// wantSentinel fails unless err wraps one of the sentinels.
func wantSentinel(t testing.TB, err error, sentinels ...*Error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one of %v", sentinels)
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error %q (code %s) wraps none of %v", err, Code(err), sentinels)
}

func flip(msg []byte, i int) []byte {
	m := append([]byte(nil), msg...)
	m[i] ^= 0x01
	return m
}
