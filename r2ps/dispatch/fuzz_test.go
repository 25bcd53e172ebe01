package dispatch_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	wscastack "github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/r2ps/client/httptransport"
	"github.com/wsca/wsca/r2ps/dispatch"
)

// FuzzServe feeds any body to a real dispatcher (soft device, SQLite,
// compat on in bearer mode so every path is reachable): it never panics,
// answers with a Table 1 status, and a 200 carries a JWE or a JWS, a
// refusal an RFC 9457 problem or go-r2ps-service's error shape. Seeds are
// honest requests of each kind and their mutations.
func FuzzServe(f *testing.F) {
	r := stacktest.Start(f, testenv.SQLite(f), testdevice.Soft(f), func(o *wscastack.Options) { o.Compat = dispatch.CompatBearer })
	keys, err := client.FetchServerKeys(f.Context(), httptransport.New(nil), r.URL)
	if err != nil {
		f.Fatal(err)
	}
	g := &rig{t: f, url: r.URL, svc: r.Services, st: r.Store, pins: r.PIN, dev: r.Device, server: keys}
	w := g.enrol("hsm", "")
	kid := ""
	if k, err := w.sess.Generate(f.Context()); err == nil {
		kid = k.KID
	}
	for _, fr := range []*forged{
		{mode: r2ps.Mode2FA, typ: r2ps.TypeSignECDSA, data: r2ps.SignRequest{KID: kid, TBSHash: sha("m")}},
		{mode: r2ps.Mode2FA, typ: r2ps.TypeListKeys, data: r2ps.ListKeysRequest{}},
		{mode: r2ps.Mode1FA, typ: r2ps.TypeCreateSession, data: r2ps.TFARequest{Protocol: r2ps.ProtocolOPAQUE, State: r2ps.StateEvaluate, PData: []byte{1, 2, 3}}},
	} {
		f.Add(g.build(w, fr))
	}
	compat, _ := json.Marshal(map[string]any{"ver": "1.0", "nonce": "AAAAAAAAAAAAAAAAAAAAAA==", "iat": 1, "client_id": w.unit, "context": "hsm", "type": "hsm_list_keys", "data": map[string]any{}})
	f.Add([]byte("eyJhbGciOiJFUzI1NiIsInR5cCI6InIycHMtcmVxdWVzdCtqd3QifQ." + b64u.EncodeToString(compat) + ".AAAA"))
	f.Add(bytes.Repeat([]byte("."), 100))
	f.Add([]byte("a.b.c.d.e"))
	d := r.R2PS
	f.Fuzz(func(t *testing.T, body []byte) {
		rep := d.Serve(t.Context(), body)
		switch rep.Status {
		case http.StatusOK:
			if n := bytes.Count(rep.Body, []byte{'.'}); rep.ContentType != dispatch.MediaJOSE || n != 4 && n != 2 {
				t.Fatalf("200 with %s %q", rep.ContentType, rep.Body)
			}
		case 400, 401, 403, 409, 415, 500, 503:
			if rep.ContentType != dispatch.MediaProblem && rep.ContentType != dispatch.MediaJSON || !json.Valid(rep.Body) {
				t.Fatalf("%d with %s %q", rep.Status, rep.ContentType, rep.Body)
			}
		default:
			t.Fatalf("status %d", rep.Status)
		}
	})
}
