package dispatch_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	wscastack "github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/r2ps/client/httptransport"
	"github.com/wsca/wsca/server"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wsca"
)

// rigWithRoles is a rig whose stack serves only the given roles; mod, if
// set, changes its options further.
func rigWithRoles(t *testing.T, roles server.Roles, mod ...func(*wscastack.Options)) *rig {
	t.Helper()
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.Soft(t), func(o *wscastack.Options) {
		o.Roles = roles
		for _, m := range mod {
			m(o)
		}
	})
	keys, err := client.FetchServerKeys(t.Context(), httptransport.New(nil), r.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, url: r.URL, svc: r.Services, st: r.Store, pins: r.PIN, dev: r.Device, server: keys}
}

// TestWSCARefusals is the refusal table of the WSCA service types: one
// forged field or broken rule per row.
func TestWSCARefusals(t *testing.T) {
	g := newRig(t)
	a := g.enrol("hsm", "")
	b := g.enrol("hsm", "")
	signSess := g.enrol("signing", "sign:"+hex.EncodeToString(sha("x")))
	upd := g.enrol("hsm", r2ps.Task2FAUpdate)
	put := r2ps.PseudonymPutRequest{Slot: "rp.example", Value: []byte("v")}
	if o := g.send(a, forged{mode: r2ps.Mode2FA, typ: r2ps.TypePseudonymPut, data: put}); o.status != 200 || o.enclosed != "" {
		t.Fatalf("baseline pseudonym_put refused: %+v", o)
	}

	type want struct{ problem, enclosed string }
	rows := []struct {
		name string
		w    *wallet
		f    forged
		want want
	}{
		{"wrong mode: pseudonym_put in 1FA", a, forged{mode: r2ps.Mode1FA, typ: r2ps.TypePseudonymPut, data: put}, want{problem: r2ps.CodeIllegalState}},
		{"wrong mode: wallet_unit_revoke in 1FA", a, forged{mode: r2ps.Mode1FA, typ: r2ps.TypeUnitRevoke, data: r2ps.UnitRevokeRequest{Confirm: a.unit}}, want{problem: r2ps.CodeIllegalState}},
		{"pseudonym_put in a sign: session", signSess, forged{mode: r2ps.Mode2FA, typ: r2ps.TypePseudonymPut, data: put}, want{enclosed: r2ps.CodeAccessDenied}},
		{"wallet_unit_revoke in a 2fa_update session", upd, forged{mode: r2ps.Mode2FA, typ: r2ps.TypeUnitRevoke, data: r2ps.UnitRevokeRequest{Confirm: upd.unit}}, want{enclosed: r2ps.CodeAccessDenied}},
		{"revoke confirming another unit", a, forged{mode: r2ps.Mode2FA, typ: r2ps.TypeUnitRevoke, data: r2ps.UnitRevokeRequest{Confirm: b.unit}}, want{enclosed: r2ps.CodeIllegalRequestData}},
		{"revoke without confirm", a, forged{mode: r2ps.Mode2FA, typ: r2ps.TypeUnitRevoke, data: map[string]any{}}, want{enclosed: r2ps.CodeIllegalRequestData}},
		{"revoke with a long reason", a, forged{mode: r2ps.Mode2FA, typ: r2ps.TypeUnitRevoke, data: r2ps.UnitRevokeRequest{Confirm: a.unit, Reason: strings.Repeat("r", r2ps.MaxReasonLen+1)}}, want{enclosed: r2ps.CodeIllegalRequestData}},
		{"another unit's slot", b, forged{mode: r2ps.Mode2FA, typ: r2ps.TypePseudonymGet, data: r2ps.PseudonymRequest{Slot: "rp.example"}}, want{enclosed: r2ps.CodeIllegalRequestData}},
		{"oversized pseudonym", a, forged{mode: r2ps.Mode2FA, typ: r2ps.TypePseudonymPut, data: r2ps.PseudonymPutRequest{Slot: "big", Value: make([]byte, wsca.MaxPseudonymSize+1)}}, want{enclosed: r2ps.CodeIllegalRequestData}},
		{"slot name with a slash", a, forged{mode: r2ps.Mode2FA, typ: r2ps.TypePseudonymPut, data: r2ps.PseudonymPutRequest{Slot: "a/b", Value: []byte("v")}}, want{enclosed: r2ps.CodeIllegalRequestData}},
		{"unknown member in data", a, forged{mode: r2ps.Mode2FA, typ: r2ps.TypeUnitInfo, data: map[string]any{"x": 1}}, want{enclosed: r2ps.CodeIllegalRequestData}},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			o := g.send(r.w, r.f)
			if o.problem != r.want.problem || o.enclosed != r.want.enclosed {
				t.Fatalf("got problem %q enclosed %q (HTTP %d); want problem %q enclosed %q", o.problem, o.enclosed, o.status, r.want.problem, r.want.enclosed)
			}
		})
	}
	// Nothing a refused row sent was stored, and the unit is still active.
	if slots, err := a.sess.Pseudonyms(t.Context()); err != nil || len(slots) != 1 {
		t.Fatalf("slots after the refusals = %v, %v", slots, err)
	}
}

// TestRoleRefusals: a type sent to a role without it is
// UNSUPPORTED_REQUEST_TYPE, before anything else happens.
func TestRoleRefusals(t *testing.T) {
	rows := []struct {
		name  string
		roles server.Roles
		typ   string
		data  any
	}{
		{"WSCA type on a wscd instance", server.Roles{WSCD: true}, r2ps.TypePseudonymList, r2ps.EmptyRequest{}},
		{"unit revoke on a wscd instance", server.Roles{WSCD: true}, r2ps.TypeUnitRevoke, r2ps.UnitRevokeRequest{Confirm: "x"}},
		{"key type on a wsca instance", server.Roles{WSCA: true}, r2ps.TypeP256Generate, r2ps.GenerateRequest{Curve: r2ps.CurveP256}},
		{"sign on a wsca instance", server.Roles{WSCA: true}, r2ps.TypeSignECDSA, r2ps.SignRequest{KID: strings.Repeat("a", 32), TBSHash: sha("m")}},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			g := rigWithRoles(t, r.roles)
			w := g.enrol("hsm", "")
			o := g.send(w, forged{mode: r2ps.Mode2FA, typ: r.typ, data: r.data})
			if o.problem != r2ps.CodeUnsupportedRequestType {
				t.Fatalf("got problem %q enclosed %q (HTTP %d); want %s", o.problem, o.enclosed, o.status, r2ps.CodeUnsupportedRequestType)
			}
		})
	}
}

// TestStateRefusalsByRole: on a wscd-only and on a wsca-only instance, a
// suspended or revoked unit, an expired session and a foreign kid are
// refused with the right code, for a 2FA type and a 1FA type of the role.
func TestStateRefusalsByRole(t *testing.T) {
	type op struct {
		mode r2ps.Mode
		typ  string
		data func(own, foreign string) any
	}
	roles := []struct {
		name  string
		roles server.Roles
		ops   []op
	}{
		{"wscd", server.Roles{WSCD: true}, []op{
			{r2ps.Mode2FA, r2ps.TypeSignECDSA, func(kid, _ string) any { return r2ps.SignRequest{KID: kid, TBSHash: sha("m")} }},
		}},
		{"wsca", server.Roles{WSCA: true}, []op{
			{r2ps.Mode2FA, r2ps.TypePseudonymList, func(string, string) any { return r2ps.EmptyRequest{} }},
			{r2ps.Mode1FA, r2ps.TypeKeyAttestation, func(kid, _ string) any { return r2ps.KeyAttestationRequest{KIDs: []string{kid}} }},
		}},
	}
	for _, rl := range roles {
		t.Run(rl.name, func(t *testing.T) {
			g := rigWithRoles(t, rl.roles, func(o *wscastack.Options) { o.SessionDuration = 2 * time.Second })
			ctx := t.Context()
			// Keys are made by the operator: a wsca instance makes none.
			key := func(w *wallet) string {
				k, err := g.svc.Keys.Generate(ctx, w.unit)
				if err != nil {
					t.Fatal(err)
				}
				return string(k.KID)
			}
			other := g.enrol("hsm", "")
			foreign := key(other)
			for _, o := range rl.ops {
				t.Run(o.typ, func(t *testing.T) {
					w := g.enrol("hsm", "")
					own := key(w)
					send := func(data any) outcome { return g.send(w, forged{mode: o.mode, typ: o.typ, data: data}) }
					if got := send(o.data(own, foreign)); got.problem != "" || got.enclosed != "" {
						t.Fatalf("baseline refused: %+v", got)
					}
					if o.typ != r2ps.TypePseudonymList {
						if got := send(o.data(foreign, own)); got.enclosed != r2ps.CodeIllegalRequestData {
							t.Errorf("foreign kid: %+v, want enclosed %s", got, r2ps.CodeIllegalRequestData)
						}
					}
					// Suspended: the 2FA session ended with the suspension; a
					// 1FA request reaches the unit check.
					wantState := func(step string) {
						t.Helper()
						got := send(o.data(own, foreign))
						if o.mode == r2ps.Mode2FA && got.problem != r2ps.CodeUnauthorized ||
							o.mode == r2ps.Mode1FA && got.enclosed != r2ps.CodeAccessDenied {
							t.Errorf("%s: %+v", step, got)
						}
					}
					if err := g.svc.Units.SetState(ctx, w.unit, store.UnitSuspended); err != nil {
						t.Fatal(err)
					}
					wantState("suspended")
					if err := g.svc.Units.SetState(ctx, w.unit, store.UnitRevoked); err != nil {
						t.Fatal(err)
					}
					wantState("revoked")
				})
			}
			// An expired session, for the role's 2FA type.
			w := g.enrol("hsm", "")
			own := key(w)
			o := rl.ops[0]
			time.Sleep(2100 * time.Millisecond)
			if got := g.send(w, forged{mode: o.mode, typ: o.typ, data: o.data(own, foreign)}); got.problem != r2ps.CodeUnauthorized {
				t.Errorf("expired session: %+v, want problem %s", got, r2ps.CodeUnauthorized)
			}
		})
	}
}

// TestAMR: every key operation's and WSCA type's answer names the factors
// that authorised it: the client key and the PIN in a session, the client
// key alone in 1FA.
func TestAMR(t *testing.T) {
	g := newRig(t)
	w := g.enrol("hsm", "")
	key, err := w.sess.Generate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	pinAndKey := []string{r2ps.AMRPossession, r2ps.AMRPIN}
	for _, c := range []struct {
		f    forged
		want []string
	}{
		{forged{mode: r2ps.Mode2FA, typ: r2ps.TypeSignECDSA, data: r2ps.SignRequest{KID: key.KID, TBSHash: sha("m")}}, pinAndKey},
		{forged{mode: r2ps.Mode2FA, typ: r2ps.TypeAgreeECDH, data: r2ps.ECDHRequest{KID: key.KID, PublicKey: mustPoint(t)}}, pinAndKey},
		{forged{mode: r2ps.Mode2FA, typ: r2ps.TypeP256Generate, data: r2ps.GenerateRequest{Curve: r2ps.CurveP256}}, pinAndKey},
		{forged{mode: r2ps.Mode2FA, typ: r2ps.TypeListKeys, data: r2ps.ListKeysRequest{}}, pinAndKey},
		{forged{mode: r2ps.Mode2FA, typ: r2ps.TypePseudonymList, data: r2ps.EmptyRequest{}}, pinAndKey},
		{forged{mode: r2ps.Mode1FA, typ: r2ps.TypeKeyAttestation, data: r2ps.KeyAttestationRequest{KIDs: []string{key.KID}}}, []string{r2ps.AMRPossession}},
		{forged{mode: r2ps.Mode2FA, typ: r2ps.TypeDeleteKey, data: r2ps.DeleteKeyRequest{KID: key.KID}}, pinAndKey},
	} {
		o := g.send(w, c.f)
		if o.problem != "" || o.enclosed != "" {
			t.Fatalf("%s refused: %+v", c.f.typ, o)
		}
		var got struct {
			AMR []string `json:"amr"`
		}
		if err := json.Unmarshal(o.data, &got); err != nil || strings.Join(got.AMR, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: amr %v (%v), want %v", c.f.typ, got.AMR, err, c.want)
		}
	}
}

func mustPoint(t *testing.T) []byte {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey().Bytes()
}
