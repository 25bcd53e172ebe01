package dispatch_test

// Regression tests for the defects of issue 6 that need more than one
// request: each fails on the dispatcher before the fix.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

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
)

// TestSignTaskEachHashOnce: a sign:h1,h2 session signs h1 once and h2 once,
// in any order, and nothing else.
func TestSignTaskEachHashOnce(t *testing.T) {
	g := newRig(t)
	ctx := t.Context()
	w := g.enrol("hsm", "")
	k, err := w.sess.Generate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h1, h2 := sha("h1"), sha("h2")
	s, err := w.c.Login(ctx, []byte("123456"), client.LoginOptions{Task: r2ps.TaskSignPrefix + hex.EncodeToString(h1) + "," + hex.EncodeToString(h2)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sign(ctx, k.KID, h2); err != nil {
		t.Fatalf("h2 first: %v", err)
	}
	if _, err := s.Sign(ctx, k.KID, h2); !client.IsCode(err, r2ps.CodeAccessDenied) {
		t.Fatalf("h2 again: %v, want ACCESS_DENIED", err)
	}
	if _, err := s.Sign(ctx, k.KID, sha("h3")); !client.IsCode(err, r2ps.CodeAccessDenied) {
		t.Fatalf("unlisted hash: %v, want ACCESS_DENIED", err)
	}
	if _, err := s.Sign(ctx, k.KID, h1); err != nil {
		t.Fatalf("h1 after h2: %v", err)
	}
	if _, err := s.Sign(ctx, k.KID, h1); err == nil {
		t.Fatal("h1 twice")
	}
}

// TestKeyKeepsItsContext: a key made in a context that demands sign: tasks
// cannot be used from a session of another context of the same unit.
func TestKeyKeepsItsContext(t *testing.T) {
	g := newRig(t)
	ctx := t.Context()
	w := g.enrol("hsm", "")
	// The same wallet (same CSK and CAK) enrols in "signing" too.
	code, err := g.svc.Units.IssueActivationCode(ctx, w.unit, store.PurposeActivation, 0)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := client.New(client.Config{URL: g.url, Transport: httptransport.New(nil), Unit: w.unit, Context: "signing", SigningKey: w.csk, AgreementKey: w.cak, Server: g.server})
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Enrol(ctx, code.Code, []byte("654321")); err != nil {
		t.Fatal(err)
	}
	signing, err := sc.Login(ctx, []byte("654321"), client.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sk, err := signing.Generate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signing.Sign(ctx, sk.KID, sha("m")); !client.IsCode(err, r2ps.CodeAccessDenied) {
		t.Fatalf("signing context without a task: %v, want ACCESS_DENIED", err)
	}
	hsm, err := w.c.Login(ctx, []byte("123456"), client.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hsm.Sign(ctx, sk.KID, sha("m")); !client.IsCode(err, r2ps.CodeIllegalRequestData) {
		t.Fatalf("a signing key from an hsm session: %v, want ILLEGAL_REQUEST_DATA (no such key)", err)
	}
	if _, err := hsm.ECDH(ctx, sk.KID, w.cak.PublicKey().Bytes()); !client.IsCode(err, r2ps.CodeIllegalRequestData) {
		t.Fatalf("ECDH with a signing key from an hsm session: %v", err)
	}
	if err := hsm.DeleteKey(ctx, sk.KID); !client.IsCode(err, r2ps.CodeIllegalRequestData) {
		t.Fatalf("delete a signing key from an hsm session: %v", err)
	}
	if keys, err := hsm.ListKeys(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("hsm session lists %d keys (%v), want none of the signing context", len(keys), err)
	}
	task, err := sc.Login(ctx, []byte("654321"), client.LoginOptions{Task: r2ps.TaskSignPrefix + hex.EncodeToString(sha("m"))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := task.Sign(ctx, sk.KID, sha("m")); err != nil {
		t.Fatalf("in its own context with the task: %v", err)
	}
}

// TestPINChangeEndsSessions: after a PIN change, neither a session made
// before it nor a login whose KE2 was issued before it works.
func TestPINChangeEndsSessions(t *testing.T) {
	g := newRig(t)
	ctx := t.Context()
	w := g.enrol("hsm", "")
	old := w.sess

	// A login under the old PIN, stopped after KE2.
	conf, _ := pin.Profile{}.Configuration()
	oc, _ := conf.Client()
	ke1, _ := oc.GenerateKE1([]byte("123456"))
	o := g.send(w, forged{mode: r2ps.Mode1FA, typ: r2ps.TypeCreateSession,
		data: r2ps.TFARequest{Protocol: r2ps.ProtocolOPAQUE, State: r2ps.StateEvaluate, PData: ke1.Serialize()}})
	var r1 r2ps.TFAResponse
	if o.enclosed != "" || json.Unmarshal(o.data, &r1) != nil || r1.SessionID == "" {
		t.Fatalf("KE2: %+v", o)
	}

	upd, err := w.c.Login(ctx, []byte("123456"), client.LoginOptions{Task: r2ps.Task2FAUpdate})
	if err != nil {
		t.Fatal(err)
	}
	if err := upd.ChangePIN(ctx, []byte("999999")); err != nil {
		t.Fatal(err)
	}
	if _, err := old.ListKeys(ctx); !client.IsCode(err, r2ps.CodeUnauthorized) {
		t.Fatalf("a session from before the change: %v, want UNAUTHORIZED", err)
	}
	ke2, err := oc.Deserialize.KE2(r1.PData)
	if err != nil {
		t.Fatal(err)
	}
	ke3, _, _, err := oc.GenerateKE3(ke2, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	o = g.send(w, forged{mode: r2ps.Mode1FA, typ: r2ps.TypeCreateSession,
		data: r2ps.TFARequest{Protocol: r2ps.ProtocolOPAQUE, State: r2ps.StateFinalize, PData: ke3.Serialize(), SessionID: r1.SessionID}})
	if o.enclosed != r2ps.CodeUnauthorized {
		t.Fatalf("finishing a login begun under the old PIN: %+v, want UNAUTHORIZED", o)
	}
	if _, err := w.c.Login(ctx, []byte("999999"), client.LoginOptions{}); err != nil {
		t.Fatalf("login with the new PIN: %v", err)
	}
}

// TestSessionDurationOverflow: a huge session_duration is capped, not an
// overflow into a negative TTL and a server error.
func TestSessionDurationOverflow(t *testing.T) {
	g := newRig(t)
	w := g.enrol("hsm", "")
	conf, _ := pin.Profile{}.Configuration()
	oc, _ := conf.Client()
	ke1, _ := oc.GenerateKE1([]byte("123456"))
	o := g.send(w, forged{mode: r2ps.Mode1FA, typ: r2ps.TypeCreateSession,
		data: r2ps.TFARequest{Protocol: r2ps.ProtocolOPAQUE, State: r2ps.StateEvaluate, PData: ke1.Serialize(), SessionDuration: 1 << 62}})
	if o.enclosed != "" || o.status != 200 {
		t.Fatalf("huge session_duration: %+v", o)
	}
}

// TestDeviceOutageIsTryLater: with the HSM gone, a request is answered
// TRY_LATER (503), before and after authentication, never SERVER_ERROR.
func TestDeviceOutageIsTryLater(t *testing.T) {
	g := newRig(t)
	w := g.enrol("hsm", "")
	k, err := w.sess.Generate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := g.dev.Close(); err != nil {
		t.Fatal(err)
	}
	// 2FA: authenticated (no device call), then the signature fails.
	o := g.send(w, forged{mode: r2ps.Mode2FA, typ: r2ps.TypeSignECDSA, data: r2ps.SignRequest{KID: k.KID, TBSHash: sha("m")}})
	if o.problem != r2ps.CodeTryLater && o.enclosed != r2ps.CodeTryLater {
		t.Fatalf("sign with the device closed: %+v", o)
	}
	// 1FA: opening the envelope needs the device.
	o = g.send(w, forged{mode: r2ps.Mode1FA, typ: r2ps.TypeCreateSession, data: r2ps.TFARequest{Protocol: r2ps.ProtocolOPAQUE, State: r2ps.StateEvaluate, PData: []byte("x")}})
	if o.problem != r2ps.CodeTryLater || o.status != 503 {
		t.Fatalf("1FA with the device closed: %+v", o)
	}
}

// TestListKeysPages: hsm_list_keys pages through the unit's keys with after
// and limit, and the key quota bounds how many there are.
func TestListKeysPages(t *testing.T) {
	g := newRig(t)
	w := g.enrol("hsm", "")
	var kids []string
	for range 5 {
		kids = append(kids, mustGenerate(t, w))
	}
	var got []string
	after := ""
	for range 10 {
		o := g.send(w, forged{mode: r2ps.Mode2FA, typ: r2ps.TypeListKeys, data: r2ps.ListKeysRequest{After: after, Limit: 2}})
		var out r2ps.ListKeysResponse
		if o.enclosed != "" || json.Unmarshal(o.data, &out) != nil || len(out.KeyInfo) > 2 {
			t.Fatalf("page after %q: %+v", after, o)
		}
		for _, k := range out.KeyInfo {
			got = append(got, k.KID)
		}
		if out.Next == "" {
			break
		}
		after = out.Next
	}
	if len(got) != 5 {
		t.Fatalf("pages gave %v, want %v", got, kids)
	}
	for i := range kids {
		if got[i] != kids[i] {
			t.Fatalf("pages gave %v, want %v", got, kids)
		}
	}
	o := g.send(w, forged{mode: r2ps.Mode2FA, typ: r2ps.TypeListKeys, data: r2ps.ListKeysRequest{After: "00000000000000000000000000000000"}})
	if o.enclosed != r2ps.CodeIllegalRequestData {
		t.Fatalf("after an unknown kid: %+v", o)
	}
	if keys, err := w.sess.ListKeys(t.Context()); err != nil || len(keys) != 5 {
		t.Fatalf("client ListKeys: %d %v", len(keys), err)
	}
}

// TestKeyQuota: p256_generate beyond the unit's quota is ACCESS_DENIED.
func TestKeyQuota(t *testing.T) {
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.Soft(t), func(o *wscastack.Options) { o.KeyQuota = 2 })
	keys, _ := client.FetchServerKeys(t.Context(), httptransport.New(nil), r.URL)
	g := &rig{t: t, url: r.URL, svc: r.Services, st: r.Store, pins: r.PIN, dev: r.Device, server: keys}
	w := g.enrol("hsm", "")
	mustGenerate(t, w)
	mustGenerate(t, w)
	if _, err := w.sess.Generate(t.Context()); !client.IsCode(err, r2ps.CodeAccessDenied) {
		t.Fatalf("third key over a quota of 2: %v, want ACCESS_DENIED", err)
	}
}

// TestOutcomeMetrics: R2PS outcomes by type and code, and PIN attempts by
// outcome, are counted.
func TestOutcomeMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.Soft(t), func(o *wscastack.Options) { o.Registry = reg })
	keys, _ := client.FetchServerKeys(t.Context(), httptransport.New(nil), r.URL)
	g := &rig{t: t, url: r.URL, svc: r.Services, st: r.Store, pins: r.PIN, dev: r.Device, server: keys}
	w := g.enrol("hsm", "")
	kid := mustGenerate(t, w)
	if _, err := w.sess.Sign(t.Context(), kid, sha("m")); err != nil {
		t.Fatal(err)
	}
	g.send(w, forged{mode: r2ps.Mode2FA, typ: r2ps.TypeSignECDSA, data: r2ps.SignRequest{KID: kid, TBSHash: sha("m")}, jweHash: sha("x")})
	for range pin.DefaultMaxAttempts + 1 {
		w.c.Login(t.Context(), []byte("000000"), client.LoginOptions{})
	}
	for _, c := range []struct {
		metric string
		labels []string
		want   float64
	}{
		{"wsca_r2ps_requests_total", []string{"strict", r2ps.TypeSignECDSA, "OK"}, 1},
		{"wsca_r2ps_requests_total", []string{"", r2ps.TypeSignECDSA, r2ps.CodeIllegalRequestData}, 1},
		// The enrolment's login and the wrong ones (which the client sees
		// itself in KE2 and so never finishes) are admitted and counted.
		{"wsca_pin_attempts_total", []string{"admitted"}, 1 + pin.DefaultMaxAttempts},
		{"wsca_pin_attempts_total", []string{"correct"}, 1},
		{"wsca_pin_attempts_total", []string{"lock"}, 1},
		{"wsca_pin_attempts_total", []string{"refused_locked"}, 1},
	} {
		if got := counter(t, reg, c.metric, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.metric, c.labels, got, c.want)
		}
	}
}

// counter reads one counter from a registry by its label values, in the
// order the metric declares its labels.
func counter(t *testing.T, reg *prometheus.Registry, name string, values []string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(values) {
				continue
			}
			// Labels come sorted by name: compare the values as a set.
			have := map[string]bool{}
			for _, l := range m.GetLabel() {
				have[l.GetValue()] = true
			}
			for _, v := range values {
				if !have[v] {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestResponseKey: with the sealed response key (the default) a signature
// request costs one device signature, with the HSM response key two; both
// answer verifiably, and instances sharing a store share the sealed key.
func TestResponseKey(t *testing.T) {
	dsn := testenv.SQLite(t)
	dev := testdevice.Soft(t)
	for _, mode := range []dispatch.ResponseKey{dispatch.ResponseKeySealed, dispatch.ResponseKeyHSM} {
		t.Run(mode.String(), func(t *testing.T) {
			r := stacktest.Start(t, dsn, dev, func(o *wscastack.Options) { o.ResponseKey = mode })
			keys, err := client.FetchServerKeys(t.Context(), httptransport.New(nil), r.URL)
			if err != nil {
				t.Fatal(err)
			}
			g := &rig{t: t, url: r.URL, svc: r.Services, st: r.Store, pins: r.PIN, dev: r.Device, server: keys}
			w := g.enrol("hsm", "")
			kid := mustGenerate(t, w)
			before := r.Device.Calls()["soft_sign"]
			if _, err := w.sess.Sign(t.Context(), kid, sha("m")); err != nil {
				t.Fatal(err)
			}
			want := uint64(1)
			if mode == dispatch.ResponseKeyHSM {
				want = 2
			}
			if got := r.Device.Calls()["soft_sign"] - before; got != want {
				t.Fatalf("device signatures per request: %d, want %d (calls %v)", got, want, r.Device.Calls())
			}
			again := stacktest.Start(t, dsn, dev, func(o *wscastack.Options) { o.ResponseKey = mode })
			if a, b := r.R2PS.Keys().Keys[1].KeyID, again.R2PS.Keys().Keys[1].KeyID; a != b {
				t.Fatalf("two instances, two response keys: %s %s", a, b)
			}
		})
	}
}

// TestRefusalLogCarriesRequestID: the log line of a refusal names the HTTP
// layer's request id, and never the request's content.
func TestRefusalLogCarriesRequestID(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.Soft(t), func(o *wscastack.Options) { o.Logger = log })
	ctx := dispatch.WithRequestID(t.Context(), "req-0123")
	r.R2PS.Serve(ctx, []byte("not.a.jwe.secret-pin-123456.x"))
	out := buf.String()
	if !strings.Contains(out, "request_id=req-0123") || !strings.Contains(out, "r2ps request refused") {
		t.Fatalf("log: %s", out)
	}
	if strings.Contains(out, "secret-pin-123456") {
		t.Fatalf("the log repeats the request: %s", out)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNewRequires: a dispatcher is not built without each part it uses.
func TestNewRequires(t *testing.T) {
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.Soft(t), nil)
	full := dispatch.Config{Keys: r.Keys, ServerKeys: r.ServerKeys, PIN: r.PIN, Store: r.Store, WSCD: true}
	if _, err := dispatch.New(t.Context(), full); err != nil {
		t.Fatalf("full config: %v", err)
	}
	// A WSCA-only dispatcher has no wallet keys.
	noKeys := full
	noKeys.Keys, noKeys.WSCD = nil, false
	if _, err := dispatch.New(t.Context(), noKeys); err != nil {
		t.Fatalf("no keys, no wscd role: %v", err)
	}
	for name, mut := range map[string]func(*dispatch.Config){
		"no keys":        func(c *dispatch.Config) { c.Keys = nil },
		"wsca, no units": func(c *dispatch.Config) { c.WSCA = true },
		"no server keys": func(c *dispatch.Config) { c.ServerKeys = nil },
		"no PIN server":  func(c *dispatch.Config) { c.PIN = nil },
		"no store":       func(c *dispatch.Config) { c.Store = nil },
	} {
		c := full
		mut(&c)
		if _, err := dispatch.New(t.Context(), c); err == nil {
			t.Errorf("%s: built", name)
		}
	}
}
