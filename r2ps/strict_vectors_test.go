package r2ps_test

// The strict-profile vectors (testdata/strict/, format in its README and in
// docs/protocol.md "Test vectors"). TestStrictVectorsGenerate writes the file
// with -update; TestStrictVectors reads it and runs every vector through the
// codec of this package, with refServer and refClient below applying the
// profile's checks in the order of r2ps/dispatch/auth.go and
// r2ps/client. The test uses only the exported API, as another
// implementation would.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/ecp256"
	"github.com/wsca/wsca/r2ps"
)

var update = flag.Bool("update", false, "rewrite testdata/strict/"+svFileName)

const (
	svFileName = "r2ps-strict-v1.json"
	svFormat   = "wsca-r2ps-strict-vectors"
	svVersion  = 1
)

// The file's layout. Binary values are hex (_hex) or, where they are JOSE
// or wire text, as they travel.
type svFile struct {
	Format    string        `json:"format"`
	Version   int           `json:"version"`
	Profile   string        `json:"profile"`
	Licence   string        `json:"licence"`
	Generator string        `json:"generator"`
	Now       int64         `json:"now"`
	MaxAge    int64         `json:"max_age_seconds"`
	MaxSkew   int64         `json:"max_skew_seconds"`
	Server    svServer      `json:"server"`
	Units     []svUnit      `json:"units"`
	Sessions  []svSession   `json:"sessions"`
	OtherKeys []svNamedKey  `json:"other_keys"`
	Requests  []svRequest   `json:"requests"`
	Responses []svResponse  `json:"responses"`
	Sequences []svSequence  `json:"sequences"`
	Checks    []svCheckDesc `json:"checks"`
}

// svKey is a P-256 key: its kid and its private JWK (with d).
type svKey struct {
	KID string          `json:"kid"`
	JWK json.RawMessage `json:"jwk"`
}

type svNamedKey struct {
	Name string `json:"name"`
	svKey
}

type svServer struct {
	Agreement svKey    `json:"agreement_key"`
	Signing   svKey    `json:"signing_key"`
	Serves    []string `json:"serves"`
}

type svUnit struct {
	ID            string  `json:"id"`
	Context       string  `json:"context"`
	State         string  `json:"state"`
	EnrolmentOpen bool    `json:"enrolment_open"`
	Registered    bool    `json:"registered"`
	CSK           svKey   `json:"csk"`
	CAK           svKey   `json:"cak"`
	DeviceKeys    []svKey `json:"device_keys,omitempty"`
}

type svSession struct {
	ID      string `json:"id"`
	Unit    string `json:"unit"`
	Context string `json:"context"`
	KeyHex  string `json:"key_hex"`
}

type svOversize struct {
	Prefix string `json:"prefix"`
	Fill   string `json:"fill"`
	Suffix string `json:"suffix"`
	Length int    `json:"length"`
}

type svRequest struct {
	ID          string      `json:"id"`
	Description string      `json:"description"`
	Mode        string      `json:"mode"`
	Forged      string      `json:"forged,omitempty"`
	Body        string      `json:"body,omitempty"`
	Oversize    *svOversize `json:"oversize,omitempty"`
	Expect      svExpect    `json:"expect"`
}

// svExpect is the outcome of a request (at the server) or a response (at
// the client).
type svExpect struct {
	Outcome    string `json:"outcome"` // accept or refuse
	Code       string `json:"code,omitempty"`
	Check      string `json:"check,omitempty"`
	Answer     string `json:"answer,omitempty"` // problem or envelope
	HTTPStatus int    `json:"http_status,omitempty"`
	Note       string `json:"note,omitempty"`
	// Accepted requests.
	Type     string          `json:"type,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
	NonceHex string          `json:"nonce_hex,omitempty"`
	IAT      int64           `json:"iat,omitempty"`
	Unit     string          `json:"unit,omitempty"`
	Context  string          `json:"context,omitempty"`
	Session  string          `json:"session,omitempty"`
	Signer   string          `json:"signer,omitempty"` // registered or self-signed
	CSKKID   string          `json:"csk_kid,omitempty"`
	// Accepted responses.
	Success *bool  `json:"success,omitempty"`
	Error   string `json:"error,omitempty"`
}

type svResponse struct {
	ID          string   `json:"id"`
	Description string   `json:"description"`
	Request     string   `json:"request"`
	Mode        string   `json:"mode"`
	Forged      string   `json:"forged,omitempty"`
	Body        string   `json:"body"`
	Expect      svExpect `json:"expect"`
}

type svSequence struct {
	ID          string   `json:"id"`
	Description string   `json:"description"`
	Steps       []svStep `json:"steps"`
}

// svStep is one step: send a request vector, or change the server's state.
type svStep struct {
	Action  string    `json:"action"` // send, set_unit_state, set_enrolment, end_session
	Vector  string    `json:"vector,omitempty"`
	Unit    string    `json:"unit,omitempty"`
	State   string    `json:"state,omitempty"`
	Open    *bool     `json:"open,omitempty"`
	Session string    `json:"session,omitempty"`
	Expect  *svExpect `json:"expect,omitempty"`
}

type svCheckDesc struct {
	Check string `json:"check"`
	Side  string `json:"side"`
	Rule  string `json:"rule"`
}

// svChecks names every check, server's in the order it applies them, then
// the client's.
var svChecks = []svCheckDesc{
	{"size", "server", "the body is at most 1 MiB (wscad's HTTP layer answers a larger one 413 before the codec sees it)"},
	{"envelope", "server", "a compact JWE: five parts, empty encrypted key, unpadded base64url, 96-bit IV, 128-bit tag"},
	{"jwe_header", "server", "the JWE protected header: strict JSON, typ r2ps-1fa or r2ps-2fa, exactly the members and values of docs/protocol.md §2, nothing else"},
	{"unknown_session", "server", "2FA: kid names a live session (UNAUTHORIZED)"},
	{"decrypt", "server", "A256GCM opens under the CEK (1FA: ECDH-ES with the server agreement key, Concat KDF over apu/apv; 2FA: the session key), the encoded header as AAD"},
	{"unknown_key", "server", "1FA: the JWE kid is the server agreement key's thumbprint; the JWS kid is a registered CSK of the unit (apu in 1FA, the session's unit in 2FA), or an embedded jwk whose RFC 7638 thumbprint is the kid"},
	{"jws_header", "server", "the JWS: three parts, strict header with alg ES256, typ r2ps-request+jwt, kid, optional jwk; nothing else (no crit)"},
	{"signature", "server", "the ES256 signature (R || S) verifies"},
	{"decode", "server", "the payload decodes strictly: ver 1.0, nonce >= 16 bytes, integer iat, 32-byte jwe_hash, data object, no unknown or duplicate member"},
	{"type", "server", "type is a canonical type this server serves (UNSUPPORTED_REQUEST_TYPE)"},
	{"mode", "server", "the envelope's mode is the type's mode (ILLEGAL_STATE)"},
	{"signer", "server", "2fa_registration is self-signed (embedded jwk), every other type is signed by the registered CSK"},
	{"jwe_hash", "server", "jwe_hash = SHA-256 of the encoded JWE protected header as received"},
	{"enrolment", "server", "a self-signed registration needs an open activation code for the unit (UNAUTHORIZED)"},
	{"iat_stale", "server", "now - iat <= max_age"},
	{"iat_future", "server", "iat - now <= max_skew"},
	{"replay", "server", "the nonce has not been used by the unit in the context (the nonce is spent here)"},
	{"unit_state", "server", "a request signed by a registered CSK needs an active unit; refused inside the envelope (ACCESS_DENIED)"},
	{"party", "client", "1FA response: apu = the context, apv = the unit (swapped), as sent"},
	{"nonce", "client", "the response echoes the request's nonce"},
}

// ---------------------------------------------------------------------------
// Reference server: auth.go's order, with package r2ps only.

type refServer struct {
	now             time.Time
	maxAge, maxSkew time.Duration
	agree           *ecdh.PrivateKey
	agreeKID        string
	serves          map[string]bool
	csks            map[string]refCSK
	units           map[string]*refUnit
	sessions        map[string]refSession
	nonces          map[string]bool
}

type refCSK struct {
	unit string
	pub  *ecdsa.PublicKey
}

type refUnit struct {
	state         string
	enrolmentOpen bool
}

type refSession struct {
	unit, context string
	key           []byte
}

// verdict is what a receiver decided: code "" is an acceptance.
type verdict struct {
	code, check, answer string
	req                 r2ps.Request
	unit, context, sess string
	selfSigned          bool
	cskKID              string
	data                json.RawMessage // responses
}

func refused(check string, err error) verdict {
	return verdict{code: r2ps.Code(err), check: check, answer: "problem"}
}

// jweCheck and jwsCheck name the check an error of the envelope or the
// JWS stage failed.
func jweCheck(err error) string {
	switch {
	case errors.Is(err, r2ps.ErrTooLarge):
		return "size"
	case errors.Is(err, r2ps.ErrHeader):
		return "jwe_header"
	case errors.Is(err, r2ps.ErrDecrypt):
		return "decrypt"
	case errors.Is(err, r2ps.ErrUnknownSession):
		return "unknown_session"
	case errors.Is(err, r2ps.ErrMalformed):
		return "envelope"
	}
	return "other: " + err.Error()
}

func jwsCheck(err error) string {
	switch {
	case errors.Is(err, r2ps.ErrUnknownKey):
		return "unknown_key"
	case errors.Is(err, r2ps.ErrSignature):
		return "signature"
	case errors.Is(err, r2ps.ErrHeader), errors.Is(err, r2ps.ErrMalformed), errors.Is(err, r2ps.ErrTooLarge):
		return "jws_header"
	}
	return "other: " + err.Error()
}

func (s *refServer) receive(body []byte) verdict {
	mode, _, err := r2ps.EnvelopeMode(body)
	if err != nil {
		return refused(jweCheck(err), err)
	}
	var v verdict
	var jws []byte
	var protected string
	if mode == r2ps.Mode1FA {
		env, err := r2ps.Open1FA(body, s.agree.ECDH)
		if err != nil {
			return refused(jweCheck(err), err)
		}
		if env.KID != s.agreeKID {
			return refused("unknown_key", r2ps.ErrUnknownKey)
		}
		v.unit, v.context, jws, protected = env.ClientID, env.Context, env.JWS, env.ProtectedHeader
	} else {
		var se refSession
		env, err := r2ps.Open2FA(body, func(id string) ([]byte, error) {
			var ok bool
			if se, ok = s.sessions[id]; !ok {
				return nil, r2ps.ErrUnknownSession
			}
			return se.key, nil
		})
		if err != nil {
			return refused(jweCheck(err), err)
		}
		v.unit, v.context, v.sess, jws, protected = se.unit, se.context, env.SessionID, env.JWS, env.ProtectedHeader
	}
	payload, hdr, err := r2ps.VerifyJWS(jws, r2ps.TypRequest, func(kid string, embedded *jose.JSONWebKey) (*ecdsa.PublicKey, error) {
		if embedded != nil {
			pub, ok := embedded.Key.(*ecdsa.PublicKey)
			if !ok || r2ps.Thumbprint(pub) != kid {
				return nil, r2ps.ErrUnknownKey
			}
			v.selfSigned = true
			return pub, nil
		}
		k, ok := s.csks[kid]
		if !ok || k.unit != v.unit {
			return nil, r2ps.ErrUnknownKey
		}
		return k.pub, nil
	})
	if err != nil {
		return refused(jwsCheck(err), err)
	}
	v.cskKID = hdr.KID
	if v.req, err = r2ps.DecodeRequest(payload); err != nil {
		if errors.Is(err, r2ps.ErrUnsupportedType) {
			return refused("type", err)
		}
		return refused("decode", err)
	}
	if !s.serves[v.req.Type] {
		return refused("type", r2ps.ErrUnsupportedType)
	}
	if r2ps.RequiredMode(v.req.Type) != mode {
		return refused("mode", &r2ps.Error{Code: r2ps.CodeIllegalState, Msg: "wrong mode"})
	}
	if v.selfSigned != (v.req.Type == r2ps.Type2FARegistration) {
		return refused("signer", r2ps.ErrUnknownKey)
	}
	if err := r2ps.CheckJWEHash(v.req, protected); err != nil {
		return refused("jwe_hash", err)
	}
	u := s.units[v.unit]
	if v.selfSigned && (u == nil || !u.enrolmentOpen) {
		return refused("enrolment", &r2ps.Error{Code: r2ps.CodeUnauthorized, Msg: "no enrolment open"})
	}
	if s.now.Sub(v.req.IssuedAt) > s.maxAge {
		return refused("iat_stale", &r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "iat too old"})
	}
	if v.req.IssuedAt.Sub(s.now) > s.maxSkew {
		return refused("iat_future", &r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "iat in the future"})
	}
	nk := v.unit + "\x00" + v.context + "\x00" + string(v.req.Nonce)
	if s.nonces[nk] {
		return refused("replay", &r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "replayed nonce"})
	}
	s.nonces[nk] = true
	if !v.selfSigned && (u == nil || u.state != "active") {
		return verdict{code: r2ps.CodeAccessDenied, check: "unit_state", answer: "envelope"}
	}
	return v
}

// refClient checks a response as r2ps/client does.
type refClient struct {
	sskKID        string
	ssk           *ecdsa.PublicKey
	unit, context string
	cak           *ecdh.PrivateKey // 1FA
	sessionID     string           // 2FA
	sessionKey    []byte
	nonce         []byte
}

func (c refClient) receive(mode string, body []byte) verdict {
	var jws []byte
	if mode == "1FA" {
		env, err := r2ps.OpenResponse1FA(body, c.cak)
		if err != nil {
			return refused(jweCheck(err), err)
		}
		if env.ClientID != c.unit || env.Context != c.context {
			return refused("party", r2ps.ErrHeader)
		}
		jws = env.JWS
	} else {
		env, err := r2ps.Open2FA(body, func(id string) ([]byte, error) {
			if id != c.sessionID {
				return nil, r2ps.ErrUnknownSession
			}
			return c.sessionKey, nil
		})
		if err != nil {
			return refused(jweCheck(err), err)
		}
		jws = env.JWS
	}
	payload, _, err := r2ps.VerifyJWS(jws, r2ps.TypResponse, func(kid string, embedded *jose.JSONWebKey) (*ecdsa.PublicKey, error) {
		if embedded != nil || kid != c.sskKID {
			return nil, r2ps.ErrUnknownKey
		}
		return c.ssk, nil
	})
	if err != nil {
		return refused(jwsCheck(err), err)
	}
	resp, err := r2ps.DecodeResponse(payload)
	if err != nil {
		return refused("decode", err)
	}
	if !bytes.Equal(resp.Nonce, c.nonce) {
		return refused("nonce", r2ps.ErrMalformed)
	}
	return verdict{data: resp.Data}
}

// ---------------------------------------------------------------------------
// Checker.

func loadStrictVectors(t *testing.T) svFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "strict", svFileName))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f svFile
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	if f.Format != svFormat || f.Version != svVersion {
		t.Fatalf("format %q version %d, want %q %d", f.Format, f.Version, svFormat, svVersion)
	}
	return f
}

// privJWK parses a private P-256 JWK and checks that kid is its thumbprint.
func privJWK(t *testing.T, k svKey) *ecdsa.PrivateKey {
	t.Helper()
	var j jose.JSONWebKey
	if err := json.Unmarshal(k.JWK, &j); err != nil {
		t.Fatal(err)
	}
	priv, ok := j.Key.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("key %s: %T, want a P-256 private key", k.KID, j.Key)
	}
	return priv
}

func withThumbprint(t *testing.T, k svKey) *ecdsa.PrivateKey {
	t.Helper()
	priv := privJWK(t, k)
	if tp := r2ps.Thumbprint(&priv.PublicKey); tp != k.KID {
		t.Fatalf("kid %s is not the key's thumbprint %s", k.KID, tp)
	}
	return priv
}

func toECDH(t *testing.T, k *ecdsa.PrivateKey) *ecdh.PrivateKey {
	t.Helper()
	e, err := k.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// newRefServer builds the server of the file in its initial state.
func newRefServer(t *testing.T, f svFile) *refServer {
	t.Helper()
	s := &refServer{
		now: time.Unix(f.Now, 0), maxAge: time.Duration(f.MaxAge) * time.Second, maxSkew: time.Duration(f.MaxSkew) * time.Second,
		agree: toECDH(t, withThumbprint(t, f.Server.Agreement)), agreeKID: f.Server.Agreement.KID,
		serves: map[string]bool{}, csks: map[string]refCSK{}, units: map[string]*refUnit{},
		sessions: map[string]refSession{}, nonces: map[string]bool{},
	}
	for _, typ := range f.Server.Serves {
		s.serves[typ] = true
	}
	for _, u := range f.Units {
		s.units[u.ID] = &refUnit{state: u.State, enrolmentOpen: u.EnrolmentOpen}
		csk := withThumbprint(t, u.CSK)
		withThumbprint(t, u.CAK)
		if u.Registered {
			s.csks[u.CSK.KID] = refCSK{unit: u.ID, pub: &csk.PublicKey}
		}
	}
	for _, se := range f.Sessions {
		s.sessions[se.ID] = refSession{unit: se.Unit, context: se.Context, key: unhexT(t, se.KeyHex)}
	}
	return s
}

func unhexT(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (r svRequest) body(t *testing.T) []byte {
	t.Helper()
	if r.Oversize == nil {
		return []byte(r.Body)
	}
	o := r.Oversize
	n := o.Length - len(o.Prefix) - len(o.Suffix)
	if r.Body != "" || len(o.Fill) != 1 || n < 0 {
		t.Fatalf("%s: bad oversize member", r.ID)
	}
	return []byte(o.Prefix + strings.Repeat(o.Fill, n) + o.Suffix)
}

func jsonEqual(a, b []byte) bool {
	var x, y bytes.Buffer
	return json.Compact(&x, a) == nil && json.Compact(&y, b) == nil && bytes.Equal(x.Bytes(), y.Bytes())
}

// checkVerdict compares what the reference receiver decided with the file.
func checkVerdict(t *testing.T, id string, got verdict, want svExpect) {
	t.Helper()
	switch want.Outcome {
	case "refuse":
		status := r2ps.HTTPStatus(want.Code)
		if want.Answer == "envelope" {
			status = 200
		}
		if got.code != want.Code || got.check != want.Check || got.answer != want.Answer || (want.HTTPStatus != 0 && want.HTTPStatus != status) {
			t.Fatalf("%s: got %q at %q (%s), want %q at %q (%s, HTTP %d)", id, got.code, got.check, got.answer, want.Code, want.Check, want.Answer, want.HTTPStatus)
		}
	case "accept":
		if got.code != "" {
			t.Fatalf("%s: refused %q at %q, want accept", id, got.code, got.check)
		}
	default:
		t.Fatalf("%s: outcome %q", id, want.Outcome)
	}
}

// checkClientVerdict compares a client's decision on a response: a client
// sends no code, so only the check is stated.
func checkClientVerdict(t *testing.T, id string, got verdict, want svExpect) {
	t.Helper()
	switch {
	case want.Outcome == "refuse" && want.Code == "" && want.Answer == "":
		if got.code == "" || got.check != want.Check {
			t.Fatalf("%s: got %q at %q, want a refusal at %q", id, got.code, got.check, want.Check)
		}
	case want.Outcome == "accept":
		if got.code != "" {
			t.Fatalf("%s: refused at %q, want accept", id, got.check)
		}
	default:
		t.Fatalf("%s: outcome %+v", id, want)
	}
}

// checkAccepted compares an accepted request with the decoded members the
// file states, and checks that data passes its type's member rules.
func checkAccepted(t *testing.T, id string, got verdict, want svExpect) {
	t.Helper()
	signer := "registered"
	if got.selfSigned {
		signer = "self-signed"
	}
	if got.req.Type != want.Type || !jsonEqual(got.req.Data, want.Data) || hex.EncodeToString(got.req.Nonce) != want.NonceHex ||
		got.req.IssuedAt.Unix() != want.IAT || got.unit != want.Unit || got.context != want.Context ||
		got.sess != want.Session || signer != want.Signer || got.cskKID != want.CSKKID {
		t.Fatalf("%s: accepted as %+v, file says %+v", id, got, want)
	}
	var dst any
	switch want.Type {
	case r2ps.TypeCreateSession, r2ps.Type2FARegistration, r2ps.Type2FAUpdate:
		dst = new(r2ps.TFARequest)
	case r2ps.TypeSignECDSA:
		dst = new(r2ps.SignRequest)
	default:
		t.Fatalf("%s: no data type for %s", id, want.Type)
	}
	if err := r2ps.DecodeData(got.req.Data, dst); err != nil {
		t.Fatalf("%s: data: %v", id, err)
	}
}

// TestStrictVectors proves the published file matches the codec: every
// request vector through refServer from the initial state, every response
// through refClient, every sequence through one refServer.
func TestStrictVectors(t *testing.T) {
	f := loadStrictVectors(t)
	known := map[string]bool{}
	for _, c := range f.Checks {
		known[c.Check] = true
	}
	if len(f.Checks) != len(svChecks) {
		t.Fatalf("file lists %d checks, the test %d", len(f.Checks), len(svChecks))
	}
	for _, k := range f.OtherKeys {
		withThumbprint(t, k.svKey)
	}
	byID := map[string]svRequest{}
	seen := map[string]bool{}
	for _, r := range f.Requests {
		if byID[r.ID].ID != "" {
			t.Fatalf("duplicate id %s", r.ID)
		}
		byID[r.ID] = r
	}
	t.Run("requests", func(t *testing.T) {
		for _, r := range f.Requests {
			t.Run(r.ID, func(t *testing.T) {
				if r.Expect.Check != "" && !known[r.Expect.Check] {
					t.Fatalf("check %q is not in the file's list", r.Expect.Check)
				}
				seen[r.Expect.Check] = true
				got := newRefServer(t, f).receive(r.body(t))
				checkVerdict(t, r.ID, got, r.Expect)
				if r.Expect.Outcome == "accept" {
					checkAccepted(t, r.ID, got, r.Expect)
				}
			})
		}
	})
	t.Run("responses", func(t *testing.T) {
		ssk := withThumbprint(t, f.Server.Signing)
		for _, r := range f.Responses {
			t.Run(r.ID, func(t *testing.T) {
				seen[r.Expect.Check] = true
				req, ok := byID[r.Request]
				if !ok || req.Expect.Outcome != "accept" {
					t.Fatalf("request %q is no accepted vector", r.Request)
				}
				c := refClient{sskKID: f.Server.Signing.KID, ssk: &ssk.PublicKey, unit: req.Expect.Unit, context: req.Expect.Context,
					sessionID: req.Expect.Session, nonce: unhexT(t, req.Expect.NonceHex)}
				for _, u := range f.Units {
					if u.ID == c.unit {
						c.cak = toECDH(t, privJWK(t, u.CAK))
					}
				}
				for _, se := range f.Sessions {
					if se.ID == c.sessionID {
						c.sessionKey = unhexT(t, se.KeyHex)
					}
				}
				got := c.receive(r.Mode, []byte(r.Body))
				checkClientVerdict(t, r.ID, got, r.Expect)
				if r.Expect.Outcome != "accept" {
					return
				}
				var status r2ps.Failure
				if err := json.Unmarshal(got.data, &status); err != nil || r.Expect.Success == nil ||
					status.Success != *r.Expect.Success || status.Error != r.Expect.Error || !jsonEqual(got.data, r.Expect.Data) {
					t.Fatalf("data %s, file says success %v error %q data %s", got.data, r.Expect.Success, r.Expect.Error, r.Expect.Data)
				}
				checkResponseData(t, f, req, got.data)
			})
		}
	})
	t.Run("sequences", func(t *testing.T) {
		for _, sq := range f.Sequences {
			t.Run(sq.ID, func(t *testing.T) {
				s := newRefServer(t, f)
				for i, st := range sq.Steps {
					switch st.Action {
					case "send":
						r, ok := byID[st.Vector]
						if !ok || st.Expect == nil {
							t.Fatalf("step %d: vector %q", i, st.Vector)
						}
						seen[st.Expect.Check] = true
						checkVerdict(t, fmt.Sprintf("step %d (%s)", i, st.Vector), s.receive(r.body(t)), *st.Expect)
					case "set_unit_state":
						s.units[st.Unit].state = st.State
					case "set_enrolment":
						s.units[st.Unit].enrolmentOpen = *st.Open
					case "end_session":
						delete(s.sessions, st.Session)
					default:
						t.Fatalf("step %d: action %q", i, st.Action)
					}
				}
			})
		}
	})
	// Every check the file lists is exercised by at least one vector.
	for _, c := range f.Checks {
		if !seen[c.Check] {
			t.Errorf("no vector refused at %q", c.Check)
		}
	}
}

// checkResponseData decodes a successful response's data with its type's
// rules and, for a signature, verifies it with the device key.
func checkResponseData(t *testing.T, f svFile, req svRequest, data json.RawMessage) {
	t.Helper()
	var fl r2ps.Failure
	if json.Unmarshal(data, &fl) == nil && !fl.Success {
		if err := r2ps.DecodeData(data, &fl); err != nil {
			t.Fatal(err)
		}
		return
	}
	switch req.Expect.Type {
	case r2ps.TypeCreateSession:
		var d r2ps.TFAResponse
		if err := r2ps.DecodeData(data, &d); err != nil {
			t.Fatal(err)
		}
	case r2ps.TypeSignECDSA:
		var d r2ps.SignResponse
		var sr r2ps.SignRequest
		if err := r2ps.DecodeData(data, &d); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(req.Expect.Data, &sr); err != nil {
			t.Fatal(err)
		}
		for _, u := range f.Units {
			for _, k := range u.DeviceKeys {
				if k.KID == sr.KID && !ecdsa.VerifyASN1(&privJWK(t, k).PublicKey, sr.TBSHash, d.Signature) {
					t.Fatal("signature does not verify with the device key")
				}
			}
		}
	default:
		t.Fatalf("no response data type for %s", req.Expect.Type)
	}
}

// ---------------------------------------------------------------------------
// Generator.

// fixedKey derives a P-256 key from a label, so the file's keys never
// change when it is regenerated.
func fixedKey(t *testing.T, label string) *ecdsa.PrivateKey {
	t.Helper()
	for i := 0; i < 8; i++ {
		d := sha256.Sum256([]byte(fmt.Sprintf("wsca strict vectors v1 key %s %d", label, i)))
		if k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:]); err == nil {
			return k
		}
	}
	t.Fatalf("no key for %s", label)
	return nil
}

func fixedBytes(label string, n int) []byte {
	var out []byte
	for i := 0; len(out) < n; i++ {
		h := sha256.Sum256([]byte(fmt.Sprintf("wsca strict vectors v1 bytes %s %d", label, i)))
		out = append(out, h[:]...)
	}
	return out[:n]
}

func svKeyOf(t *testing.T, k *ecdsa.PrivateKey, kid string) svKey {
	t.Helper()
	if kid == "" {
		kid = r2ps.Thumbprint(&k.PublicKey)
	}
	b, err := json.Marshal(jose.JSONWebKey{Key: k})
	if err != nil {
		t.Fatal(err)
	}
	return svKey{KID: kid, JWK: b}
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// gen holds the fixed keys and state the vectors are made with.
type gen struct {
	t                *testing.T
	now              int64
	agree            *ecdsa.PrivateKey
	agreeKID         string
	ssk, other       *ecdsa.PrivateKey
	csk42, csk43     *ecdsa.PrivateKey
	csk44            *ecdsa.PrivateKey
	cak42, cak43     *ecdsa.PrivateKey
	cak44            *ecdsa.PrivateKey
	device           *ecdsa.PrivateKey
	deviceKID        string
	sid, sid2        string
	skey, skey2      []byte
	unit42, unit43   string
	unit44, ctx      string
	nonce2FA         []byte
	nonce1FA, nonceR []byte
}

// spec describes one request; zero values mean "as an honest wallet".
type spec struct {
	mode    r2ps.Mode
	unit    string // 1FA apu
	jweKID  string // 1FA: the server key's kid; 2FA: the session id
	sessKey []byte
	// jweHdr replaces the JWE protected header; 1FA receives the epk.
	jweHdr  func(epk string) string
	typ     string
	data    json.RawMessage
	nonce   []byte
	iat     int64
	jweHash []byte
	// jweHashOf replaces the hash function of jwe_hash.
	jweHashOf func(protected string) []byte
	// members edits the payload members (ordered key, raw JSON value).
	members func([]member) []member
	signer  *ecdsa.PrivateKey
	jwsKID  string
	embed   bool
	// jwsHdr replaces the JWS protected header (signed ES256 by signer).
	jwsHdr string
	// jws replaces the JWS whole, given the payload.
	jws    func(payload []byte) []byte
	tamper func(jws []byte) []byte
	body   func(body []byte) []byte
}

type member struct {
	k string
	v json.RawMessage
}

func (g *gen) js(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		g.t.Fatal(err)
	}
	return b
}

func (g *gen) defaults(s *spec) {
	if s.unit == "" {
		s.unit = g.unit42
	}
	if s.jweKID == "" {
		s.jweKID = g.agreeKID
		if s.mode == r2ps.Mode2FA {
			s.jweKID = g.sid
		}
	}
	if s.sessKey == nil {
		s.sessKey = g.skey
	}
	if s.nonce == nil {
		s.nonce = g.nonce2FA
		if s.mode == r2ps.Mode1FA {
			s.nonce = g.nonce1FA
		}
	}
	if s.iat == 0 {
		s.iat = g.now - 2
	}
	if s.signer == nil {
		s.signer = g.csk42
	}
	if s.jwsKID == "" {
		s.jwsKID = r2ps.Thumbprint(&s.signer.PublicKey)
	}
}

// payload builds the request payload. Without members it is the codec's
// own EncodeRequest.
func (g *gen) payload(s spec, hash []byte) []byte {
	if s.members == nil {
		p, err := r2ps.EncodeRequest(r2ps.Request{Nonce: s.nonce, IssuedAt: time.Unix(s.iat, 0), Type: s.typ, JWEHash: hash, Data: s.data})
		if err != nil {
			g.t.Fatal(err)
		}
		return p
	}
	ms := s.members([]member{
		{"ver", g.js(r2ps.Version)}, {"nonce", g.js(s.nonce)}, {"iat", g.js(s.iat)},
		{"type", g.js(s.typ)}, {"jwe_hash", g.js(hash)}, {"data", s.data},
	})
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(g.js(m.k))
		b.WriteByte(':')
		b.Write(m.v)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// signRaw signs payload under a header given as JSON text, ES256.
func (g *gen) signRaw(hdr string, payload []byte, k *ecdsa.PrivateKey) []byte {
	input := b64u([]byte(hdr)) + "." + b64u(payload)
	d := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
	if err != nil {
		g.t.Fatal(err)
	}
	sig := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	return []byte(input + "." + b64u(sig))
}

func (g *gen) jws(s spec, protected string) []byte {
	hash := s.jweHash
	switch {
	case s.jweHashOf != nil:
		hash = s.jweHashOf(protected)
	case hash == nil:
		hash = r2ps.JWEHash(protected)
	}
	payload := g.payload(s, hash)
	var out []byte
	switch {
	case s.jws != nil:
		out = s.jws(payload)
	case s.jwsHdr != "":
		out = g.signRaw(s.jwsHdr, payload, s.signer)
	default:
		var jwk *jose.JSONWebKey
		if s.embed {
			jwk = &jose.JSONWebKey{Key: &s.signer.PublicKey}
		}
		var err error
		if out, err = r2ps.SignJWS(payload, r2ps.TypRequest, s.jwsKID, s.signer, jwk); err != nil {
			g.t.Fatal(err)
		}
	}
	if s.tamper != nil {
		out = s.tamper(out)
	}
	return out
}

// sealGCM is the compact A256GCM serialisation, for forged headers.
func (g *gen) sealGCM(protected string, cek, plaintext []byte) []byte {
	block, err := aes.NewCipher(cek)
	if err != nil {
		g.t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		g.t.Fatal(err)
	}
	iv := make([]byte, 12)
	if _, err := rand.Read(iv); err != nil {
		g.t.Fatal(err)
	}
	sealed := aead.Seal(nil, iv, plaintext, []byte(protected))
	n := len(sealed) - 16
	return []byte(protected + ".." + b64u(iv) + "." + b64u(sealed[:n]) + "." + b64u(sealed[n:]))
}

// concatKDF is RFC 7518 §4.6.2 for A256GCM, written here from the RFC (the
// package's is unexported), for 1FA messages with forged headers.
func concatKDF(z []byte, apu, apv string) []byte {
	h := sha256.New()
	put := func(b []byte) {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
		h.Write(b)
	}
	h.Write(binary.BigEndian.AppendUint32(nil, 1))
	h.Write(z)
	put([]byte(r2ps.EncA256GCM))
	put([]byte(apu))
	put([]byte(apv))
	h.Write(binary.BigEndian.AppendUint32(nil, 256))
	return h.Sum(nil)
}

func (g *gen) build(s spec) []byte {
	g.defaults(&s)
	var body []byte
	var err error
	switch {
	case s.mode == r2ps.Mode1FA && s.jweHdr == nil:
		agree, err2 := g.agree.PublicKey.ECDH()
		if err2 != nil {
			g.t.Fatal(err2)
		}
		body, err = r2ps.SealRequest1FA(func(p string) ([]byte, error) { return g.jws(s, p), nil }, agree, s.jweKID, s.unit, g.ctx, nil)
	case s.mode == r2ps.Mode1FA:
		eph, err2 := ecdh.P256().GenerateKey(rand.Reader)
		if err2 != nil {
			g.t.Fatal(err2)
		}
		agree, _ := g.agree.PublicKey.ECDH()
		z, err2 := eph.ECDH(agree)
		if err2 != nil {
			g.t.Fatal(err2)
		}
		pt := eph.PublicKey().Bytes()
		epk := fmt.Sprintf(`{"kty":"EC","crv":"P-256","x":%q,"y":%q}`, b64u(pt[1:33]), b64u(pt[33:]))
		protected := b64u([]byte(s.jweHdr(epk)))
		body = g.sealGCM(protected, concatKDF(z, s.unit, g.ctx), g.jws(s, protected))
	case s.jweHdr == nil:
		body, err = r2ps.Seal2FA(g.jws(s, r2ps.ProtectedHeader2FA(s.jweKID)), s.sessKey, s.jweKID, nil)
	default:
		protected := b64u([]byte(s.jweHdr("")))
		body = g.sealGCM(protected, s.sessKey, g.jws(s, protected))
	}
	if err != nil {
		g.t.Fatal(err)
	}
	if s.body != nil {
		body = s.body(body)
	}
	return body
}

// hdr1FA writes a 1FA header with the given alg, enc, typ and extra
// members (JSON text after a comma, or "").
func (g *gen) hdr1FA(alg, enc, typ, extra string) func(string) string {
	return func(epk string) string {
		h := fmt.Sprintf(`{"alg":%q,"enc":%q,"typ":%q,"cty":"JWT","kid":%q,"epk":%s,"apu":%q,"apv":%q`,
			alg, enc, typ, g.agreeKID, epk, b64u([]byte(g.unit42)), b64u([]byte(g.ctx)))
		if extra != "" {
			h += "," + extra
		}
		return h + "}"
	}
}

func (g *gen) hdr2FA(alg, enc, extra string) func(string) string {
	return func(string) string {
		h := fmt.Sprintf(`{"alg":%q,"enc":%q,"typ":"r2ps-2fa","cty":"JWT","kid":%q`, alg, enc, g.sid)
		if extra != "" {
			h += "," + extra
		}
		return h + "}"
	}
}

// flipPart flips one bit in the middle of part i of a compact serialisation.
func flipPart(t *testing.T, compact []byte, i int) []byte {
	t.Helper()
	parts := strings.Split(string(compact), ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil || len(b) == 0 {
		t.Fatalf("part %d: %v", i, err)
	}
	b[len(b)/2] ^= 0x01
	parts[i] = b64u(b)
	return []byte(strings.Join(parts, "."))
}

// setHeaderMember re-encodes the JWE protected header with one member
// replaced, without re-encrypting (a change in transit).
func setHeaderMember(t *testing.T, compact []byte, name, value string) []byte {
	t.Helper()
	parts := strings.Split(string(compact), ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	h[name], _ = json.Marshal(value)
	b, _ := json.Marshal(h)
	parts[0] = b64u(b)
	return []byte(strings.Join(parts, "."))
}

func replaceMember(ms []member, k string, v json.RawMessage) []member {
	for i := range ms {
		if ms[i].k == k {
			ms[i].v = v
		}
	}
	return ms
}

// TestStrictVectorsGenerate writes testdata/strict/r2ps-strict-v1.json
// (go test ./r2ps -run TestStrictVectorsGenerate -update). Keys and nonces
// are fixed; every other random value (IVs, ephemeral keys, ECDSA
// signatures) comes from cryptotest.SetGlobalRandom, so a regeneration with
// the same Go release writes the same bytes. The checker never regenerates:
// it works from the file.
func TestStrictVectorsGenerate(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata/strict/" + svFileName)
	}
	cryptotest.SetGlobalRandom(t, 1)
	f := generateStrictVectors(t)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", "strict", svFileName), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func generateStrictVectors(t *testing.T) svFile {
	g := &gen{t: t, now: 1750000000, unit42: "unit-0042", unit43: "unit-0043", unit44: "unit-0044", ctx: "hsm"}
	g.agree, g.ssk, g.other = fixedKey(t, "server agreement"), fixedKey(t, "server signing"), fixedKey(t, "unregistered")
	g.csk42, g.cak42 = fixedKey(t, "unit-0042 csk"), fixedKey(t, "unit-0042 cak")
	g.csk43, g.cak43 = fixedKey(t, "unit-0043 csk"), fixedKey(t, "unit-0043 cak")
	g.csk44, g.cak44 = fixedKey(t, "unit-0044 csk"), fixedKey(t, "unit-0044 cak")
	g.device = fixedKey(t, "unit-0042 device key")
	// A WSCD key's kid is the one wsca's devices give it (ecp256.KID).
	kid, err := ecp256.KID(&g.device.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	g.deviceKID = kid
	g.agreeKID = r2ps.Thumbprint(&g.agree.PublicKey)
	g.sid, g.skey = b64u(fixedBytes("session id", 32)), fixedBytes("session key", 32)
	g.sid2, g.skey2 = b64u(fixedBytes("session id 2", 32)), fixedBytes("session key 2", 32)
	g.nonce2FA, g.nonce1FA, g.nonceR = fixedBytes("nonce 2fa", 16), fixedBytes("nonce 1fa", 16), fixedBytes("nonce registration", 16)

	f := svFile{
		Format: svFormat, Version: svVersion,
		Profile:   "wsca strict R2PS profile (docs/protocol.md), draft-santesson-r2ps-00",
		Licence:   "Apache-2.0 (the wsca project's licence)",
		Generator: "r2ps/strict_vectors_test.go: go test ./r2ps -run TestStrictVectorsGenerate -update",
		Now:       g.now, MaxAge: 300, MaxSkew: 60,
		Server: svServer{
			Agreement: svKeyOf(t, g.agree, ""), Signing: svKeyOf(t, g.ssk, ""),
			Serves: []string{r2ps.TypeCreateSession, r2ps.Type2FARegistration, r2ps.Type2FAUpdate, r2ps.TypeP256Generate,
				r2ps.TypeSignECDSA, r2ps.TypeAgreeECDH, r2ps.TypeListKeys, r2ps.TypeDeleteKey},
		},
		Units: []svUnit{
			{ID: g.unit42, Context: g.ctx, State: "active", Registered: true, CSK: svKeyOf(t, g.csk42, ""), CAK: svKeyOf(t, g.cak42, ""),
				DeviceKeys: []svKey{svKeyOf(t, g.device, g.deviceKID)}},
			{ID: g.unit43, Context: g.ctx, State: "active", EnrolmentOpen: true, CSK: svKeyOf(t, g.csk43, ""), CAK: svKeyOf(t, g.cak43, "")},
			{ID: g.unit44, Context: g.ctx, State: "active", Registered: true, CSK: svKeyOf(t, g.csk44, ""), CAK: svKeyOf(t, g.cak44, "")},
		},
		Sessions: []svSession{
			{ID: g.sid, Unit: g.unit42, Context: g.ctx, KeyHex: hex.EncodeToString(g.skey)},
			{ID: g.sid2, Unit: g.unit44, Context: g.ctx, KeyHex: hex.EncodeToString(g.skey2)},
		},
		OtherKeys: []svNamedKey{{Name: "unregistered", svKey: svKeyOf(t, g.other, "")}},
		Checks:    svChecks,
	}

	// Data of the honest requests. p_data is placeholder bytes, not an
	// OPAQUE message: the vectors stop where the OPAQUE layer starts.
	tbs := sha256.Sum256([]byte("to be signed"))
	signData := g.js(r2ps.SignRequest{KID: g.deviceKID, TBSHash: tbs[:]})
	loginData := g.js(r2ps.TFARequest{Protocol: r2ps.ProtocolOPAQUE, State: r2ps.StateEvaluate, PData: fixedBytes("KE1", 96)})
	regData := g.js(r2ps.TFARequest{Protocol: r2ps.ProtocolOPAQUE, State: r2ps.StateEvaluate, PData: fixedBytes("blinded", 33),
		CAK: &jose.JSONWebKey{Key: &g.cak43.PublicKey}})

	sign2FA := func(mut func(*spec)) spec {
		s := spec{mode: r2ps.Mode2FA, typ: r2ps.TypeSignECDSA, data: signData}
		if mut != nil {
			mut(&s)
		}
		return s
	}
	login1FA := func(mut func(*spec)) spec {
		s := spec{mode: r2ps.Mode1FA, typ: r2ps.TypeCreateSession, data: loginData}
		if mut != nil {
			mut(&s)
		}
		return s
	}
	reg1FA := func(mut func(*spec)) spec {
		s := spec{mode: r2ps.Mode1FA, unit: g.unit43, typ: r2ps.Type2FARegistration, data: regData, signer: g.csk43, embed: true, nonce: g.nonceR}
		if mut != nil {
			mut(&s)
		}
		return s
	}
	accept := func(s spec, session string) svExpect {
		g.defaults(&s)
		signer := "registered"
		if s.embed {
			signer = "self-signed"
		}
		return svExpect{Outcome: "accept", Type: s.typ, Data: s.data, NonceHex: hex.EncodeToString(s.nonce), IAT: s.iat,
			Unit: s.unit, Context: g.ctx, Session: session, Signer: signer, CSKKID: s.jwsKID}
	}
	refuse := func(code, check string) svExpect {
		return svExpect{Outcome: "refuse", Code: code, Check: check, Answer: "problem", HTTPStatus: r2ps.HTTPStatus(code)}
	}
	bad := func(check string) svExpect { return refuse(r2ps.CodeIllegalRequestData, check) }
	modeName := func(s spec) string { return s.mode.String() }
	add := func(id, forged, desc string, s spec, want svExpect) {
		f.Requests = append(f.Requests, svRequest{ID: id, Description: desc, Mode: modeName(s), Forged: forged, Body: string(g.build(s)), Expect: want})
	}
	cskKID := r2ps.Thumbprint(&g.csk42.PublicKey)
	hsmECDSA := func(ms []member) []member { return replaceMember(ms, "type", g.js(r2ps.AliasHSMECDSA)) }

	// Honest requests.
	add("1fa-create-session", "", "unit-0042 asks to log in (create_session, OPAQUE evaluate), signed by its registered CSK", login1FA(nil), accept(login1FA(nil), ""))
	add("1fa-registration", "", "unit-0043, whose activation code is open, registers: 2fa_registration self-signed with the new CSK in the JWS jwk header, data carrying the CAK", reg1FA(nil), accept(reg1FA(nil), ""))
	add("2fa-sign-ecdsa", "", "sign_ecdsa in unit-0042's 2FA session with its device key", sign2FA(nil), accept(sign2FA(nil), g.sid))
	oldest := func(s *spec) { s.iat = g.now - 300 }
	latest := func(s *spec) { s.iat = g.now + 60 }
	add("2fa-iat-oldest-accepted", "iat", "iat = now - max_age: still fresh", sign2FA(oldest), accept(sign2FA(oldest), g.sid))
	add("2fa-iat-latest-accepted", "iat", "iat = now + max_skew: still fresh", sign2FA(latest), accept(sign2FA(latest), g.sid))

	// Envelope and JWE header.
	good2FA := g.build(sign2FA(nil))
	parts := strings.Split(string(good2FA), ".")
	f.Requests = append(f.Requests, svRequest{ID: "oversized-body", Forged: "size", Mode: "2FA",
		Description: "a 2FA JWE whose ciphertext makes the body 1 MiB + 1 byte; the body is prefix + fill repeated + suffix, length bytes in all",
		Oversize:    &svOversize{Prefix: parts[0] + ".." + parts[2] + ".", Fill: "A", Suffix: "." + parts[4], Length: r2ps.MaxMessageSize + 1},
		Expect: func() svExpect {
			e := bad("size")
			e.Note = "wscad's HTTP layer refuses a body over 1 MiB with HTTP 413 before the codec"
			return e
		}()})
	jwsOnly, err := r2ps.SignJWS(g.payload(func() spec { s := sign2FA(nil); g.defaults(&s); return s }(), r2ps.JWEHash(r2ps.ProtectedHeader2FA(g.sid))),
		r2ps.TypRequest, cskKID, g.csk42, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.Requests = append(f.Requests, svRequest{ID: "not-a-jwe", Forged: "envelope", Mode: "none",
		Description: "the request JWS sent bare, without the JWE (the compat profile's shape; refused by a strict-only server)",
		Body:        string(jwsOnly), Expect: bad("envelope")})
	add("1fa-jwe-typ", "jwe typ", "JWE typ JWT instead of r2ps-1fa", login1FA(func(s *spec) { s.jweHdr = g.hdr1FA("ECDH-ES", "A256GCM", "JWT", "") }), bad("jwe_header"))
	add("1fa-jwe-alg", "jwe alg", "JWE alg ECDH-ES+A256KW instead of ECDH-ES (encrypted key left empty)", login1FA(func(s *spec) { s.jweHdr = g.hdr1FA("ECDH-ES+A256KW", "A256GCM", "r2ps-1fa", "") }), bad("jwe_header"))
	add("1fa-jwe-unknown-member", "jwe zip", `JWE header with an extra member "zip":"DEF"`, login1FA(func(s *spec) { s.jweHdr = g.hdr1FA("ECDH-ES", "A256GCM", "r2ps-1fa", `"zip":"DEF"`) }), bad("jwe_header"))
	add("2fa-jwe-enc", "jwe enc", "JWE enc A128GCM instead of A256GCM (encrypted with the 32-byte session key all the same)", sign2FA(func(s *spec) { s.jweHdr = g.hdr2FA("dir", "A128GCM", "") }), bad("jwe_header"))
	add("2fa-jwe-alg", "jwe alg", "JWE alg A256KW instead of dir (encrypted key left empty)", sign2FA(func(s *spec) { s.jweHdr = g.hdr2FA("A256KW", "A256GCM", "") }), bad("jwe_header"))
	add("2fa-jwe-duplicate-member", "jwe kid", "JWE header with kid twice (the same value)", sign2FA(func(s *spec) { s.jweHdr = g.hdr2FA("dir", "A256GCM", fmt.Sprintf("%q:%q", "kid", g.sid)) }), bad("jwe_header"))
	add("2fa-unknown-session", "jwe kid", "2FA kid names no live session", sign2FA(func(s *spec) { s.jweKID = b64u(fixedBytes("no such session", 32)) }), refuse(r2ps.CodeUnauthorized, "unknown_session"))
	add("1fa-jwe-kid", "jwe kid", "JWE kid is not the server agreement key's thumbprint (the message is encrypted to the right key under that kid)", login1FA(func(s *spec) { s.jweKID = r2ps.Thumbprint(&g.other.PublicKey) }), bad("unknown_key"))
	add("1fa-modified-ciphertext", "ciphertext", "one bit of the 1FA ciphertext flipped", login1FA(func(s *spec) { s.body = func(b []byte) []byte { return flipPart(t, b, 3) } }), bad("decrypt"))
	add("2fa-modified-ciphertext", "ciphertext", "one bit of the 2FA ciphertext flipped", sign2FA(func(s *spec) { s.body = func(b []byte) []byte { return flipPart(t, b, 3) } }), bad("decrypt"))
	add("2fa-wrong-session-key", "cek", "encrypted under a key that is not the session's", sign2FA(func(s *spec) { s.sessKey = g.skey2 }), bad("decrypt"))
	add("1fa-apu-modified", "apu", "apu changed to unit-0044 in transit (the CEK and the AAD no longer match)", login1FA(func(s *spec) {
		s.body = func(b []byte) []byte { return setHeaderMember(t, b, "apu", b64u([]byte(g.unit44))) }
	}), bad("decrypt"))
	add("1fa-apu-other-unit", "apu", "unit-0042's CSK signs a request encrypted with apu = unit-0044: the CSK is not unit-0044's", login1FA(func(s *spec) { s.unit = g.unit44 }), bad("unknown_key"))

	// JWS.
	none := func(hdr string) func([]byte) []byte {
		return func(p []byte) []byte { return []byte(b64u([]byte(hdr)) + "." + b64u(p) + ".") }
	}
	hs256 := func(p []byte) []byte {
		in := b64u([]byte(fmt.Sprintf(`{"alg":"HS256","kid":%q,"typ":"r2ps-request+jwt"}`, cskKID))) + "." + b64u(p)
		m := hmac.New(sha256.New, g.skey)
		m.Write([]byte(in))
		return []byte(in + "." + b64u(m.Sum(nil)))
	}
	add("2fa-jws-alg-none", "jws alg", "JWS alg none, empty signature", sign2FA(func(s *spec) {
		s.jws = none(fmt.Sprintf(`{"alg":"none","kid":%q,"typ":"r2ps-request+jwt"}`, cskKID))
	}), bad("jws_header"))
	add("2fa-jws-alg-hs256", "jws alg", "JWS alg HS256, HMAC under the session key", sign2FA(func(s *spec) { s.jws = hs256 }), bad("jws_header"))
	add("2fa-jws-crit", "jws crit", `JWS header with "crit":["exp"] and "exp", signed ES256 by the CSK`, sign2FA(func(s *spec) {
		s.jwsHdr = fmt.Sprintf(`{"alg":"ES256","crit":["exp"],"exp":%d,"kid":%q,"typ":"r2ps-request+jwt"}`, g.now+60, cskKID)
	}), bad("jws_header"))
	add("2fa-jws-typ", "jws typ", "JWS typ JWT instead of r2ps-request+jwt, signed by the CSK", sign2FA(func(s *spec) {
		s.jwsHdr = fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"JWT"}`, cskKID)
	}), bad("jws_header"))
	add("2fa-bad-signature", "jws signature", "one bit of the ES256 signature flipped (then encrypted)", sign2FA(func(s *spec) { s.tamper = func(b []byte) []byte { return flipPart(t, b, 2) } }), bad("signature"))
	add("2fa-signed-by-other-key", "jws signature", "signed by an unregistered key under the CSK's kid", sign2FA(func(s *spec) { s.signer, s.jwsKID = g.other, cskKID }), bad("signature"))
	add("2fa-jws-kid-unregistered", "jws kid", "signed by an unregistered key under its own thumbprint", sign2FA(func(s *spec) { s.signer = g.other }), bad("unknown_key"))
	add("2fa-jws-kid-other-unit", "jws kid", "signed by unit-0044's registered CSK in unit-0042's session", sign2FA(func(s *spec) { s.signer = g.csk44 }), bad("unknown_key"))
	add("2fa-embedded-jwk", "jws jwk", "sign_ecdsa carrying the registered CSK in a jwk header (self-signed): only 2fa_registration may be", sign2FA(func(s *spec) { s.embed = true }), bad("signer"))
	add("1fa-create-session-self-signed", "jws jwk", "create_session self-signed with an unregistered key in the jwk header", login1FA(func(s *spec) { s.signer, s.embed = g.other, true }), bad("signer"))
	add("1fa-registration-missing-jwk", "jws jwk", "2fa_registration without the jwk header, signed by the new (unregistered) CSK", reg1FA(func(s *spec) { s.embed = false }), bad("unknown_key"))
	add("1fa-registration-registered-csk", "jws jwk", "2fa_registration from unit-0042 signed by its registered CSK, no jwk header: a strict registration must carry its key", reg1FA(func(s *spec) {
		s.unit, s.signer, s.embed = g.unit42, g.csk42, false
	}), bad("signer"))
	add("1fa-registration-kid-not-thumbprint", "jws kid", "self-signed registration whose kid is not the embedded key's thumbprint", reg1FA(func(s *spec) { s.jwsKID = "not-the-thumbprint" }), bad("unknown_key"))
	add("1fa-registration-no-enrolment", "unit", "self-signed registration for unit-0042, which has no open activation code", reg1FA(func(s *spec) { s.unit = g.unit42 }), refuse(r2ps.CodeUnauthorized, "enrolment"))

	// Payload.
	add("2fa-short-nonce", "nonce", "nonce of 15 bytes", sign2FA(func(s *spec) {
		s.nonce = g.nonce2FA[:15]
		s.members = func(ms []member) []member { return ms }
	}), bad("decode"))
	add("2fa-ver-2", "ver", `ver "2.0"`, sign2FA(func(s *spec) {
		s.members = func(ms []member) []member { return replaceMember(ms, "ver", g.js("2.0")) }
	}), bad("decode"))
	add("2fa-duplicate-member", "nonce", "payload with the nonce member twice (the same value)", sign2FA(func(s *spec) {
		s.members = func(ms []member) []member { return append(ms, member{"nonce", g.js(g.nonce2FA)}) }
	}), bad("decode"))
	add("2fa-unknown-member", "client_id", `payload with an extra member "client_id" (compat shape)`, sign2FA(func(s *spec) {
		s.members = func(ms []member) []member { return append(ms, member{"client_id", g.js(g.unit42)}) }
	}), bad("decode"))
	add("2fa-legacy-type", "type", "type hsm_ecdsa, go-r2ps-service's alias of sign_ecdsa (compat profile only)", sign2FA(func(s *spec) { s.members = hsmECDSA }),
		refuse(r2ps.CodeUnsupportedRequestType, "type"))
	add("1fa-type-not-served", "type", "type eudiw_wka_etsi, which the profile defines but this server does not serve", login1FA(func(s *spec) {
		s.typ, s.data = r2ps.TypeWKA, json.RawMessage(`{}`)
	}), refuse(r2ps.CodeUnsupportedRequestType, "type"))
	add("1fa-sign-wrong-mode", "mode", "sign_ecdsa sent in 1FA", login1FA(func(s *spec) { s.typ, s.data = r2ps.TypeSignECDSA, signData }), refuse(r2ps.CodeIllegalState, "mode"))
	add("2fa-create-session-wrong-mode", "mode", "create_session sent in 2FA", sign2FA(func(s *spec) { s.typ, s.data = r2ps.TypeCreateSession, loginData }), refuse(r2ps.CodeIllegalState, "mode"))
	add("2fa-wrong-jwe-hash", "jwe_hash", "jwe_hash over another header", sign2FA(func(s *spec) { s.jweHash = r2ps.JWEHash(r2ps.ProtectedHeader2FA(g.sid2)) }), bad("jwe_hash"))
	add("1fa-wrong-jwe-hash", "jwe_hash", "jwe_hash = SHA-256 of the decoded header JSON instead of its base64url text", login1FA(func(s *spec) {
		s.jweHashOf = func(p string) []byte {
			hdr, err := base64.RawURLEncoding.DecodeString(p)
			if err != nil {
				t.Fatal(err)
			}
			return r2ps.JWEHash(string(hdr))
		}
	}), bad("jwe_hash"))
	add("2fa-iat-stale", "iat", "iat = now - max_age - 1", sign2FA(func(s *spec) { s.iat = g.now - 301 }), bad("iat_stale"))
	add("2fa-iat-future", "iat", "iat = now + max_skew + 1", sign2FA(func(s *spec) { s.iat = g.now + 61 }), bad("iat_future"))

	// Order: two faults, the earlier check wins.
	add("order-signature-before-iat", "jws signature, iat", "bad signature and stale iat: signature first", sign2FA(func(s *spec) {
		s.iat = g.now - 1000
		s.tamper = func(b []byte) []byte { return flipPart(t, b, 2) }
	}), bad("signature"))
	add("order-mode-before-jwe-hash", "type, jwe_hash", "create_session in 2FA with a wrong jwe_hash: mode first", sign2FA(func(s *spec) {
		s.typ, s.data, s.jweHash = r2ps.TypeCreateSession, loginData, r2ps.JWEHash("x")
	}), refuse(r2ps.CodeIllegalState, "mode"))
	add("order-jwe-hash-before-iat", "jwe_hash, iat", "wrong jwe_hash and future iat: jwe_hash first", sign2FA(func(s *spec) {
		s.iat, s.jweHash = g.now+1000, r2ps.JWEHash("x")
	}), bad("jwe_hash"))
	add("order-decode-before-signer", "nonce, jws jwk", "short nonce in a self-signed sign_ecdsa: decode first", sign2FA(func(s *spec) {
		s.nonce, s.embed = g.nonce2FA[:8], true
		s.members = func(ms []member) []member { return ms }
	}), bad("decode"))

	g.responses(&f, signData)
	g.sequences(&f)
	return f
}

func mustECDH(t *testing.T, k *ecdsa.PrivateKey) *ecdh.PublicKey {
	t.Helper()
	p, err := k.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rspec describes one response.
type rspec struct {
	mode    string
	nonce   []byte
	data    any
	signer  *ecdsa.PrivateKey
	kid     string
	typ     string
	embed   bool
	cak     *ecdsa.PrivateKey // 1FA recipient
	unit    string            // 1FA apv
	session string            // 2FA kid
	key     []byte
}

func (g *gen) response(s rspec) []byte {
	t := g.t
	if s.signer == nil {
		s.signer = g.ssk
	}
	if s.kid == "" {
		s.kid = r2ps.Thumbprint(&s.signer.PublicKey)
	}
	if s.typ == "" {
		s.typ = r2ps.TypResponse
	}
	raw, err := r2ps.EncodeData(s.data)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := r2ps.EncodeResponse(r2ps.Response{Nonce: s.nonce, IssuedAt: time.Unix(g.now, 0), Data: raw})
	if err != nil {
		t.Fatal(err)
	}
	var jwk *jose.JSONWebKey
	if s.embed {
		jwk = &jose.JSONWebKey{Key: &s.signer.PublicKey}
	}
	jws, err := r2ps.SignJWS(payload, s.typ, s.kid, s.signer, jwk)
	if err != nil {
		t.Fatal(err)
	}
	var body []byte
	if s.mode == "1FA" {
		if s.cak == nil {
			s.cak = g.cak42
		}
		if s.unit == "" {
			s.unit = g.unit42
		}
		body, err = r2ps.SealResponse1FA(jws, mustECDH(t, s.cak), r2ps.Thumbprint(&s.cak.PublicKey), s.unit, g.ctx, nil)
	} else {
		if s.session == "" {
			s.session, s.key = g.sid, g.skey
		}
		body, err = r2ps.Seal2FA(jws, s.key, s.session, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func (g *gen) responses(f *svFile, signData json.RawMessage) {
	t := g.t
	var sr r2ps.SignRequest
	if err := json.Unmarshal(signData, &sr); err != nil {
		t.Fatal(err)
	}
	sig, err := ecdsa.SignASN1(rand.Reader, g.device, sr.TBSHash)
	if err != nil {
		t.Fatal(err)
	}
	signOK := r2ps.SignResponse{Success: true, Signature: sig}
	loginOK := r2ps.TFAResponse{Success: true, PData: fixedBytes("KE2", 320), SessionID: b64u(fixedBytes("pending session", 32))}
	denied := r2ps.Failure{Error: r2ps.CodeAccessDenied}
	ok := func(d any, success bool, code string) svExpect {
		raw, err := r2ps.EncodeData(d)
		if err != nil {
			t.Fatal(err)
		}
		s := success
		return svExpect{Outcome: "accept", Success: &s, Error: code, Data: raw}
	}
	refuse := func(check string) svExpect { return svExpect{Outcome: "refuse", Check: check} }
	add := func(id, req, forged, desc string, s rspec, want svExpect) {
		f.Responses = append(f.Responses, svResponse{ID: id, Request: req, Mode: s.mode, Forged: forged, Description: desc, Body: string(g.response(s)), Expect: want})
	}
	add("resp-1fa-create-session", "1fa-create-session", "", "the server's answer to 1fa-create-session (KE2 placeholder and the pending session id), encrypted to unit-0042's CAK",
		rspec{mode: "1FA", nonce: g.nonce1FA, data: loginOK}, ok(loginOK, true, ""))
	add("resp-2fa-sign-ecdsa", "2fa-sign-ecdsa", "", "the answer to 2fa-sign-ecdsa: a DER signature by the device key over tbs_hash",
		rspec{mode: "2FA", nonce: g.nonce2FA, data: signOK}, ok(signOK, true, ""))
	add("resp-2fa-failure", "2fa-sign-ecdsa", "", "a refusal inside the envelope: the client accepts the response and reports ACCESS_DENIED",
		rspec{mode: "2FA", nonce: g.nonce2FA, data: denied}, ok(denied, false, r2ps.CodeAccessDenied))
	add("resp-1fa-nonce-mismatch", "1fa-create-session", "nonce", "the nonce is not the request's",
		rspec{mode: "1FA", nonce: g.nonceR, data: loginOK}, refuse("nonce"))
	add("resp-2fa-nonce-mismatch", "2fa-sign-ecdsa", "nonce", "the nonce is not the request's",
		rspec{mode: "2FA", nonce: g.nonce1FA, data: signOK}, refuse("nonce"))
	add("resp-2fa-wrong-ssk", "2fa-sign-ecdsa", "jws kid", "signed by a key that is not the SSK, under its own thumbprint",
		rspec{mode: "2FA", nonce: g.nonce2FA, data: signOK, signer: g.other}, refuse("unknown_key"))
	add("resp-1fa-wrong-ssk-ssk-kid", "1fa-create-session", "jws signature", "signed by a key that is not the SSK, under the SSK's kid",
		rspec{mode: "1FA", nonce: g.nonce1FA, data: loginOK, signer: g.other, kid: r2ps.Thumbprint(&g.ssk.PublicKey)}, refuse("signature"))
	add("resp-2fa-embedded-jwk", "2fa-sign-ecdsa", "jws jwk", "signed by the SSK but carrying a jwk header: the client trusts only the SSK it knows",
		rspec{mode: "2FA", nonce: g.nonce2FA, data: signOK, embed: true}, refuse("unknown_key"))
	add("resp-2fa-request-typ", "2fa-sign-ecdsa", "jws typ", "JWS typ r2ps-request+jwt on a response",
		rspec{mode: "2FA", nonce: g.nonce2FA, data: signOK, typ: r2ps.TypRequest}, refuse("jws_header"))
	add("resp-1fa-wrong-cak", "1fa-create-session", "recipient", "encrypted to unit-0044's CAK",
		rspec{mode: "1FA", nonce: g.nonce1FA, data: loginOK, cak: g.cak44}, refuse("decrypt"))
	add("resp-1fa-other-unit", "1fa-create-session", "apv", "encrypted to unit-0042's CAK but addressed to unit-0044 (apv)",
		rspec{mode: "1FA", nonce: g.nonce1FA, data: loginOK, unit: g.unit44}, refuse("party"))
	add("resp-2fa-other-session", "2fa-sign-ecdsa", "jwe kid", "sealed in another session (unit-0044's)",
		rspec{mode: "2FA", nonce: g.nonce2FA, data: signOK, session: g.sid2, key: g.skey2}, refuse("unknown_session"))
}

func (g *gen) sequences(f *svFile) {
	send := func(id string, e svExpect) svStep { return svStep{Action: "send", Vector: id, Expect: &e} }
	accept := svExpect{Outcome: "accept"}
	bad := func(code, check, answer string) svExpect {
		st := r2ps.HTTPStatus(code)
		if answer == "envelope" {
			st = 200
		}
		return svExpect{Outcome: "refuse", Code: code, Check: check, Answer: answer, HTTPStatus: st}
	}
	replay := bad(r2ps.CodeIllegalRequestData, "replay", "problem")
	yes, no := true, false
	f.Sequences = []svSequence{
		{ID: "replay-2fa", Description: "the same 2FA request twice: the second is a replay",
			Steps: []svStep{send("2fa-sign-ecdsa", accept), send("2fa-sign-ecdsa", replay)}},
		{ID: "replay-1fa", Description: "the same 1FA request twice: the second is a replay",
			Steps: []svStep{send("1fa-create-session", accept), send("1fa-create-session", replay)}},
		{ID: "replay-fresh-envelope", Description: "2fa-iat-oldest-accepted reuses 2fa-sign-ecdsa's nonce in a new message: still a replay",
			Steps: []svStep{send("2fa-sign-ecdsa", accept), send("2fa-iat-oldest-accepted", replay)}},
		{ID: "refusals-spend-no-nonce", Description: "requests refused before the nonce check share 2fa-sign-ecdsa's nonce and do not spend it",
			Steps: []svStep{
				send("2fa-bad-signature", bad(r2ps.CodeIllegalRequestData, "signature", "problem")),
				send("2fa-wrong-jwe-hash", bad(r2ps.CodeIllegalRequestData, "jwe_hash", "problem")),
				send("2fa-iat-stale", bad(r2ps.CodeIllegalRequestData, "iat_stale", "problem")),
				send("2fa-iat-future", bad(r2ps.CodeIllegalRequestData, "iat_future", "problem")),
				send("2fa-sign-ecdsa", accept)}},
		{ID: "unit-suspended", Description: "a suspended unit is refused inside the envelope after the nonce is spent; once active again, the same message is a replay",
			Steps: []svStep{
				{Action: "set_unit_state", Unit: "unit-0042", State: "suspended"},
				send("2fa-sign-ecdsa", bad(r2ps.CodeAccessDenied, "unit_state", "envelope")),
				{Action: "set_unit_state", Unit: "unit-0042", State: "active"},
				send("2fa-sign-ecdsa", replay)}},
		{ID: "unit-revoked-1fa", Description: "a revoked unit's login is refused inside the envelope",
			Steps: []svStep{
				{Action: "set_unit_state", Unit: "unit-0042", State: "revoked"},
				send("1fa-create-session", bad(r2ps.CodeAccessDenied, "unit_state", "envelope"))}},
		{ID: "enrolment-closed", Description: "a registration while no activation code is open is refused and spends no nonce; once a code is open it is served",
			Steps: []svStep{
				{Action: "set_enrolment", Unit: "unit-0043", Open: &no},
				send("1fa-registration", bad(r2ps.CodeUnauthorized, "enrolment", "problem")),
				{Action: "set_enrolment", Unit: "unit-0043", Open: &yes},
				send("1fa-registration", accept)}},
		{ID: "session-ended", Description: "after the session ends, its requests name no session",
			Steps: []svStep{
				{Action: "end_session", Session: g.sid},
				send("2fa-sign-ecdsa", bad(r2ps.CodeUnauthorized, "unknown_session", "problem"))}},
	}
}
