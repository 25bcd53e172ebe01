// Package dispatch is the server side of R2PS: it authenticates each
// request, enforces freshness and the attempt policy, runs the service type
// and seals the answer, for the strict profile of draft-santesson-r2ps-00
// and, when enabled, the go-r2ps-service compat profile (docs/protocol.md).
//
// Every request passes one authentication path (auth.go): the envelope is
// opened, the JWS verified with a key the type's policy allows (policy.go:
// the unit's registered, MAC-checked client signing key, or for a
// registration a key in the JWS header), the payload decoded, jwe_hash
// compared, the unit's state checked and iat and nonce made fresh (the
// nonce recorded in the store, so a replay is refused by every instance).
// Only the resulting *request reaches a handler, the PIN (and so an
// attempt) or a key. A request that fails before it is authenticated and
// fresh gets a plain RFC 9457 problem; everything after is answered inside
// the envelope.
package dispatch

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wsca"
	"github.com/wsca/wsca/wscd"
)

// Defaults of Config.
const (
	DefaultMaxAge          = 5 * time.Minute
	DefaultMaxSkew         = time.Minute
	DefaultSessionDuration = 5 * time.Minute
	DefaultMaxSession      = time.Hour
	// DefaultKeyQuota is the number of keys a unit may hold.
	DefaultKeyQuota = 256
)

// Compat says whether and how the go-r2ps-service profile is served.
type Compat uint8

const (
	// CompatOff serves the strict profile only (the default).
	CompatOff Compat = iota
	// CompatSessionJWE serves go-r2ps-service bodies; 2FA requests must
	// come in its specified 2FA JWE (A256KW under a KEK derived from the
	// OPAQUE session key), which proves the session key.
	CompatSessionJWE
	// CompatBearer also serves 2FA requests as bare JWS naming the session
	// id, as go-r2ps-service's pkg/client sends them: the session id is
	// then a bearer secret, and a stolen CSK plus a session id is enough
	// (docs/protocol.md §8 says exactly what this weakens).
	CompatBearer
)

// ParseCompat reads the --compat setting: off, jwe or bearer.
func ParseCompat(s string) (Compat, error) {
	switch s {
	case "", "off", "false":
		return CompatOff, nil
	case "jwe", "on", "true":
		return CompatSessionJWE, nil
	case "bearer":
		return CompatBearer, nil
	}
	return CompatOff, fmt.Errorf("dispatch: compat %q: want off, jwe or bearer", s)
}

func (c Compat) String() string {
	switch c {
	case CompatSessionJWE:
		return "jwe"
	case CompatBearer:
		return "bearer"
	}
	return "off"
}

// ResponseKey says where the key that signs R2PS responses (the SSK) lives.
type ResponseKey uint8

const (
	// ResponseKeySealed: a P-256 key in memory, kept in the store sealed by
	// the HSM-derived sealing key and shared by all instances (the
	// default). Responses are signed without an HSM call; forging one
	// needs the server's memory, or the HSM and the store together.
	ResponseKeySealed ResponseKey = iota
	// ResponseKeyHSM: a key generated on and never leaving the HSM; every
	// response costs one more HSM signature.
	ResponseKeyHSM
)

// ParseResponseKey reads the --response-key setting: sealed or hsm.
func ParseResponseKey(s string) (ResponseKey, error) {
	switch s {
	case "", "sealed":
		return ResponseKeySealed, nil
	case "hsm":
		return ResponseKeyHSM, nil
	}
	return ResponseKeySealed, fmt.Errorf("dispatch: response key %q: want sealed or hsm", s)
}

func (k ResponseKey) String() string {
	if k == ResponseKeyHSM {
		return "hsm"
	}
	return "sealed"
}

// Store is what the dispatcher needs of the store.
type Store interface {
	GetClientKey(ctx context.Context, kid string) (store.ClientKey, error)
	GetUnitClientKey(ctx context.Context, unitID string, usage store.KeyUsage) (store.ClientKey, error)
	HasOutstandingCode(ctx context.Context, unitID string, now time.Time) (bool, error)
	CountKeys(ctx context.Context, unitID string) (int, error)
	UseNonce(ctx context.Context, nonceHash []byte, expiresAt time.Time) error
	UseNonceForKey(ctx context.Context, nonceHash []byte, expiresAt time.Time, kid string) (store.KeyAccess, error)
	UseNonceInSessionEvent(ctx context.Context, nonceHash []byte, expiresAt time.Time, idHash []byte, now time.Time, kid string, leaf []byte) (store.SessionUse, error)
	Enrol(ctx context.Context, e store.Enrolment) (store.CodePurpose, error)
	ReplacePINRecord(ctx context.Context, unitID, pinContext string, r store.PINRecord, now time.Time) error
	GetPINRecord(ctx context.Context, unitID, pinContext string) (store.PINRecord, error)
}

// Config assembles a Dispatcher.
type Config struct {
	Keys       *wscd.Keys
	ServerKeys *wscd.ServerKeys
	PIN        *pin.Server
	Store      Store
	// WSCD enables the key service types (the wscd role). Session and
	// registration types are served in every role.
	WSCD bool
	// WSCA enables the WSCA service types (the wsca role): Units and
	// Pseudonyms are then required.
	WSCA       bool
	Units      *wscd.Units
	Pseudonyms *wsca.Pseudonyms
	// Attestations issues key and wallet instance attestations and proofs
	// of association; nil leaves those types unserved.
	Attestations *wsca.Attestations
	// SECDSA serves the SECDSA types in the wscd role; nil leaves them
	// unserved.
	SECDSA *wscd.SECDSA
	// ClientKeyMAC, if set, checks client keys' MACs instead of the
	// ServerKeys' sealer: the share sealer on a WSCA-only instance, whose
	// store reads the share MACs (docs/wsca.md).
	ClientKeyMAC wscd.MACer
	// Share, if set, is the share key of split WSCD/WSCA roles: enrolled
	// client keys carry their MAC under it too (docs/wsca.md).
	Share *wscd.Share
	// Statuses is told when statuses change (a unit suspended or revoked),
	// so that the status lists are republished soon; may be nil.
	Statuses interface{ Notify() }
	// Assurance is the wallet-key device's configured assurance, which
	// wallet_unit_info reports (never more than configured); Published,
	// if set, replaces it on a WSCA-only instance (the assurance the WSCD
	// published under the share key).
	Assurance device.Assurance
	Published func(context.Context) (device.Assurance, error)
	// Compat enables the go-r2ps-service profile.
	Compat Compat
	// Evidence, if set, records enrolments, and a signature's event is
	// appended with its replay check's nonce when only the device can
	// still refuse it (UseNonceInSessionEvent), followed by a
	// signature_failed event if it does; the key service records the rest.
	Evidence wscd.Recorder
	// MaxAge and MaxSkew bound a request's iat in the past and the future.
	MaxAge, MaxSkew time.Duration
	// SessionDuration is the default session length; MaxSession caps what
	// a client may ask for.
	SessionDuration, MaxSession time.Duration
	// TaskContexts lists the contexts where sign_ecdsa needs a session
	// bound to a sign: task (sole control, SCAL2); a key made in such a
	// context needs one wherever it is used.
	TaskContexts []string
	// KeyQuota is the number of keys a unit may hold (0: DefaultKeyQuota).
	KeyQuota int
	// ResponseKey says where the response-signing key lives.
	ResponseKey ResponseKey
	// Registerer, if set, receives the dispatcher's metrics.
	Registerer prometheus.Registerer
	Now        func() time.Time
	Logger     *slog.Logger
}

// Dispatcher serves R2PS requests. It is safe for concurrent use.
type Dispatcher struct {
	cfg      Config
	log      *slog.Logger
	metrics  *metrics
	ssk      wscd.ServerKey // signs responses when ResponseKeyHSM
	sskSoft  *ecdsa.PrivateKey
	sskPub   *ecdsa.PublicKey
	agree    wscd.ServerKey // opens 1FA requests
	sskKID   string         // RFC 7638 thumbprints
	agreeKID string
	// respHeader is the protected header of every response JWS, encoded
	// once for the SSK.
	respHeader r2ps.FixedJWSHeader
	// sealer MACs client keys (wscd.ClientKeyMAC), under the HSM-derived
	// key of ServerKeys, or under the share key on a WSCA-only instance
	// (Config.ClientKeyMAC).
	sealer wscd.MACer
	// canLogin: the PIN server runs OPAQUE (not a WSCA-only instance).
	canLogin bool
	// served lists the types served, for wallet_unit_info.
	served []string
}

// New loads (or creates) the server's signing and agreement keys.
func New(ctx context.Context, cfg Config) (*Dispatcher, error) {
	if cfg.ServerKeys == nil || cfg.PIN == nil || cfg.Store == nil || cfg.WSCD && cfg.Keys == nil {
		return nil, errors.New("dispatch: server keys, PIN server, store and (for the wscd role) keys are required")
	}
	if cfg.WSCA && (cfg.Units == nil || cfg.Pseudonyms == nil) {
		return nil, errors.New("dispatch: the wsca role needs units and pseudonyms")
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
	if cfg.KeyQuota <= 0 {
		cfg.KeyQuota = DefaultKeyQuota
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d := &Dispatcher{cfg: cfg, log: cfg.Logger}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if d.metrics, err = newMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	if cfg.ClientKeyMAC != nil {
		d.sealer = cfg.ClientKeyMAC
	} else if d.sealer, err = cfg.ServerKeys.Sealer(ctx); err != nil {
		return nil, fmt.Errorf("dispatch: sealer: %w", err)
	}
	d.canLogin = cfg.PIN.CanLogin()
	d.served = d.servedTypes()
	if cfg.ResponseKey == ResponseKeyHSM {
		if d.ssk, err = cfg.ServerKeys.Key(ctx, wscd.PurposeR2PSSigning); err != nil {
			return nil, fmt.Errorf("dispatch: signing key: %w", err)
		}
		d.sskPub = d.ssk.Public
	} else {
		if d.sskSoft, err = cfg.ServerKeys.SealedSigningKey(ctx, wscd.PurposeR2PSSigningSealed); err != nil {
			return nil, fmt.Errorf("dispatch: signing key: %w", err)
		}
		d.sskPub = &d.sskSoft.PublicKey
	}
	if d.agree, err = cfg.ServerKeys.Key(ctx, wscd.PurposeR2PSAgreement); err != nil {
		return nil, fmt.Errorf("dispatch: agreement key: %w", err)
	}
	d.sskKID, d.agreeKID = r2ps.Thumbprint(d.sskPub), r2ps.Thumbprint(d.agree.Public)
	if d.respHeader, err = r2ps.NewFixedJWSHeader(r2ps.TypResponse, d.sskKID); err != nil {
		return nil, fmt.Errorf("dispatch: response header: %w", err)
	}
	return d, nil
}

// Keys returns the server's public keys as a JWKS: the agreement key
// (use enc, for 1FA requests) and the signing key (use sig, for responses).
func (d *Dispatcher) Keys() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: d.agree.Public, KeyID: d.agreeKID, Algorithm: "ECDH-ES", Use: "enc"},
		{Key: d.sskPub, KeyID: d.sskKID, Algorithm: r2ps.AlgES256, Use: "sig"},
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

type requestIDKey struct{}

// WithRequestID returns ctx carrying the HTTP layer's request id, which
// every log line of the request then names.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// logger returns the logger with the request id of ctx, if any.
func (d *Dispatcher) logger(ctx context.Context) *slog.Logger {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok && id != "" {
		return d.log.With("request_id", id)
	}
	return d.log
}

// Serve answers one request body. The body's kind is told by counting its
// dots (r2ps.Classify); a JWE's protected header is decoded once, and the
// parse routes and opens it.
func (d *Dispatcher) Serve(ctx context.Context, body []byte) Reply {
	kind, err := r2ps.Classify(body)
	if err != nil {
		return d.problem(ctx, "", err)
	}
	switch {
	case kind == r2ps.KindJWE:
		jwe, err := r2ps.ParseJWE(body)
		if err != nil {
			// go-r2ps-service's 2FA JWE (A256KW) is no strict JWE: only a
			// body the strict parse refuses is tried as one.
			if d.cfg.Compat != CompatOff {
				if _, perr := r2ps.PeekCompat2FA(body); perr == nil {
					return d.serveCompatJWE(ctx, body)
				}
			}
			return d.problem(ctx, "", err)
		}
		var r *request
		var ref *refusal
		if jwe.Mode() == r2ps.Mode1FA {
			r, ref = d.authenticate1FA(ctx, jwe)
		} else {
			r, ref = d.authenticate2FA(ctx, jwe)
		}
		return d.serveStrict(ctx, r, ref)
	case kind == r2ps.KindJWS && d.cfg.Compat != CompatOff:
		return d.serveCompat(ctx, body)
	}
	return d.problem(ctx, "", fmt.Errorf("%w: not an R2PS JWE", r2ps.ErrMalformed))
}

// serveStrict answers a strict-profile request: a refusal before
// authentication as a problem, anything else inside the envelope.
func (d *Dispatcher) serveStrict(ctx context.Context, r *request, ref *refusal) Reply {
	if ref != nil && ref.before {
		typ := ""
		if r != nil {
			typ = r.req.Type
		}
		return d.problem(ctx, typ, ref.err)
	}
	var res result
	var to *cak
	if ref != nil {
		res = result{err: ref.err}
	} else {
		res, to = d.handle(ctx, r)
	}
	if r.mode == r2ps.Mode1FA {
		if to == nil && r.cak != nil {
			to = d.checkedCAK(ctx, *r.cak, r.unit)
		}
		if to == nil && r.cak == nil && r.selfSigned {
			to = d.registeredCAK(ctx, r.unit)
		}
		if to == nil {
			// Without the client's agreement key there is no way to answer
			// confidentially: refuse in the clear, saying nothing more.
			return d.problem(ctx, r.req.Type, &r2ps.Error{Code: codeOrUnauthorized(res), Msg: "no agreement key for the client", Err: res.err})
		}
	}
	if res.err != nil {
		res.data = d.failure(ctx, r, res.err)
	} else {
		d.metrics.outcome(r.profile, r.req.Type, "OK")
	}
	jws, err := d.respond(ctx, r, res.data)
	if err != nil {
		return d.problem(ctx, r.req.Type, err)
	}
	var out []byte
	if r.mode == r2ps.Mode1FA {
		out, err = r2ps.SealResponse1FA(jws, to.pub, to.kid, r.unit, r.context, nil)
	} else {
		out, err = r2ps.Seal2FA(jws, r.session.Key, r.session.ID, nil)
	}
	if err != nil {
		return d.problem(ctx, r.req.Type, err)
	}
	return Reply{Status: http.StatusOK, ContentType: MediaJOSE, Body: out}
}

// handle runs an authenticated request and says, for a registration, which
// key to answer to.
func (d *Dispatcher) handle(ctx context.Context, r *request) (result, *cak) {
	switch r.req.Type {
	case r2ps.Type2FARegistration, r2ps.TypeCreateSession, r2ps.Type2FAUpdate:
		var tr r2ps.TFARequest
		if err := r2ps.DecodeData(r.req.Data, &tr); err != nil {
			return result{err: err}, nil
		}
		if tr.Protocol != r2ps.ProtocolOPAQUE {
			return result{err: &r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "only the opaque protocol is served"}}, nil
		}
		switch r.req.Type {
		case r2ps.Type2FARegistration:
			var to *cak
			if tr.CAK != nil {
				var err error
				if to, err = cakFromJWK(tr.CAK); err != nil {
					return result{err: err}, nil
				}
			} else if r.profile == ProfileStrict {
				return result{err: fmt.Errorf("%w: a registration must carry its cak", r2ps.ErrMalformed)}, nil
			}
			return d.register(ctx, r, tr, to), to
		case r2ps.TypeCreateSession:
			return d.createSession(ctx, r, tr), nil
		default:
			return d.update(ctx, r, tr), nil
		}
	}
	if r.pol.secdsa {
		return d.secdsaOperation(ctx, r), nil
	}
	if r.pol.wsca {
		return d.wscaOperation(ctx, r), nil
	}
	return d.signatureFailed(ctx, r, d.keyOperation(ctx, r)), nil
}

// problem answers a request that could not be authenticated.
func (d *Dispatcher) problem(ctx context.Context, typ string, err error) Reply {
	code := codeOf(err)
	d.metrics.outcome("", typ, code)
	d.logger(ctx).Log(ctx, logLevel(code), "r2ps request refused", "type", typ, "code", code, "err", err)
	b, _ := json.Marshal(map[string]any{
		"type": "urn:wsca:r2ps:" + code, "title": strings.ToLower(strings.ReplaceAll(code, "_", " ")),
		"status": r2ps.HTTPStatus(code), "code": code,
	})
	return Reply{Status: r2ps.HTTPStatus(code), ContentType: MediaProblem, Body: b}
}

// result is a handler's outcome: data to answer with, or an error to map
// to a code inside the envelope.
type result struct {
	data any
	err  error
}

// failure maps an error after authentication to its code; the cause goes
// to the log only.
func (d *Dispatcher) failure(ctx context.Context, r *request, err error) r2ps.Failure {
	code := codeOf(err)
	d.metrics.outcome(r.profile, r.req.Type, code)
	d.logger(ctx).Log(ctx, logLevel(code), "r2ps operation failed", "unit", r.unit, "context", r.context, "type", r.req.Type, "code", code, "err", err)
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
	if code, ok := wscaCode(err); ok {
		return code
	}
	if code, ok := secdsaCode(err); ok {
		return code
	}
	var re *r2ps.Error
	switch {
	case errors.As(err, &re):
		return re.Code
	case errors.Is(err, pin.ErrWrongPIN), errors.Is(err, pin.ErrNoSession):
		return r2ps.CodeUnauthorized
	case errors.Is(err, pin.ErrLocked), errors.Is(err, pin.ErrTooSoon), errors.Is(err, wscd.ErrUnitNotActive),
		errors.Is(err, pin.ErrTaskItemUsed):
		return r2ps.CodeAccessDenied
	case errors.Is(err, pin.ErrNoRegistration), errors.Is(err, pin.ErrRecordExists), errors.Is(err, pin.ErrSoftwareOPRF):
		return r2ps.CodeIllegalState
	case errors.Is(err, pin.ErrMalformed), errors.Is(err, wscd.ErrInvalidInput), errors.Is(err, wscd.ErrKeyNotFound):
		return r2ps.CodeIllegalRequestData
	case errors.Is(err, wscd.ErrQuota):
		return r2ps.CodeAccessDenied
	case errors.Is(err, wscd.ErrUnavailable), errors.Is(err, device.ErrUnavailable), errors.Is(err, device.ErrClosed):
		// device: the PIN server's HSM OPRF evaluation.
		return r2ps.CodeTryLater
	}
	return r2ps.CodeServerError
}

// storeErr marks a failure of the store itself (not a refusal it reports
// with ErrNotFound, ErrExists or ErrInvalid) as the service being
// unavailable: TRY_LATER rather than SERVER_ERROR.
func storeErr(err error) error {
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExists) ||
		errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrUnitNotFound) || errors.Is(err, store.ErrQuota) {
		return err
	}
	return fmt.Errorf("%w: %w", wscd.ErrUnavailable, err)
}

func codeOrUnauthorized(res result) string {
	if res.err != nil {
		return codeOf(res.err)
	}
	return r2ps.CodeUnauthorized
}

// respond signs the response payload with the SSK.
func (d *Dispatcher) respond(ctx context.Context, r *request, data any) ([]byte, error) {
	raw, err := r2ps.EncodeData(data)
	if err != nil {
		return nil, err
	}
	payload, err := r2ps.EncodeResponse(r2ps.Response{Version: r2ps.Version, Nonce: r.req.Nonce, IssuedAt: d.cfg.Now(), Data: raw})
	if err != nil {
		return nil, err
	}
	return d.respHeader.Sign(payload, d.responseSigner(ctx))
}

// responseSigner is the SSK as a crypto.Signer.
func (d *Dispatcher) responseSigner(ctx context.Context) crypto.Signer {
	if d.sskSoft != nil {
		return d.sskSoft
	}
	return d.cfg.ServerKeys.Signer(ctx, d.ssk)
}
