// Package dispatch is the server side of R2PS: it authenticates each
// request, enforces freshness and the attempt policy, runs the service type
// and seals the answer, for the strict profile of draft-santesson-r2ps-00
// and for the go-r2ps-service compat profile (docs/protocol.md).
//
// The order of checks is the security argument: the envelope is opened and
// the JWS verified against the unit's registered client signing key (CSK)
// before anything else; then jwe_hash, iat and the nonce (recorded in the
// store, so a replay is refused by every instance); only then can a request
// reach the PIN (and spend an attempt) or a key. A request nobody can answer
// securely (undecryptable, unauthenticated, replayed) gets a plain RFC 9457
// problem; everything after authentication is answered inside the envelope.
package dispatch

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// Defaults of Config.
const (
	DefaultMaxAge          = 5 * time.Minute
	DefaultMaxSkew         = time.Minute
	DefaultSessionDuration = 5 * time.Minute
	DefaultMaxSession      = time.Hour
)

// Config assembles a Dispatcher.
type Config struct {
	Keys  *wscd.Service
	PIN   *pin.Server
	Store *store.Store
	// WSCD enables the key service types (the wscd role). Session and
	// registration types are served in every role.
	WSCD bool
	// MaxAge and MaxSkew bound a request's iat in the past and the future.
	MaxAge, MaxSkew time.Duration
	// SessionDuration is the default session length; MaxSession caps what
	// a client may ask for.
	SessionDuration, MaxSession time.Duration
	// TaskContexts lists the contexts where sign_ecdsa needs a session
	// bound to a sign: task (sole control, SCAL2).
	TaskContexts []string
	Now          func() time.Time
	Logger       *slog.Logger
}

// Dispatcher serves R2PS requests. It is safe for concurrent use.
type Dispatcher struct {
	cfg      Config
	log      *slog.Logger
	ssk      wscd.ServerKey // signs responses
	agree    wscd.ServerKey // opens 1FA requests
	sskKID   string         // RFC 7638 thumbprints
	agreeKID string
}

// New loads (or creates) the server's signing and agreement keys.
func New(ctx context.Context, cfg Config) (*Dispatcher, error) {
	if cfg.Keys == nil || cfg.PIN == nil || cfg.Store == nil {
		return nil, errors.New("dispatch: keys, PIN server and store are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.MaxAge, DefaultMaxAge)
	def(&cfg.MaxSkew, DefaultMaxSkew)
	def(&cfg.SessionDuration, DefaultSessionDuration)
	def(&cfg.MaxSession, DefaultMaxSession)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d := &Dispatcher{cfg: cfg, log: cfg.Logger}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if d.ssk, err = cfg.Keys.ServerKey(ctx, wscd.PurposeR2PSSigning); err != nil {
		return nil, fmt.Errorf("dispatch: signing key: %w", err)
	}
	if d.agree, err = cfg.Keys.ServerKey(ctx, wscd.PurposeR2PSAgreement); err != nil {
		return nil, fmt.Errorf("dispatch: agreement key: %w", err)
	}
	d.sskKID, d.agreeKID = r2ps.Thumbprint(d.ssk.Public), r2ps.Thumbprint(d.agree.Public)
	return d, nil
}

// Keys returns the server's public keys as a JWKS: the agreement key
// (use enc, for 1FA requests) and the signing key (use sig, for responses).
func (d *Dispatcher) Keys() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: d.agree.Public, KeyID: d.agreeKID, Algorithm: "ECDH-ES", Use: "enc"},
		{Key: d.ssk.Public, KeyID: d.sskKID, Algorithm: r2ps.AlgES256, Use: "sig"},
	}}
}

// Reply is what the HTTP layer sends.
type Reply struct {
	Status      int
	ContentType string
	Body        []byte
}

// Media types of replies.
const (
	MediaJOSE    = "application/jose"
	MediaProblem = "application/problem+json"
	MediaJSON    = "application/json"
)

// caller is an authenticated request: who sent it and what it asks.
type caller struct {
	unit, context string
	req           r2ps.Request
	// csk is the key the request was verified with; embedded says it came
	// in the JWS header (only 2fa_registration may).
	csk      *ecdsa.PublicKey
	cskKID   string
	embedded bool
	session  *pin.Session // 2FA requests
	compat   *r2ps.CompatMeta
}

// Serve answers one request body.
func (d *Dispatcher) Serve(ctx context.Context, body []byte) Reply {
	mode, _, err := r2ps.EnvelopeMode(body)
	if err == nil {
		switch mode {
		case r2ps.Mode1FA:
			return d.serve1FA(ctx, body)
		case r2ps.Mode2FA:
			return d.serve2FA(ctx, body)
		}
	}
	if strings.Count(string(body), ".") == 2 {
		return d.serveCompat(ctx, body)
	}
	return d.problem(ctx, fmt.Errorf("%w: not a JWE or JWS", r2ps.ErrMalformed))
}

// problem answers a request that could not be authenticated.
func (d *Dispatcher) problem(ctx context.Context, err error) Reply {
	code := r2ps.Code(err)
	d.log.InfoContext(ctx, "r2ps request refused", "code", code, "err", err)
	b, _ := json.Marshal(map[string]any{
		"type": "urn:wsca:r2ps:" + code, "title": strings.ToLower(strings.ReplaceAll(code, "_", " ")),
		"status": r2ps.HTTPStatus(code), "code": code,
	})
	return Reply{Status: r2ps.HTTPStatus(code), ContentType: MediaProblem, Body: b}
}

// lookupCSK returns the registered signing key with that thumbprint if it
// belongs to unit.
func (d *Dispatcher) lookupCSK(ctx context.Context, kid, unit string) (*ecdsa.PublicKey, error) {
	ck, err := d.cfg.Store.GetClientKey(ctx, kid)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
			return nil, r2ps.ErrUnknownKey
		}
		return nil, err
	}
	if ck.UnitID != unit || ck.Usage != store.UsageSign {
		return nil, r2ps.ErrUnknownKey
	}
	pub, err := device.PublicKeyFromBytes(ck.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("dispatch: stored client key: %w", err)
	}
	return pub, nil
}

// verify checks the JWS against the unit's CSK, or, only when allowEmbedded,
// against a key embedded in its header whose thumbprint is its kid.
func (d *Dispatcher) verify(ctx context.Context, jws []byte, unit string) (caller, []byte, error) {
	c := caller{unit: unit}
	payload, hdr, err := r2ps.VerifyJWS(jws, r2ps.TypRequest, func(kid string, embedded *jose.JSONWebKey) (*ecdsa.PublicKey, error) {
		if embedded != nil {
			pub, ok := embedded.Key.(*ecdsa.PublicKey)
			if !ok || r2ps.Thumbprint(pub) != kid {
				return nil, r2ps.ErrUnknownKey
			}
			c.embedded = true
			return pub, nil
		}
		return d.lookupCSK(ctx, kid, unit)
	})
	if err != nil {
		return c, nil, err
	}
	c.cskKID = hdr.KID
	if hdr.JWK != nil {
		c.csk, _ = hdr.JWK.Key.(*ecdsa.PublicKey)
	}
	return c, payload, nil
}

// fresh enforces the iat window and records the nonce (§4.2).
func (d *Dispatcher) fresh(ctx context.Context, c caller) error {
	now := d.cfg.Now()
	iat := c.req.IssuedAt
	if now.Sub(iat) > d.cfg.MaxAge || iat.Sub(now) > d.cfg.MaxSkew {
		return &r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "iat outside the accepted window"}
	}
	h := sha256.New()
	h.Write([]byte("wsca-r2ps-nonce-v1\x00" + c.unit + "\x00" + c.context + "\x00"))
	h.Write(c.req.Nonce)
	err := d.cfg.Store.UseNonce(ctx, h.Sum(nil), now.Add(d.cfg.MaxAge+d.cfg.MaxSkew))
	if errors.Is(err, store.ErrExists) {
		return &r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "replayed nonce"}
	}
	return err
}

// result is a handler's outcome: data to answer with, or an error to map
// to a code inside the envelope.
type result struct {
	data any
	err  error
}

// failure maps an error after authentication to its code; the cause goes
// to the log only.
func (d *Dispatcher) failure(ctx context.Context, c caller, err error) r2ps.Failure {
	code := codeOf(err)
	d.log.Log(ctx, logLevel(code), "r2ps operation failed", "unit", c.unit, "context", c.context, "type", c.req.Type, "code", code, "err", err)
	return r2ps.Failure{Success: false, Error: code}
}

// logLevel is Error for our own faults and Info for the client's.
func logLevel(code string) slog.Level {
	if code == r2ps.CodeServerError || code == r2ps.CodeTryLater {
		return slog.LevelError
	}
	return slog.LevelInfo
}

func codeOf(err error) string {
	var re *r2ps.Error
	switch {
	case errors.As(err, &re):
		return re.Code
	case errors.Is(err, pin.ErrWrongPIN), errors.Is(err, pin.ErrNoSession):
		return r2ps.CodeUnauthorized
	case errors.Is(err, pin.ErrLocked), errors.Is(err, pin.ErrTooSoon), errors.Is(err, wscd.ErrUnitNotActive):
		return r2ps.CodeAccessDenied
	case errors.Is(err, pin.ErrNoRegistration):
		return r2ps.CodeIllegalState
	case errors.Is(err, pin.ErrMalformed), errors.Is(err, wscd.ErrInvalidInput), errors.Is(err, wscd.ErrKeyNotFound):
		return r2ps.CodeIllegalRequestData
	case errors.Is(err, wscd.ErrUnavailable):
		return r2ps.CodeTryLater
	}
	return r2ps.CodeServerError
}

// respond signs the response payload with the SSK.
func (d *Dispatcher) respond(ctx context.Context, c caller, data any) ([]byte, error) {
	raw, err := r2ps.EncodeData(data)
	if err != nil {
		return nil, err
	}
	payload, err := r2ps.EncodeResponse(r2ps.Response{Version: r2ps.Version, Nonce: c.req.Nonce, IssuedAt: d.cfg.Now(), Data: raw})
	if err != nil {
		return nil, err
	}
	return r2ps.SignJWS(payload, r2ps.TypResponse, d.sskKID, d.cfg.Keys.Signer(ctx, d.ssk), nil)
}

func (d *Dispatcher) serve1FA(ctx context.Context, body []byte) Reply {
	env, err := r2ps.Open1FA(body, func(epk *ecdh.PublicKey) ([]byte, error) {
		return d.cfg.Keys.ServerECDH(ctx, d.agree, epk)
	})
	if err != nil {
		return d.problem(ctx, err)
	}
	if env.KID != d.agreeKID {
		return d.problem(ctx, r2ps.ErrUnknownKey)
	}
	c, payload, err := d.verify(ctx, env.JWS, env.ClientID)
	if err != nil {
		return d.problem(ctx, err)
	}
	c.context = env.Context
	if c.req, err = r2ps.DecodeRequest(payload); err != nil {
		return d.problem(ctx, err)
	}
	if err := r2ps.CheckJWEHash(c.req, env.ProtectedHeader); err != nil {
		return d.problem(ctx, err)
	}
	if c.embedded != (c.req.Type == r2ps.Type2FARegistration) {
		return d.problem(ctx, fmt.Errorf("%w: a self-signed request must be a 2fa_registration, and one must be", r2ps.ErrUnknownKey))
	}
	if err := d.fresh(ctx, c); err != nil {
		return d.problem(ctx, err)
	}
	res, cak := d.dispatch1FA(ctx, c)
	if cak == nil {
		// Without the client's agreement key there is no way to answer
		// confidentially: refuse in the clear, saying nothing more (and
		// signing nothing).
		return d.problem(ctx, &r2ps.Error{Code: codeOrUnauthorized(res), Msg: "no agreement key for the client", Err: res.err})
	}
	if res.err != nil {
		res.data = d.failure(ctx, c, res.err)
	}
	jws, err := d.respond(ctx, c, res.data)
	if err != nil {
		return d.problem(ctx, err)
	}
	out, err := r2ps.SealResponse1FA(jws, cak.pub, cak.kid, c.unit, c.context, nil)
	if err != nil {
		return d.problem(ctx, err)
	}
	return Reply{Status: http.StatusOK, ContentType: MediaJOSE, Body: out}
}

func codeOrUnauthorized(res result) string {
	if res.err != nil {
		return codeOf(res.err)
	}
	return r2ps.CodeUnauthorized
}

func (d *Dispatcher) serve2FA(ctx context.Context, body []byte) Reply {
	var se pin.Session
	env, err := r2ps.Open2FA(body, func(sessionID string) ([]byte, error) {
		s, err := d.cfg.PIN.Lookup(ctx, sessionID)
		if errors.Is(err, pin.ErrNoSession) {
			return nil, r2ps.ErrUnknownSession
		}
		if err != nil {
			return nil, err
		}
		se = s
		return s.Key, nil
	})
	if err != nil {
		return d.problem(ctx, err)
	}
	c, payload, err := d.verify(ctx, env.JWS, se.Unit)
	if err != nil {
		return d.problem(ctx, err)
	}
	if c.embedded {
		return d.problem(ctx, r2ps.ErrUnknownKey)
	}
	c.context, c.session = se.Context, &se
	if c.req, err = r2ps.DecodeRequest(payload); err != nil {
		return d.problem(ctx, err)
	}
	if err := r2ps.CheckJWEHash(c.req, env.ProtectedHeader); err != nil {
		return d.problem(ctx, err)
	}
	if err := d.fresh(ctx, c); err != nil {
		return d.problem(ctx, err)
	}
	res := d.dispatch2FA(ctx, c)
	if res.err != nil {
		res.data = d.failure(ctx, c, res.err)
	}
	jws, err := d.respond(ctx, c, res.data)
	if err != nil {
		return d.problem(ctx, err)
	}
	out, err := r2ps.Seal2FA(jws, se.Key, se.ID, nil)
	if err != nil {
		return d.problem(ctx, err)
	}
	return Reply{Status: http.StatusOK, ContentType: MediaJOSE, Body: out}
}

// mode refuses a type in the wrong protection mode.
func modeError(typ string, have r2ps.Mode) error {
	want := r2ps.RequiredMode(typ)
	if want == r2ps.ModeNone {
		return r2ps.ErrUnsupportedType
	}
	if want != have {
		return &r2ps.Error{Code: r2ps.CodeIllegalState, Msg: typ + " needs " + want.String()}
	}
	return nil
}

// taskAllows applies a session's task to a request (docs/protocol.md §6).
func (d *Dispatcher) taskAllows(c caller, typ string, digest []byte) error {
	task := c.session.Task
	denied := &r2ps.Error{Code: r2ps.CodeAccessDenied, Msg: "the session's task does not allow this"}
	switch {
	case task == r2ps.Task2FAUpdate:
		if typ != r2ps.Type2FAUpdate {
			return denied
		}
	case strings.HasPrefix(task, r2ps.TaskSignPrefix):
		if typ == r2ps.TypeListKeys {
			return nil
		}
		if typ != r2ps.TypeSignECDSA {
			return denied
		}
		hashes := strings.Split(strings.TrimPrefix(task, r2ps.TaskSignPrefix), ",")
		if !slices.Contains(hashes, hexLower(digest)) {
			return denied
		}
	case typ == r2ps.Type2FAUpdate:
		return denied
	case typ == r2ps.TypeSignECDSA && slices.Contains(d.cfg.TaskContexts, c.context):
		return &r2ps.Error{Code: r2ps.CodeAccessDenied, Msg: "this context needs a sign: task"}
	}
	return nil
}
