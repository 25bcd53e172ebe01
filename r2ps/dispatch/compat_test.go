package dispatch_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	wscastack "github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/dispatch"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

type stack struct {
	d    *dispatch.Dispatcher
	st   *store.Store
	svc  *wscd.Services
	pins *pin.Server
	ssk  *ecdsa.PublicKey
}

func newStack(t *testing.T) stack {
	t.Helper()
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.Soft(t), func(o *wscastack.Options) { o.Compat = dispatch.CompatBearer })
	var ssk *ecdsa.PublicKey
	for _, k := range r.R2PS.Keys().Keys {
		if k.Use == "sig" {
			ssk = k.Key.(*ecdsa.PublicKey)
		}
	}
	return stack{d: r.R2PS, st: r.Store, svc: r.Services, pins: r.PIN, ssk: ssk}
}

// sirosClient speaks the go-r2ps-service body as the SIROS clients do:
// a bare JWS, kid = client_id, unpadded base64url, legacy member names.
type sirosClient struct {
	t    *testing.T
	s    stack
	unit string
	csk  *ecdsa.PrivateKey
	sess string
}

var b64u = base64.RawURLEncoding

// send signs a go-r2ps-service payload and returns the HTTP status and the
// response payload (verified with the server's signing key) or error body.
func (c *sirosClient) send(typ string, data any, embed bool) (int, map[string]any, []byte) {
	c.t.Helper()
	nonce := make([]byte, 16)
	rand.Read(nonce)
	p := map[string]any{"ver": "1.0", "nonce": b64u.EncodeToString(nonce), "iat": time.Now().Unix(),
		"client_id": c.unit, "context": "hsm", "type": typ, "data": data}
	if c.sess != "" {
		p["2fa_session_id"] = c.sess
	}
	payload, _ := json.Marshal(p)
	kid := c.unit
	var jwk *jose.JSONWebKey
	if embed {
		kid = r2ps.Thumbprint(&c.csk.PublicKey)
		jwk = &jose.JSONWebKey{Key: &c.csk.PublicKey, KeyID: kid}
	}
	jws, err := r2ps.SignJWS(payload, r2ps.TypRequest, kid, c.csk, jwk)
	if err != nil {
		c.t.Fatal(err)
	}
	rep := c.s.d.Serve(context.Background(), jws)
	if rep.Status != http.StatusOK {
		return rep.Status, nil, jws
	}
	out, _, err := r2ps.VerifyJWS(rep.Body, r2ps.TypResponse, func(string, *jose.JSONWebKey) (*ecdsa.PublicKey, error) { return c.s.ssk, nil })
	if err != nil {
		c.t.Fatalf("response JWS: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		c.t.Fatal(err)
	}
	if m["nonce"] != b64u.EncodeToString(nonce) {
		c.t.Fatalf("nonce not echoed verbatim: %v", m["nonce"])
	}
	return rep.Status, m, jws
}

// TestCompatFlow runs enrolment, login, key generation and signing in the
// go-r2ps-service body, with the old type names.
func TestCompatFlow(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	unit := "siros-unit-1"
	if err := s.svc.Units.Create(ctx, unit); err != nil {
		t.Fatal(err)
	}
	code, err := s.svc.Units.IssueActivationCode(ctx, unit, store.PurposeActivation, 0)
	if err != nil {
		t.Fatal(err)
	}
	csk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := &sirosClient{t: t, s: s, unit: unit, csk: csk}
	conf, _ := pin.Profile{}.Configuration()

	// Registration, with 2fa_mode and request (the legacy names).
	oc, _ := conf.Client()
	regReq, _ := oc.RegistrationInit([]byte("123456"))
	st, resp, _ := c.send("2fa_registration", map[string]any{"2fa_mode": "opaque", "state": "evaluate", "request": b64u.EncodeToString(regReq.Serialize())}, true)
	if st != 200 {
		t.Fatalf("registration evaluate: %d", st)
	}
	data := resp["data"].(map[string]any)
	if data["p_data"] != data["response"] {
		t.Fatal("p_data and response differ")
	}
	raw, err := base64.URLEncoding.DecodeString(data["p_data"].(string))
	if err != nil {
		t.Fatalf("p_data is not padded base64url: %v", err)
	}
	rr, err := oc.Deserialize.RegistrationResponse(raw)
	if err != nil {
		t.Fatal(err)
	}
	rec, _, _ := oc.RegistrationFinalize(rr, nil, nil)
	st, resp, _ = c.send("2fa_registration", map[string]any{"protocol": "opaque", "state": "finalize",
		"p_data": b64u.EncodeToString(rec.Serialize()), "authorization": b64u.EncodeToString([]byte(code.Code))}, true)
	if st != 200 || resp["data"].(map[string]any)["message"] != "success" {
		t.Fatalf("registration finalize: %d %v", st, resp)
	}

	// Login with the old type name 2fa_authenticate.
	lc, _ := conf.Client()
	ke1, _ := lc.GenerateKE1([]byte("123456"))
	st, resp, _ = c.send("2fa_authenticate", map[string]any{"protocol": "opaque", "state": "evaluate", "p_data": b64u.EncodeToString(ke1.Serialize())}, false)
	if st != 200 {
		t.Fatalf("login evaluate: %d", st)
	}
	data = resp["data"].(map[string]any)
	c.sess = data["2fa_session_id"].(string)
	raw, _ = base64.URLEncoding.DecodeString(data["p_data"].(string))
	ke2, err := lc.Deserialize.KE2(raw)
	if err != nil {
		t.Fatal(err)
	}
	ke3, _, _, err := lc.GenerateKE3(ke2, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, resp, _ = c.send("2fa_authenticate", map[string]any{"protocol": "opaque", "state": "finalize", "p_data": b64u.EncodeToString(ke3.Serialize())}, false)
	if st != 200 || resp["data"].(map[string]any)["message"] != "authenticated" {
		t.Fatalf("login finalize: %d %v", st, resp)
	}

	// Key generation and signing (hsm_ecdsa, standard base64 hash).
	st, resp, _ = c.send("p256_generate", map[string]any{"curve": "P-256"}, false)
	if st != 200 {
		t.Fatalf("generate: %d", st)
	}
	kid := resp["data"].(map[string]any)["kid"].(string)
	h := sha256.Sum256([]byte("compat"))
	st, resp, signed := c.send("hsm_ecdsa", map[string]any{"kid": kid, "tbs_hash": base64.StdEncoding.EncodeToString(h[:])}, false)
	if st != 200 {
		t.Fatalf("sign: %d", st)
	}
	der, err := base64.URLEncoding.DecodeString(resp["data"].(string))
	if err != nil {
		t.Fatalf("signature is not a padded base64url string: %v", err)
	}
	k, err := s.svc.Keys.PublicKey(ctx, unit, kid)
	if err != nil || !ecdsa.VerifyASN1(k.Public, h[:], der) {
		t.Fatalf("compat signature does not verify: %v", err)
	}

	// Replay is refused in the go-r2ps-service error shape.
	rep := s.d.Serve(ctx, signed)
	var e map[string]string
	json.Unmarshal(rep.Body, &e)
	if rep.Status != 400 || e["error_code"] != r2ps.CodeIllegalRequestData {
		t.Fatalf("replay: %d %s", rep.Status, rep.Body)
	}

	// Another key claiming the unit is refused.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	impostor := &sirosClient{t: t, s: s, unit: unit, csk: other, sess: c.sess}
	if st, _, _ := impostor.send("hsm_list_keys", map[string]any{}, false); st != 400 {
		t.Fatalf("foreign key: %d", st)
	}
	// A session id is not a bearer token: wrong unit in the payload.
	mallory := &sirosClient{t: t, s: s, unit: "someone-else", csk: csk, sess: c.sess}
	if st, _, _ := mallory.send("hsm_list_keys", map[string]any{}, false); st == 200 {
		t.Fatal("a session was usable under another client_id")
	}

}

// compatLogin enrols unit with a self-signed compat registration and an
// activation code, logs in with OPAQUE and returns the client in its
// session.
func compatLogin(t *testing.T, s stack, unit string) *sirosClient {
	t.Helper()
	ctx := context.Background()
	if err := s.svc.Units.Create(ctx, unit); err != nil {
		t.Fatal(err)
	}
	code, err := s.svc.Units.IssueActivationCode(ctx, unit, store.PurposeActivation, 0)
	if err != nil {
		t.Fatal(err)
	}
	csk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := &sirosClient{t: t, s: s, unit: unit, csk: csk}
	conf, _ := pin.Profile{}.Configuration()
	oc, _ := conf.Client()
	regReq, _ := oc.RegistrationInit([]byte("123456"))
	st, resp, _ := c.send("2fa_registration", map[string]any{"protocol": "opaque", "state": "evaluate", "p_data": b64u.EncodeToString(regReq.Serialize())}, true)
	if st != 200 {
		t.Fatalf("registration evaluate: %d", st)
	}
	raw, _ := base64.URLEncoding.DecodeString(resp["data"].(map[string]any)["p_data"].(string))
	rr, err := oc.Deserialize.RegistrationResponse(raw)
	if err != nil {
		t.Fatal(err)
	}
	rec, _, _ := oc.RegistrationFinalize(rr, nil, nil)
	if st, _, _ = c.send("2fa_registration", map[string]any{"protocol": "opaque", "state": "finalize",
		"p_data": b64u.EncodeToString(rec.Serialize()), "authorization": b64u.EncodeToString([]byte(code.Code))}, true); st != 200 {
		t.Fatalf("registration finalize: %d", st)
	}
	lc, _ := conf.Client()
	ke1, _ := lc.GenerateKE1([]byte("123456"))
	st, resp, _ = c.send("create_session", map[string]any{"protocol": "opaque", "state": "evaluate", "p_data": b64u.EncodeToString(ke1.Serialize())}, false)
	if st != 200 {
		t.Fatalf("login evaluate: %d", st)
	}
	data := resp["data"].(map[string]any)
	raw, _ = base64.URLEncoding.DecodeString(data["p_data"].(string))
	ke2, err := lc.Deserialize.KE2(raw)
	if err != nil {
		t.Fatal(err)
	}
	ke3, _, _, err := lc.GenerateKE3(ke2, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.sess = data["2fa_session_id"].(string)
	if st, _, _ = c.send("create_session", map[string]any{"protocol": "opaque", "state": "finalize", "p_data": b64u.EncodeToString(ke3.Serialize())}, false); st != 200 {
		t.Fatalf("login finalize: %d", st)
	}
	return c
}

// TestCompatStrictOnlyTypes: a compat client in a PIN session sends the
// strict profile's types, which have no go-r2ps-service answer shape. Each
// is refused UNSUPPORTED_REQUEST_TYPE before it runs: nothing is stored,
// the unit is not suspended or revoked. (They ran, and the client got
// SERVER_ERROR.)
func TestCompatStrictOnlyTypes(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	c := compatLogin(t, s, "siros-unit-strict-only")
	for _, tc := range []struct {
		typ  string
		data map[string]any
	}{
		{r2ps.TypePseudonymPut, map[string]any{"slot": "a", "value": b64u.EncodeToString([]byte("secret"))}},
		{r2ps.TypeUnitSuspend, map[string]any{}},
		{r2ps.TypeUnitRevoke, map[string]any{"confirm": c.unit}},
		{r2ps.TypeUnitInfo, map[string]any{}},
		{r2ps.TypeKeyAttestation, map[string]any{"keys_to_attest": []string{"00000000000000000000000000000000"}}},
		{r2ps.TypeSECDSANonce, map[string]any{}},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			if st, _, _ := c.send(tc.typ, tc.data, false); st != http.StatusUnsupportedMediaType {
				t.Fatalf("status %d, want 415", st)
			}
			if u, err := s.svc.Units.Get(ctx, c.unit); err != nil || u.State != store.UnitActive {
				t.Fatalf("unit %v %v", u.State, err)
			}
		})
	}
	// The session still serves what the profile has, and no slot was made.
	if st, _, _ := c.send(r2ps.TypeListKeys, map[string]any{}, false); st != 200 {
		t.Fatalf("list keys: %d", st)
	}
	if slots, err := s.st.ListPseudonyms(ctx, c.unit); err != nil || len(slots) != 0 {
		t.Fatalf("a compat pseudonym_put stored its value: %d %v", len(slots), err)
	}
}
