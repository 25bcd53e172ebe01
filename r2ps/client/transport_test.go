package client_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
)

// fakeTransport records the requests and answers with resp or err.
type fakeTransport struct {
	reqs []client.HTTPRequest
	resp *client.HTTPResponse
	err  error
}

func (f *fakeTransport) Do(_ context.Context, r *client.HTTPRequest) (*client.HTTPResponse, error) {
	f.reqs = append(f.reqs, *r)
	return f.resp, f.err
}

func p256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keySet is a server's key document.
func keySet(t *testing.T) []byte {
	t.Helper()
	enc, sig := p256(t), p256(t)
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &enc.PublicKey, KeyID: r2ps.Thumbprint(&enc.PublicKey), Use: "enc", Algorithm: "ECDH-ES"},
		{Key: &sig.PublicKey, KeyID: r2ps.Thumbprint(&sig.PublicKey), Use: "sig", Algorithm: "ES256"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNoTransport(t *testing.T) {
	if _, err := client.FetchServerKeys(t.Context(), nil, "http://h"); !errors.Is(err, client.ErrNoTransport) {
		t.Errorf("FetchServerKeys without a transport: %v", err)
	}
	srv := p256(t)
	cak, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := client.Config{URL: "http://h", Unit: "u", Context: "hsm", SigningKey: p256(t), AgreementKey: cak,
		Server: client.ServerKeys{Agreement: &srv.PublicKey, AgreementKID: "a", Signing: &srv.PublicKey, SigningKID: "s"}}
	if _, err := client.New(cfg); !errors.Is(err, client.ErrNoTransport) {
		t.Errorf("New without a transport: %v", err)
	}
	cfg.Transport = &fakeTransport{}
	if _, err := client.New(cfg); err != nil {
		t.Errorf("New with a transport: %v", err)
	}
}

func TestFetchServerKeysTransport(t *testing.T) {
	down := errors.New("network down")
	for _, tc := range []struct {
		name      string
		resp      *client.HTTPResponse
		err       error
		transport bool // a *TransportError
		ok        bool
	}{
		{"ok", &client.HTTPResponse{Status: 200, Body: keySet(t)}, nil, false, true},
		{"not found", &client.HTTPResponse{Status: 404, Body: keySet(t)}, nil, false, false},
		{"trailing data", &client.HTTPResponse{Status: 200, Body: append(keySet(t), "{}"...)}, nil, false, false},
		{"network", nil, down, true, false},
		{"too large", nil, client.ErrResponseTooLarge, true, false},
		{"no response", nil, nil, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeTransport{resp: tc.resp, err: tc.err}
			keys, err := client.FetchServerKeys(t.Context(), f, "http://h/base/")
			if tc.ok != (err == nil) || tc.ok && (keys.Agreement == nil || keys.Signing == nil) {
				t.Fatalf("got %v", err)
			}
			var te *client.TransportError
			if tc.transport != errors.As(err, &te) || tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("error %v: a transport error %v, want %v", err, errors.As(err, &te), tc.transport)
			}
			want := client.HTTPRequest{Method: "GET", URL: "http://h/base" + r2ps.KeysPath, MaxResponse: 1 << 16}
			if len(f.reqs) != 1 || f.reqs[0].Method != want.Method || f.reqs[0].URL != want.URL ||
				f.reqs[0].MaxResponse != want.MaxResponse || f.reqs[0].Body != nil {
				t.Errorf("requests %+v, want %+v", f.reqs, want)
			}
		})
	}
}

// A request in a session: what goes to the transport, and how its failures
// and a server's problem answers come back.
func TestPostTransport(t *testing.T) {
	srv := p256(t)
	cak, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	down := errors.New("network down")
	for _, tc := range []struct {
		name string
		resp *client.HTTPResponse
		err  error
		code string // a *client.Error with this code and the status
	}{
		{"network", nil, down, ""},
		{"too large", nil, client.ErrResponseTooLarge, ""},
		{"no response", nil, nil, ""},
		{"problem", &client.HTTPResponse{Status: 401, Body: []byte(`{"code":"` + r2ps.CodeUnauthorized + `"}`)}, nil, r2ps.CodeUnauthorized},
		{"unknown code", &client.HTTPResponse{Status: 400, Body: []byte(`{"code":"NOPE"}`)}, nil, r2ps.CodeServerError},
		{"no problem", &client.HTTPResponse{Status: 502, Body: []byte(`<html>`)}, nil, r2ps.CodeServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeTransport{resp: tc.resp, err: tc.err}
			c, err := client.New(client.Config{URL: "http://h/", Transport: f, Unit: "u", Context: "hsm", SigningKey: p256(t),
				AgreementKey: cak, Server: client.ServerKeys{Agreement: &srv.PublicKey, AgreementKID: "a", Signing: &srv.PublicKey, SigningKID: "s"}})
			if err != nil {
				t.Fatal(err)
			}
			s := c.Resume("sid", make([]byte, 32), "", time.Now().Add(time.Hour))
			_, err = s.Generate(t.Context())
			var ce *client.Error
			var te *client.TransportError
			switch {
			case tc.code == "":
				if !errors.As(err, &te) || tc.err != nil && !errors.Is(err, tc.err) || errors.As(err, &ce) {
					t.Errorf("got %v, want a transport error wrapping %v", err, tc.err)
				}
			case !errors.As(err, &ce) || ce.Code != tc.code || ce.Status != tc.resp.Status || errors.As(err, &te):
				t.Errorf("got %v, want code %s", err, tc.code)
			}
			if len(f.reqs) != 1 {
				t.Fatalf("%d requests", len(f.reqs))
			}
			r := f.reqs[0]
			if r.Method != "POST" || r.URL != "http://h"+r2ps.Path || r.ContentType != r2ps.MediaType ||
				r.MaxResponse != r2ps.MaxMessageSize || len(r.Body) == 0 {
				t.Errorf("request %s %s %s %d, %d bytes", r.Method, r.URL, r.ContentType, r.MaxResponse, len(r.Body))
			}
		})
	}
}

func TestErrorMessages(t *testing.T) {
	if got := (&client.Error{Code: "X", Status: 200}).Error(); got != "r2ps: server answered X" {
		t.Error(got)
	}
	if got := (&client.Error{Code: "X", Status: 401}).Error(); got != "r2ps: server refused the request: X (HTTP 401)" {
		t.Error(got)
	}
	if got := (&client.TransportError{Err: errors.New("down")}).Error(); got != "client: transport: down" {
		t.Error(got)
	}
}
