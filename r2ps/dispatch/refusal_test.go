package dispatch_test

// The refusal table: a raw wallet that can forge any field of a request
// sends one forged request per row against a real stack over HTTP, and each
// row names the code and where it must come back (a plain problem before
// authentication, inside the envelope after). Removing any one check of the
// authentication path or the policy table makes at least one row fail.

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	wscastack "github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/r2ps/client/httptransport"
	"github.com/wsca/wsca/r2ps/dispatch"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// wallet is an enrolled unit whose keys and session the forger holds.
type wallet struct {
	unit, context string
	csk           *ecdsa.PrivateKey
	cak           *ecdh.PrivateKey
	c             *client.Client
	sess          *client.Session
}

type rig struct {
	t      testing.TB
	url    string
	svc    *wscd.Services
	st     *store.Store
	pins   *pin.Server
	dev    interface{ Close() error }
	server client.ServerKeys
}

func newRig(t *testing.T) *rig { return newRigWith(t, dispatch.CompatOff) }

func newRigWith(t *testing.T, compat dispatch.Compat) *rig {
	t.Helper()
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.Soft(t), func(o *wscastack.Options) { o.Compat = compat })
	keys, err := client.FetchServerKeys(t.Context(), httptransport.New(nil), r.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, url: r.URL, svc: r.Services, st: r.Store, pins: r.PIN, dev: r.Device, server: keys}
}

// enrol makes a unit, enrols a wallet in pinContext and logs it in with
// the given task.
func (g *rig) enrol(pinContext, task string) *wallet {
	g.t.Helper()
	ctx := g.t.Context()
	unit := wscd.NewUnitID()
	if err := g.svc.Units.Create(ctx, unit); err != nil {
		g.t.Fatal(err)
	}
	code, err := g.svc.Units.IssueActivationCode(ctx, unit, store.PurposeActivation, 0)
	if err != nil {
		g.t.Fatal(err)
	}
	w := &wallet{unit: unit, context: pinContext}
	w.csk, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	w.cak, _ = ecdh.P256().GenerateKey(rand.Reader)
	w.c, err = client.New(client.Config{URL: g.url, Transport: httptransport.New(nil), Unit: unit, Context: pinContext, SigningKey: w.csk, AgreementKey: w.cak, Server: g.server})
	if err != nil {
		g.t.Fatal(err)
	}
	if err := w.c.Enrol(ctx, code.Code, []byte("123456")); err != nil {
		g.t.Fatal(err)
	}
	if w.sess, err = w.c.Login(ctx, []byte("123456"), client.LoginOptions{Task: task}); err != nil {
		g.t.Fatal(err)
	}
	return w
}

// forged is one request as the forger builds it; the zero value of every
// override means "as an honest wallet would".
type forged struct {
	mode      r2ps.Mode // Mode1FA or Mode2FA
	typ       string
	data      any
	iat       time.Time
	nonce     []byte
	jweHash   []byte // nil: the right one
	signer    *ecdsa.PrivateKey
	kid       string
	embed     bool // put the signer's key in the JWS header
	sessionID string
	sessKey   []byte
	clientID  string
	tamper    func(body []byte) []byte
}

// outcome is what came back: a problem's code and status, or the code
// inside the envelope ("" for success).
type outcome struct {
	status   int
	problem  string
	enclosed string
	data     json.RawMessage
	body     []byte
}

func (g *rig) send(w *wallet, f forged) outcome {
	g.t.Helper()
	body := g.build(w, &f)
	return g.post(w, f, body)
}

// build makes the body of a forged request, filling in f's defaults.
func (g *rig) build(w *wallet, f *forged) []byte {
	g.t.Helper()
	if f.iat.IsZero() {
		f.iat = time.Now()
	}
	if f.nonce == nil {
		f.nonce = make([]byte, 16)
		rand.Read(f.nonce)
	}
	if f.signer == nil {
		f.signer = w.csk
	}
	if f.kid == "" {
		f.kid = r2ps.Thumbprint(&f.signer.PublicKey)
	}
	if f.sessionID == "" && w.sess != nil {
		f.sessionID, f.sessKey = w.sess.ID, w.sess.Key
	}
	if f.clientID == "" {
		f.clientID = w.unit
	}
	data, err := json.Marshal(f.data)
	if err != nil {
		g.t.Fatal(err)
	}
	sign := func(protected string) ([]byte, error) {
		h := f.jweHash
		if h == nil {
			h = r2ps.JWEHash(protected)
		}
		payload, _ := json.Marshal(map[string]any{
			"ver": "1.0", "nonce": f.nonce, "iat": f.iat.Unix(), "type": f.typ, "jwe_hash": h, "data": json.RawMessage(data),
		})
		var jwk *jose.JSONWebKey
		if f.embed {
			jwk = &jose.JSONWebKey{Key: &f.signer.PublicKey}
		}
		return r2ps.SignJWS(payload, r2ps.TypRequest, f.kid, f.signer, jwk)
	}
	var body []byte
	if f.mode == r2ps.Mode1FA {
		agree, _ := g.server.Agreement.ECDH()
		body, err = r2ps.SealRequest1FA(sign, agree, g.server.AgreementKID, f.clientID, w.context, nil)
	} else {
		jws, serr := sign(r2ps.ProtectedHeader2FA(f.sessionID))
		if serr != nil {
			g.t.Fatal(serr)
		}
		body, err = r2ps.Seal2FA(jws, f.sessKey, f.sessionID, nil)
	}
	if err != nil {
		g.t.Fatal(err)
	}
	if f.tamper != nil {
		body = f.tamper(body)
	}
	return body
}

func (g *rig) post(w *wallet, f forged, body []byte) outcome {
	g.t.Helper()
	resp, err := http.Post(g.url+"/r2ps", "application/jose", bytes.NewReader(body))
	if err != nil && len(body) > r2ps.MaxMessageSize {
		// The server answers 413 without reading a body that declares more
		// than it takes and closes the connection; the client may see the
		// reset before the answer.
		return outcome{problem: "HTTP", body: body}
	}
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	o := outcome{status: resp.StatusCode, body: body}
	if resp.StatusCode != http.StatusOK {
		var p struct {
			Code string `json:"code"`
		}
		json.Unmarshal(b, &p)
		o.problem = p.Code
		if o.problem == "" {
			o.problem = "HTTP"
		}
		return o
	}
	var jws []byte
	if f.mode == r2ps.Mode1FA {
		env, err := r2ps.OpenResponse1FA(b, w.cak)
		if err != nil {
			g.t.Fatalf("open 1FA response: %v", err)
		}
		jws = env.JWS
	} else {
		env, err := r2ps.Open2FA(b, func(string) ([]byte, error) { return f.sessKey, nil })
		if err != nil {
			g.t.Fatalf("open 2FA response: %v", err)
		}
		jws = env.JWS
	}
	payload, _, err := r2ps.VerifyJWS(jws, r2ps.TypResponse, func(string, *jose.JSONWebKey) (*ecdsa.PublicKey, error) { return g.server.Signing, nil })
	if err != nil {
		g.t.Fatalf("response JWS: %v", err)
	}
	res, err := r2ps.DecodeResponse(payload)
	if err != nil {
		g.t.Fatal(err)
	}
	var fl r2ps.Failure
	json.Unmarshal(res.Data, &fl)
	o.enclosed, o.data = fl.Error, res.Data
	return o
}

func sha(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// TestRefusals is the table. Each row forges exactly one field (or breaks
// one rule) of an otherwise honest request.
func TestRefusals(t *testing.T) {
	g := newRig(t)
	ctx := t.Context()
	a := g.enrol("hsm", "")
	b := g.enrol("hsm", "")
	sig := g.enrol("signing", "")
	upd := g.enrol("hsm", r2ps.Task2FAUpdate)
	key, err := a.sess.Generate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sigKey, err := g.enrol("signing", "sign:"+hex.EncodeToString(sha("x"))).sess.Generate(ctx)
	if err == nil {
		t.Fatalf("generate in a sign: session: want refusal, got %v", sigKey.KID)
	}
	signReq := r2ps.SignRequest{KID: key.KID, TBSHash: sha("m")}
	ok2FA := func(mut func(*forged)) forged {
		f := forged{mode: r2ps.Mode2FA, typ: r2ps.TypeSignECDSA, data: signReq}
		if mut != nil {
			mut(&f)
		}
		return f
	}
	conf, _ := pin.Profile{}.Configuration()
	oc, _ := conf.Client()
	ke1, _ := oc.GenerateKE1([]byte("123456"))
	loginData := r2ps.TFARequest{Protocol: r2ps.ProtocolOPAQUE, State: r2ps.StateEvaluate, PData: ke1.Serialize()}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	// A unit with an open enrolment, and an honest registration request.
	opening := &wallet{unit: wscd.NewUnitID(), context: "hsm"}
	if err := g.svc.Units.Create(ctx, opening.unit); err != nil {
		t.Fatal(err)
	}
	if _, err := g.svc.Units.IssueActivationCode(ctx, opening.unit, store.PurposeActivation, 0); err != nil {
		t.Fatal(err)
	}
	opening.cak, _ = ecdh.P256().GenerateKey(rand.Reader)
	roc, _ := conf.Client()
	regReq, _ := roc.RegistrationInit([]byte("123456"))
	regData := r2ps.TFARequest{Protocol: r2ps.ProtocolOPAQUE, State: r2ps.StateEvaluate, PData: regReq.Serialize(),
		CAK: &jose.JSONWebKey{Key: mustECDSA(t, opening.cak)}}
	if o := g.send(opening, forged{mode: r2ps.Mode1FA, typ: r2ps.Type2FARegistration, data: regData, signer: other, embed: true}); o.enclosed != "" || o.status != 200 {
		t.Fatalf("baseline registration evaluate refused: %+v", o)
	}

	// Session tickets (docs/protocol.md §2): one modified, one of a
	// session that was ended, one of a session whose unit enrolled a new
	// CSK since (which ends its sessions).
	tampered := []byte(a.sess.ID)
	if i := len(tampered) / 2; tampered[i] == 'A' {
		tampered[i] = 'B'
	} else {
		tampered[i] = 'A'
	}
	ended := g.enrol("hsm", "")
	if err := g.pins.End(ctx, ended.sess.ID); err != nil {
		t.Fatal(err)
	}
	replaced := g.enrol("hsm", "")
	replaceCSK(t, g, replaced)

	replayed := g.send(a, ok2FA(nil))
	if replayed.enclosed != "" || replayed.status != 200 {
		t.Fatalf("baseline signature refused: %+v", replayed)
	}

	type want struct{ problem, enclosed string }
	rows := []struct {
		name string
		w    *wallet
		f    forged
		raw  []byte // sent as it is instead of f
		want want
	}{
		{"replay", a, ok2FA(nil), replayed.body, want{problem: r2ps.CodeIllegalRequestData}},
		{"stale iat", a, ok2FA(func(f *forged) { f.iat = time.Now().Add(-10 * time.Minute) }), nil, want{problem: r2ps.CodeIllegalRequestData}},
		{"future iat", a, ok2FA(func(f *forged) { f.iat = time.Now().Add(10 * time.Minute) }), nil, want{problem: r2ps.CodeIllegalRequestData}},
		{"wrong jwe_hash", a, ok2FA(func(f *forged) { f.jweHash = sha("other header") }), nil, want{problem: r2ps.CodeIllegalRequestData}},
		{"short nonce", a, ok2FA(func(f *forged) { f.nonce = []byte("short") }), nil, want{problem: r2ps.CodeIllegalRequestData}},
		{"foreign CSK (another unit's)", a, ok2FA(func(f *forged) { f.signer = b.csk }), nil, want{problem: r2ps.CodeIllegalRequestData}},
		{"unregistered key", a, ok2FA(func(f *forged) { f.signer = other }), nil, want{problem: r2ps.CodeIllegalRequestData}},
		{"signed with the CAK (usage enc)", a, ok2FA(func(f *forged) { f.signer = cakAsSigner(t, a.cak) }), nil, want{problem: r2ps.CodeIllegalRequestData}},
		{"self-signed, kid not the key's thumbprint", opening, forged{mode: r2ps.Mode1FA, typ: r2ps.Type2FARegistration, data: regData, signer: other, embed: true, kid: "not-the-thumbprint"}, nil, want{problem: r2ps.CodeIllegalRequestData}},
		{"self-signed 2FA request", a, ok2FA(func(f *forged) { f.signer, f.embed = other, true }), nil, want{problem: r2ps.CodeIllegalRequestData}},
		{"self-signed with the registered CSK", a, ok2FA(func(f *forged) { f.embed = true }), nil, want{problem: r2ps.CodeIllegalRequestData}},
		{"self-signed create_session", a, forged{mode: r2ps.Mode1FA, typ: r2ps.TypeCreateSession, data: loginData, signer: other, embed: true}, nil, want{problem: r2ps.CodeIllegalRequestData}},
		{"registration not self-signed", a, forged{mode: r2ps.Mode1FA, typ: r2ps.Type2FARegistration, data: loginData}, nil, want{problem: r2ps.CodeIllegalRequestData}},
		{"self-signed registration, no enrolment open", a, forged{mode: r2ps.Mode1FA, typ: r2ps.Type2FARegistration, data: loginData, signer: other, embed: true}, nil, want{problem: r2ps.CodeUnauthorized}},
		{"wrong mode: sign in 1FA", a, forged{mode: r2ps.Mode1FA, typ: r2ps.TypeSignECDSA, data: signReq}, nil, want{problem: r2ps.CodeIllegalState}},
		{"wrong mode: create_session in 2FA", a, forged{mode: r2ps.Mode2FA, typ: r2ps.TypeCreateSession, data: loginData}, nil, want{problem: r2ps.CodeIllegalState}},
		{"1FA for another unit (apu)", a, forged{mode: r2ps.Mode1FA, typ: r2ps.TypeCreateSession, data: loginData, clientID: b.unit}, nil, want{problem: r2ps.CodeIllegalRequestData}},
		{"unknown session", a, ok2FA(func(f *forged) { f.sessionID, f.sessKey = strings.Repeat("A", 43), sha("k") }), nil, want{problem: r2ps.CodeUnauthorized}},
		{"tampered session ticket", a, ok2FA(func(f *forged) { f.sessionID, f.sessKey = string(tampered), a.sess.Key }), nil, want{problem: r2ps.CodeUnauthorized}},
		{"ticket of an ended session", ended, ok2FA(func(f *forged) { f.data = r2ps.ListKeysRequest{}; f.typ = r2ps.TypeListKeys }), nil, want{problem: r2ps.CodeUnauthorized}},
		{"ticket after CSK replacement", replaced, ok2FA(func(f *forged) { f.data = r2ps.ListKeysRequest{}; f.typ = r2ps.TypeListKeys }), nil, want{problem: r2ps.CodeUnauthorized}},
		{"session of another unit", a, ok2FA(func(f *forged) { f.sessionID, f.sessKey = b.sess.ID, b.sess.Key }), nil, want{problem: r2ps.CodeIllegalRequestData}},
		{"bad signature", a, ok2FA(func(f *forged) {
			f.tamper = nil
		}), badSignature(t, g, a, ok2FA(nil)), want{problem: r2ps.CodeIllegalRequestData}},
		{"unsupported type", a, ok2FA(func(f *forged) { f.typ = "hsm_ecdsa" }), nil, want{problem: r2ps.CodeUnsupportedRequestType}},
		{"oversized body", a, forged{}, bytes.Repeat([]byte("."), 2<<20), want{problem: "HTTP"}},
		{"missing sign: task in a task context", sig, forged{mode: r2ps.Mode2FA, typ: r2ps.TypeSignECDSA, data: r2ps.SignRequest{KID: mustGenerate(t, sig), TBSHash: sha("m")}}, nil, want{enclosed: r2ps.CodeAccessDenied}},
		{"2fa_update without its task", a, ok2FA(func(f *forged) {
			f.typ, f.data = r2ps.Type2FAUpdate, r2ps.TFARequest{Protocol: r2ps.ProtocolOPAQUE, State: r2ps.StateEvaluate, PData: ke1.Serialize()}
		}), nil, want{enclosed: r2ps.CodeAccessDenied}},
		{"signature in a 2fa_update session", upd, forged{mode: r2ps.Mode2FA, typ: r2ps.TypeListKeys, data: r2ps.ListKeysRequest{}}, nil, want{enclosed: r2ps.CodeAccessDenied}},
		{"another unit's key", b, ok2FA(nil), nil, want{enclosed: r2ps.CodeIllegalRequestData}},
		{"bad point", a, ok2FA(func(f *forged) {
			f.typ, f.data = r2ps.TypeAgreeECDH, r2ps.ECDHRequest{KID: key.KID, PublicKey: append([]byte{4}, bytes.Repeat([]byte{1}, 64)...)}
		}), nil, want{enclosed: r2ps.CodeIllegalRequestData}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			g.t = t
			var o outcome
			if row.raw != nil {
				o = g.post(row.w, row.f, row.raw)
			} else {
				o = g.send(row.w, row.f)
			}
			if o.problem != row.want.problem || o.enclosed != row.want.enclosed {
				t.Fatalf("got problem %q enclosed %q (HTTP %d), want problem %q enclosed %q",
					o.problem, o.enclosed, o.status, row.want.problem, row.want.enclosed)
			}
		})
	}
	g.t = t

	// Unit states and the PIN lock, which change the unit: last. The state
	// is set in the store alone, so that the sessions an operator's
	// suspension would also end are still there and the check of the state
	// itself is what refuses.
	for _, st := range []store.UnitState{store.UnitSuspended, store.UnitRevoked} {
		w := g.enrol("hsm", "")
		if err := g.st.SetUnitState(ctx, w.unit, st, time.Now()); err != nil {
			t.Fatal(err)
		}
		if o := g.send(w, forged{mode: r2ps.Mode2FA, typ: r2ps.TypeListKeys, data: r2ps.ListKeysRequest{}}); o.enclosed != r2ps.CodeAccessDenied {
			t.Fatalf("%s unit, 2FA: %+v", st, o)
		}
		if o := g.send(w, forged{mode: r2ps.Mode1FA, typ: r2ps.TypeCreateSession, data: loginData}); o.enclosed != r2ps.CodeAccessDenied {
			t.Fatalf("%s unit, login: %+v", st, o)
		}
	}
	locked := g.enrol("hsm", "")
	for range pin.DefaultMaxAttempts {
		if _, err := locked.c.Login(ctx, []byte("000000"), client.LoginOptions{}); !client.IsCode(err, r2ps.CodeUnauthorized) {
			t.Fatalf("wrong PIN: %v", err)
		}
	}
	if o := g.send(locked, forged{mode: r2ps.Mode1FA, typ: r2ps.TypeCreateSession, data: loginData}); o.enclosed != r2ps.CodeAccessDenied {
		t.Fatalf("locked PIN: %+v", o)
	}
	// A refusal before authentication spends no attempt: a foreign CSK
	// asking to log in leaves the counter of a fresh unit at zero.
	fresh := g.enrol("hsm", "")
	g.send(fresh, forged{mode: r2ps.Mode1FA, typ: r2ps.TypeCreateSession, data: loginData, signer: other, kid: r2ps.Thumbprint(&fresh.csk.PublicKey)})
	if at, err := g.pins.Attempts(ctx, fresh.unit, "hsm"); err != nil || at.Failures != 0 {
		t.Fatalf("attempts after a forged login: %+v %v", at, err)
	}
}

func mustECDSA(t *testing.T, k *ecdh.PrivateKey) *ecdsa.PublicKey {
	t.Helper()
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), k.PublicKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// cakAsSigner turns the wallet's agreement key into an ECDSA signer, as
// an attacker who holds it could.
func cakAsSigner(t *testing.T, k *ecdh.PrivateKey) *ecdsa.PrivateKey {
	t.Helper()
	p, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), k.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustGenerate(t *testing.T, w *wallet) string {
	t.Helper()
	k, err := w.sess.Generate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return k.KID
}

// badSignature builds an honest 2FA request whose JWS signature has one
// bit flipped, re-sealed so that the envelope still opens.
func badSignature(t *testing.T, g *rig, w *wallet, f forged) []byte {
	t.Helper()
	payload, _ := json.Marshal(map[string]any{
		"ver": "1.0", "nonce": bytes.Repeat([]byte{7}, 16), "iat": time.Now().Unix(), "type": f.typ,
		"jwe_hash": r2ps.JWEHash(r2ps.ProtectedHeader2FA(w.sess.ID)), "data": f.data,
	})
	jws, err := r2ps.SignJWS(payload, r2ps.TypRequest, r2ps.Thumbprint(&w.csk.PublicKey), w.csk, nil)
	if err != nil {
		t.Fatal(err)
	}
	last := bytes.LastIndexByte(jws, '.')
	c := []byte("A")
	if jws[last+1] == 'A' {
		c = []byte("B")
	}
	jws = append(append(jws[:last+1:last+1], c...), jws[last+2:]...)
	body, err := r2ps.Seal2FA(jws, w.sess.Key, w.sess.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// replaceCSK enrols w's unit again in its context with a new CSK and CAK
// (a PIN reset), as the unit's owner would; w keeps its old keys and
// session.
func replaceCSK(t *testing.T, g *rig, w *wallet) {
	t.Helper()
	ctx := t.Context()
	code, err := g.svc.Units.IssueActivationCode(ctx, w.unit, store.PurposePINReset, 0)
	if err != nil {
		t.Fatal(err)
	}
	csk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cak, _ := ecdh.P256().GenerateKey(rand.Reader)
	c, err := client.New(client.Config{URL: g.url, Transport: httptransport.New(nil), Unit: w.unit, Context: w.context, SigningKey: csk, AgreementKey: cak, Server: g.server})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Enrol(ctx, code.Code, []byte("654321")); err != nil {
		t.Fatal(err)
	}
}

// TestTicketRefusedBeforeStore: a modified session ticket is refused
// without the store (here closed), where an intact one needs it.
func TestTicketRefusedBeforeStore(t *testing.T) {
	g := newRig(t)
	a := g.enrol("hsm", "")
	raw, err := base64.RawURLEncoding.DecodeString(a.sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 1
	id := base64.RawURLEncoding.EncodeToString(raw)
	if err := g.st.Close(); err != nil {
		t.Fatal(err)
	}
	f := forged{mode: r2ps.Mode2FA, typ: r2ps.TypeListKeys, data: r2ps.ListKeysRequest{}}
	if o := g.send(a, f); o.problem != r2ps.CodeTryLater {
		t.Fatalf("intact ticket, store closed: %+v, want TRY_LATER", o)
	}
	f.sessionID, f.sessKey = id, a.sess.Key
	if o := g.send(a, f); o.problem != r2ps.CodeUnauthorized {
		t.Fatalf("modified ticket, store closed: %+v, want UNAUTHORIZED", o)
	}
}
