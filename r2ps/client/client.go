// Package client is the wallet side of R2PS (docs/protocol.md): it enrols a
// wallet unit's keys and PIN with an activation code, opens PIN sessions
// with OPAQUE and asks the remote WSCD for keys, signatures and ECDH, every
// message end-to-end encrypted and signed.
//
// The PIN never leaves this package in any form the server could test
// offline: it only feeds OPAQUE. Callers should clear their PIN buffers.
//
// The package imports no server code (only r2ps, pin/profile and ecp256 of
// this module) and builds without cgo and for js/wasm; the test in
// internal/walletside keeps it so.
package client

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/ecp256"
	"github.com/wsca/wsca/pin/profile"
	"github.com/wsca/wsca/r2ps"
)

// Error is a failure the server reported: a Table 1 code, inside the
// envelope or as a problem.
type Error struct {
	Code   string
	Status int // HTTP status, or 200 for a failure inside the envelope
}

func (e *Error) Error() string {
	if e.Status != statusOK {
		return fmt.Sprintf("r2ps: server refused the request: %s (HTTP %d)", e.Code, e.Status)
	}
	return "r2ps: server answered " + e.Code
}

// IsCode reports whether err is a server failure with that code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// ServerKeys are the server's public R2PS keys.
type ServerKeys struct {
	Agreement    *ecdsa.PublicKey
	AgreementKID string
	Signing      *ecdsa.PublicKey
	SigningKID   string
}

// Config is a client's identity and where its server is.
type Config struct {
	// URL is the server's base URL; requests go to URL + "/r2ps".
	URL string
	// Transport carries the requests (required): httptransport.New for
	// net/http.
	Transport Transport
	// Unit and Context name the wallet unit and the security context.
	Unit, Context string
	// SigningKey (CSK) signs every request; AgreementKey (CAK) receives
	// 1FA responses.
	SigningKey   *ecdsa.PrivateKey
	AgreementKey *ecdh.PrivateKey
	// Server are the server's keys; FetchServerKeys gets them.
	Server ServerKeys
	// Profile is the OPAQUE profile (zero: the default).
	Profile profile.Profile
	Now     func() time.Time
}

// Client talks to one server as one unit in one context.
type Client struct {
	cfg    Config
	cskKID string
	conf   func() (*pinClient, error)
}

// New checks cfg and returns a client.
func New(cfg Config) (*Client, error) {
	switch {
	case cfg.URL == "" || cfg.Unit == "" || cfg.Context == "":
		return nil, errors.New("client: URL, unit and context are required")
	case cfg.SigningKey == nil || cfg.AgreementKey == nil:
		return nil, errors.New("client: signing and agreement keys are required")
	case cfg.Server.Agreement == nil || cfg.Server.Signing == nil:
		return nil, errors.New("client: server keys are required (FetchServerKeys)")
	case cfg.Transport == nil:
		return nil, ErrNoTransport
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Client{cfg: cfg, cskKID: r2ps.Thumbprint(&cfg.SigningKey.PublicKey)}
	c.conf = func() (*pinClient, error) { return newPINClient(cfg.Profile) }
	return c, nil
}

// ErrNoTransport: a Config or FetchServerKeys was given no Transport.
var ErrNoTransport = errors.New("client: a transport is required")

// FetchServerKeys gets the server's keys from its well-known URL over t.
// Callers that can should pin them instead (compare with a value from a
// trusted channel): fetching trusts the network once.
func FetchServerKeys(ctx context.Context, t Transport, baseURL string) (ServerKeys, error) {
	if t == nil {
		return ServerKeys{}, ErrNoTransport
	}
	resp, err := exchange(ctx, t, &HTTPRequest{Method: "GET", URL: strings.TrimRight(baseURL, "/") + r2ps.KeysPath, MaxResponse: maxKeysResponse})
	if err != nil {
		return ServerKeys{}, err
	}
	if resp.Status != statusOK {
		return ServerKeys{}, fmt.Errorf("client: server keys: HTTP %d", resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(resp.Body, &set); err != nil {
		return ServerKeys{}, fmt.Errorf("client: server keys: %w", err)
	}
	var k ServerKeys
	for _, j := range set.Keys {
		pub, ok := j.Key.(*ecdsa.PublicKey)
		if !ok || r2ps.Thumbprint(pub) != j.KeyID {
			return ServerKeys{}, errors.New("client: server keys: a key is not P-256 or its kid is not its thumbprint")
		}
		switch j.Use {
		case "enc":
			k.Agreement, k.AgreementKID = pub, j.KeyID
		case "sig":
			k.Signing, k.SigningKID = pub, j.KeyID
		}
	}
	if k.Agreement == nil || k.Signing == nil {
		return ServerKeys{}, errors.New("client: server keys: need one enc and one sig key")
	}
	return k, nil
}

// request builds a request payload for typ with data.
func (c *Client) request(typ string, data any) (r2ps.Request, error) {
	raw, err := r2ps.EncodeData(data)
	if err != nil {
		return r2ps.Request{}, err
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return r2ps.Request{}, err
	}
	return r2ps.Request{Version: r2ps.Version, Nonce: nonce, IssuedAt: c.cfg.Now(), Type: typ, Data: raw}, nil
}

// sign makes the request JWS under a protected JWE header.
func (c *Client) sign(req r2ps.Request, protectedHeader string, embed bool) ([]byte, error) {
	req.JWEHash = r2ps.JWEHash(protectedHeader)
	payload, err := r2ps.EncodeRequest(req)
	if err != nil {
		return nil, err
	}
	var jwk *jose.JSONWebKey
	if embed {
		jwk = &jose.JSONWebKey{Key: &c.cfg.SigningKey.PublicKey, KeyID: c.cskKID}
	}
	return r2ps.SignJWS(payload, r2ps.TypRequest, c.cskKID, c.cfg.SigningKey, jwk)
}

// post sends a body and returns the response body, or an *Error for a
// problem answer.
func (c *Client) post(ctx context.Context, body []byte) ([]byte, error) {
	resp, err := exchange(ctx, c.cfg.Transport, &HTTPRequest{Method: "POST", URL: strings.TrimRight(c.cfg.URL, "/") + r2ps.Path,
		ContentType: r2ps.MediaType, Body: body, MaxResponse: r2ps.MaxMessageSize})
	if err != nil {
		return nil, err
	}
	if resp.Status != statusOK {
		var p struct {
			Code string `json:"code"`
		}
		if json.Unmarshal(resp.Body, &p) != nil || !r2ps.IsCode(p.Code) {
			p.Code = r2ps.CodeServerError
		}
		return nil, &Error{Code: p.Code, Status: resp.Status}
	}
	return resp.Body, nil
}

// verifyResponse checks the response JWS with the server's signing key,
// its nonce against the request's, and returns its data; a failure inside
// the envelope becomes an *Error.
func (c *Client) verifyResponse(jws []byte, req r2ps.Request) (json.RawMessage, error) {
	payload, _, err := r2ps.VerifyJWS(jws, r2ps.TypResponse, func(kid string, embedded *jose.JSONWebKey) (*ecdsa.PublicKey, error) {
		if embedded != nil || kid != c.cfg.Server.SigningKID {
			return nil, r2ps.ErrUnknownKey
		}
		return c.cfg.Server.Signing, nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: response: %w", err)
	}
	resp, err := r2ps.DecodeResponse(payload)
	if err != nil {
		return nil, fmt.Errorf("client: response: %w", err)
	}
	if !bytes.Equal(resp.Nonce, req.Nonce) {
		return nil, errors.New("client: response answers another request (nonce)")
	}
	var status struct {
		Success bool   `json:"success"`
		Error   string `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &status); err != nil {
		return nil, fmt.Errorf("client: response data: %w", err)
	}
	if !status.Success {
		if !r2ps.IsCode(status.Error) {
			status.Error = r2ps.CodeServerError
		}
		return nil, &Error{Code: status.Error, Status: statusOK}
	}
	return resp.Data, nil
}

// call1FA sends a 1FA request and decodes the success data into out.
func (c *Client) call1FA(ctx context.Context, typ string, data, out any, embed bool) error {
	req, err := c.request(typ, data)
	if err != nil {
		return err
	}
	serverKey, err := ecdhKey(c.cfg.Server.Agreement)
	if err != nil {
		return err
	}
	body, err := r2ps.SealRequest1FA(func(h string) ([]byte, error) { return c.sign(req, h, embed) },
		serverKey, c.cfg.Server.AgreementKID, c.cfg.Unit, c.cfg.Context, nil)
	if err != nil {
		return err
	}
	resp, err := c.post(ctx, body)
	if err != nil {
		return err
	}
	env, err := r2ps.OpenResponse1FA(resp, c.cfg.AgreementKey)
	if err != nil {
		return fmt.Errorf("client: response: %w", err)
	}
	if env.ClientID != c.cfg.Unit || env.Context != c.cfg.Context {
		return errors.New("client: response for another unit or context")
	}
	raw, err := c.verifyResponse(env.JWS, req)
	if err != nil {
		return err
	}
	return r2ps.DecodeData(raw, out)
}

func ecdhKey(pub *ecdsa.PublicKey) (*ecdh.PublicKey, error) {
	b, err := pub.Bytes()
	if err != nil {
		return nil, err
	}
	return ecp256.ParsePoint(b)
}

// Session is a verified PIN session. Its Key must be kept as secret as the
// device keys; it ends at ExpiresAt.
type Session struct {
	c         *Client
	ID        string
	Key       []byte
	Task      string
	ExpiresAt time.Time
}

// Resume rebuilds a session saved by an earlier process.
func (c *Client) Resume(id string, key []byte, task string, expires time.Time) *Session {
	return &Session{c: c, ID: id, Key: bytes.Clone(key), Task: task, ExpiresAt: expires}
}

// call sends a 2FA request in the session and decodes the data into out.
func (s *Session) call(ctx context.Context, typ string, data, out any) error {
	c := s.c
	req, err := c.request(typ, data)
	if err != nil {
		return err
	}
	jws, err := c.sign(req, r2ps.ProtectedHeader2FA(s.ID), false)
	if err != nil {
		return err
	}
	body, err := r2ps.Seal2FA(jws, s.Key, s.ID, nil)
	if err != nil {
		return err
	}
	resp, err := c.post(ctx, body)
	if err != nil {
		return err
	}
	env, err := r2ps.Open2FA(resp, func(id string) ([]byte, error) {
		if id != s.ID {
			return nil, r2ps.ErrUnknownSession
		}
		return s.Key, nil
	})
	if err != nil {
		return fmt.Errorf("client: response: %w", err)
	}
	raw, err := c.verifyResponse(env.JWS, req)
	if err != nil {
		return err
	}
	if p, ok := out.(*json.RawMessage); ok {
		*p = raw
		return nil
	}
	return r2ps.DecodeData(raw, out)
}

// Call sends any 2FA service type with data given as a JSON object
// (json.RawMessage) or a data type of package r2ps, and returns the success
// data undecoded: for types this package does not model.
func (s *Session) Call(ctx context.Context, typ string, data any) (json.RawMessage, error) {
	var out json.RawMessage
	err := s.call(ctx, typ, data, &out)
	return out, err
}

// Config returns the client's configuration (with its private keys: handle
// it as such).
func (c *Client) Config() Config { return c.cfg }
