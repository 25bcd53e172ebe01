package gor2pswire

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wsca/wsca/r2ps"
)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustECDH(t testing.TB) *ecdh.PrivateKey {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestWalletEndToEnd runs every method against the fake go-r2ps-service,
// with bare JWS session requests (pkg/client) and with the 2FA JWE.
func TestWalletEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		jwe   bool
		parts int // of a session request body
	}{
		{"bare JWS as pkg/client", false, 3},
		{"2FA JWE", true, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			csk := newKey(t)
			f, srv := newFakeServer(t, &csk.PublicKey, tc.jwe)
			var opts []Option
			if tc.jwe {
				opts = append(opts, WithJWE())
			}
			w := New(srv.URL+"/", "wallet-1", "hsm", csk, &f.ssk.PublicKey, opts...)
			ctx := context.Background()
			if err := w.Register(ctx, []byte("1234")); err != nil {
				t.Fatal(err)
			}
			s, err := w.Authenticate(ctx, []byte("1234"))
			if err != nil {
				t.Fatal(err)
			}
			if s.ID == "" || len(s.Key) != r2ps.SessionKeySize || s.ExpiresAt.IsZero() || w.Session() != s {
				t.Fatalf("session %+v", s)
			}
			k, err := w.Generate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Count(string(f.lastBody()), "."); got != tc.parts-1 {
				t.Fatalf("session request in %d parts, want %d", got+1, tc.parts)
			}
			keys, err := w.ListKeys(ctx)
			if err != nil || len(keys) != 1 || keys[0].KID != k.KID || !keys[0].PublicKey.Equal(k.PublicKey) {
				t.Fatalf("keys %+v, %v", keys, err)
			}
			h := sha256.Sum256([]byte("hello"))
			sig, err := w.Sign(ctx, k.KID, h[:])
			if err != nil || !ecdsa.VerifyASN1(k.PublicKey, h[:], sig) {
				t.Fatalf("signature does not verify: %v", err)
			}
			peer := mustECDH(t)
			secret, err := w.ECDH(ctx, k.KID, peer.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			kp, _ := k.PublicKey.ECDH()
			want, _ := peer.ECDH(kp)
			if !bytes.Equal(secret, want) {
				t.Fatal("ECDH secret differs")
			}
			if err := w.ChangePIN(ctx, []byte("5678")); err != nil {
				t.Fatal(err)
			}
			// A wrong PIN fails in the client at KE3, as with pkg/client:
			// OPAQUE tells the client before it sends finalize.
			if _, err := w.Authenticate(ctx, []byte("1234")); err == nil || !strings.Contains(err.Error(), "KE3") {
				t.Fatalf("old PIN: %v", err)
			}
			if w.Session() != nil {
				t.Fatal("a failed login keeps the old session")
			}
			if _, err := w.Authenticate(ctx, []byte("5678")); err != nil {
				t.Fatalf("new PIN: %v", err)
			}
		})
	}
}

// TestBareSessionRefusedWhenJWERequired shows the two policies apart: a
// server that requires the JWE refuses pkg/client's bare session request.
func TestBareSessionRefusedWhenJWERequired(t *testing.T) {
	csk := newKey(t)
	f, srv := newFakeServer(t, &csk.PublicKey, true)
	w := New(srv.URL, "wallet-1", "hsm", csk, &f.ssk.PublicKey)
	ctx := context.Background()
	if err := w.Register(ctx, []byte("1234")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Authenticate(ctx, []byte("1234")); err != nil {
		t.Fatal(err)
	}
	var se *ServerError
	if _, err := w.ListKeys(ctx); !errors.As(err, &se) || se.Code != "UNAUTHORIZED" {
		t.Fatalf("bare session request: %v", err)
	}
}

func TestOptionsOnTheWire(t *testing.T) {
	csk := newKey(t)
	f, srv := newFakeServer(t, &csk.PublicKey, false)
	ctx := context.Background()
	w := New(srv.URL, "wallet-1", "hsm", csk, &f.ssk.PublicKey, WithKID("wallet-1"), WithRegistrationJWK(),
		WithClock(func() time.Time { return time.Unix(1700000000, 0) }))
	f.override = func(status int, body []byte) (int, []byte) { return status, body }
	// The fake checks no iat; the clock shows in the payload.
	if err := w.RegisterAuthorized(ctx, []byte("1234"), "ACTIVATION"); err != nil {
		t.Fatal(err)
	}
	bodies := f.allBodies()
	for i, b := range bodies {
		h, p := jwsParts(t, b)
		var hdr map[string]any
		_ = json.Unmarshal(h, &hdr)
		if hdr["kid"] != "wallet-1" || hdr["jwk"] == nil {
			t.Fatalf("registration header %d: %s", i, h)
		}
		_, vals := members(t, p)
		if string(vals["iat"]) != "1700000000" {
			t.Fatalf("iat %s", vals["iat"])
		}
		_, data := members(t, vals["data"])
		if (data["authorization"] != nil) != (i == 1) || (i == 1 && (str(t, data["authorization"]) != "ACTIVATION" || str(t, data["authorization_type"]) != "otp")) {
			t.Fatalf("request %d data %s", i, vals["data"])
		}
	}
	if _, err := w.Authenticate(ctx, []byte("1234")); err != nil {
		t.Fatal(err)
	}
	h, _ := jwsParts(t, f.lastBody())
	if string(h) != `{"alg":"ES256","kid":"wallet-1","typ":"r2ps-request+jwt"}` {
		t.Fatalf("login header %s: the jwk belongs to registration only", h)
	}
}

// TestResponseChecks: each check on a response refuses what it must.
func TestResponseChecks(t *testing.T) {
	csk := newKey(t)
	other := newKey(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		jwe     bool
		rewrite func(f *fakeServer, status int, body []byte) (int, []byte)
		want    string
	}{
		{"failure body", false, func(_ *fakeServer, _ int, _ []byte) (int, []byte) {
			return 403, []byte(`{"error_code":"ACCESS_DENIED","error_message":"access denied"}`)
		}, "403 ACCESS_DENIED"},
		{"unparsable failure body", false, func(_ *fakeServer, _ int, _ []byte) (int, []byte) { return 500, []byte("oops") }, "unparsable"},
		{"foreign signature", false, func(f *fakeServer, status int, body []byte) (int, []byte) {
			return status, resign(t, body, other)
		}, "response JWS"},
		{"nonce not echoed", false, func(f *fakeServer, status int, body []byte) (int, []byte) {
			return status, repayload(t, body, f.ssk, func(r *response) { r.Nonce = "AAAAAAAAAAAAAAAAAAAAAA==" })
		}, "nonce"},
		{"wrong ver", false, func(f *fakeServer, status int, body []byte) (int, []byte) {
			return status, repayload(t, body, f.ssk, func(r *response) { r.Ver = "2.0" })
		}, "ver"},
		{"success false", false, func(f *fakeServer, status int, body []byte) (int, []byte) {
			return status, repayload(t, body, f.ssk, func(r *response) { no := false; r.Success = &no })
		}, "success false"},
		{"bare response in JWE mode", true, func(f *fakeServer, status int, body []byte) (int, []byte) {
			return status, openS2C(t, f, body)
		}, "response JWE"},
		{"response under another session", true, func(f *fakeServer, status int, body []byte) (int, []byte) {
			sid := ""
			for id := range f.pending {
				sid = id
			}
			out, err := r2ps.SealCompat2FA(openS2C(t, f, body), f.pending[sid].key, "another-session", r2ps.ServerToClient, nil)
			if err != nil {
				t.Fatal(err)
			}
			return status, out
		}, "response JWE"},
		{"response data not the expected type", false, func(f *fakeServer, status int, body []byte) (int, []byte) {
			return status, repayload(t, body, f.ssk, func(r *response) { r.Data = json.RawMessage(`[1]`) })
		}, "response data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFakeServer(t, &csk.PublicKey, tc.jwe)
			var opts []Option
			if tc.jwe {
				opts = append(opts, WithJWE())
			}
			w := New(srv.URL, "wallet-1", "hsm", csk, &f.ssk.PublicKey, opts...)
			if err := w.Register(ctx, []byte("1234")); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Authenticate(ctx, []byte("1234")); err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			f.override = func(status int, body []byte) (int, []byte) { return tc.rewrite(f, status, body) }
			f.mu.Unlock()
			_, err := w.ListKeys(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestNoSession(t *testing.T) {
	w := New("http://127.0.0.1:1", "u", "c", newKey(t), &newKey(t).PublicKey)
	ctx := context.Background()
	for name, err := range map[string]error{
		"Call":      w.Call(ctx, typeListKeys, listKeysData{}, nil),
		"ChangePIN": w.ChangePIN(ctx, []byte("1")),
	} {
		if !errors.Is(err, ErrNoSession) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := w.ECDH(ctx, "k", nil); err == nil {
		t.Error("ECDH with no peer key")
	}
}

// UseSession presents a session id without its key: the bare JWS carries
// it, which is exactly the request of issue 6.
func TestUseSession(t *testing.T) {
	csk := newKey(t)
	f, srv := newFakeServer(t, &csk.PublicKey, false)
	w := New(srv.URL, "wallet-1", "hsm", csk, &f.ssk.PublicKey)
	ctx := context.Background()
	if err := w.Register(ctx, []byte("1234")); err != nil {
		t.Fatal(err)
	}
	s, err := w.Authenticate(ctx, []byte("1234"))
	if err != nil {
		t.Fatal(err)
	}
	thief := New(srv.URL, "wallet-1", "hsm", csk, &f.ssk.PublicKey)
	thief.UseSession(&Session{ID: s.ID})
	if _, err := thief.ListKeys(ctx); err != nil {
		t.Fatalf("the fake (like go-r2ps-service) serves a bare session id: %v", err)
	}
	thief = New(srv.URL, "wallet-1", "hsm", csk, &f.ssk.PublicKey, WithJWE())
	thief.UseSession(&Session{ID: s.ID, Key: make([]byte, r2ps.SessionKeySize)})
	var se *ServerError
	if _, err := thief.ListKeys(ctx); !errors.As(err, &se) || se.Code != "UNAUTHORIZED" {
		t.Fatalf("JWE under a wrong session key: %v", err)
	}
}

// resign re-signs a response JWS's payload with key.
func resign(t *testing.T, body []byte, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	_, p := jwsParts(t, body)
	var r response
	if err := json.Unmarshal(p, &r); err != nil {
		t.Fatal(err)
	}
	return signResponse(t, r, key)
}

func repayload(t *testing.T, body []byte, key *ecdsa.PrivateKey, edit func(*response)) []byte {
	t.Helper()
	_, p := jwsParts(t, body)
	var r response
	if err := json.Unmarshal(p, &r); err != nil {
		t.Fatal(err)
	}
	edit(&r)
	return signResponse(t, r, key)
}

func signResponse(t *testing.T, r response, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	b, _ := json.Marshal(r)
	w := &Wallet{csk: key}
	jws, err := w.sign(b, false)
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

// openS2C unwraps a JWE response, for the test that sends it bare.
func openS2C(t *testing.T, f *fakeServer, body []byte) []byte {
	t.Helper()
	env, err := r2ps.OpenCompat2FA(body, r2ps.ServerToClient, func(id string) ([]byte, error) { return f.pending[id].key, nil })
	if err != nil {
		t.Fatal(err)
	}
	return env.JWS
}

func FuzzReadResponse(f *testing.F) {
	tr, key := loadTranscript(f)
	for _, ex := range tr.Exchanges {
		f.Add(200, []byte(ex.Response))
	}
	f.Add(401, []byte(`{"error_code":"UNAUTHORIZED","error_message":"x"}`))
	sessionKey := bytes.Repeat([]byte{7}, r2ps.SessionKeySize)
	s := &Session{ID: "s", Key: sessionKey}
	sealed, err := r2ps.SealCompat2FA([]byte(tr.Exchanges[0].Response), sessionKey, "s", r2ps.ServerToClient, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(200, sealed)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		for _, k := range [][]byte{nil, sessionKey} {
			res, err := readResponse(httpResponse{status: status, body: body}, &key.PublicKey, k, s, "n")
			if err == nil && (status != 200 || res.Nonce != "n") {
				t.Fatalf("accepted status %d nonce %q", status, res.Nonce)
			}
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	v := loadVectors(f)
	var lk listKeysResult
	_ = json.Unmarshal([]byte(v.HSM["list_keys_response"]), &lk)
	f.Add(lk.KeyInfo[0].PublicKey)
	f.Add("ArzBG4Fw5E5XQuOys44QOFrRX-_pm4AYYA1yWPzbx2mM")
	f.Fuzz(func(t *testing.T, s string) {
		pub, err := parsePublicKey(s)
		if err != nil {
			return
		}
		if _, err := pub.ECDH(); err != nil {
			t.Fatalf("accepted %q as an invalid key: %v", s, err)
		}
		// A compressed point comes back as itself.
		if b, derr := decode(s); derr == nil && len(b) == 33 && !bytes.Equal(compress(t, pub), b) {
			t.Fatalf("%q decompressed to another point", s)
		}
	})
}

func TestParsePublicKey(t *testing.T) {
	var even, odd *ecdsa.PublicKey
	for even == nil || odd == nil {
		k := &newKey(t).PublicKey
		if compress(t, k)[0] == 2 {
			even = k
		} else {
			odd = k
		}
	}
	spki, err := x509.MarshalPKIXPublicKey(even)
	if err != nil {
		t.Fatal(err)
	}
	unc, _ := even.Bytes()
	wrongPrefix := append([]byte{4}, compress(t, even)[1:]...)
	for _, tc := range []struct {
		name string
		in   string
		want *ecdsa.PublicKey
	}{
		{"SPKI, standard base64", base64.StdEncoding.EncodeToString(spki), even},
		{"compressed, even y", encode(compress(t, even)), even},
		{"compressed, odd y", encode(compress(t, odd)), odd},
		{"uncompressed", encode(unc), even},
		{"compressed point off the curve", "ArzBG4Fw5E5XQuOys44QOFrRX-_pm4AYYA1yWPzbx2mM", nil},
		{"33 bytes with prefix 04", encode(wrongPrefix), nil},
		{"SPKI of a P-384 key", encode(p384SPKI(t)), nil},
		{"empty", "", nil},
		{"not base64", "!!", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := parsePublicKey(tc.in)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("accepted: %v", pub)
				}
				return
			}
			if err != nil || !pub.Equal(tc.want) {
				t.Fatalf("got %v, %v", pub, err)
			}
		})
	}
}

func p384SPKI(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGenerateChecksCreatedKey(t *testing.T) {
	csk := newKey(t)
	f, srv := newFakeServer(t, &csk.PublicKey, false)
	w := New(srv.URL, "wallet-1", "hsm", csk, &f.ssk.PublicKey)
	ctx := context.Background()
	if err := w.Register(ctx, []byte("1234")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Authenticate(ctx, []byte("1234")); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.override = func(status int, body []byte) (int, []byte) {
		return status, repayload(t, body, f.ssk, func(r *response) { r.Data = json.RawMessage(`{"created_key":"P-384"}`) })
	}
	f.mu.Unlock()
	if _, err := w.Generate(ctx); err == nil || !strings.Contains(err.Error(), "created_key") {
		t.Fatalf("created_key P-384: %v", err)
	}
}
