package dispatch_test

import (
	"encoding/hex"
	"testing"

	"github.com/wsca/wsca/evidence/event"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/r2ps/client/httptransport"
)

// TestSignatureEvidence: a sign_ecdsa leaves a signature event in the
// evidence log only when the signature is made, on both stores: a request
// refused by the session's task, the context's rule or its data leaves
// none, and one whose device call fails after its event went in with the
// nonce leaves a signature_failed event after it.
func TestSignatureEvidence(t *testing.T) {
	type step struct {
		digest []byte
		data   any // forged sign_ecdsa data instead of {kid, digest}
		ok     bool
	}
	h1 := sha("h1")
	cases := []struct {
		name, context, task string
		closeDevice         bool
		// untaskRow clears the session row's task behind wsca: the ticket
		// no longer matches it.
		untaskRow          bool
		steps              []step
		signatures, failed int
	}{
		{name: "plain session", context: "hsm", steps: []step{{digest: h1, ok: true}}, signatures: 1},
		{name: "task session, listed hash", context: "hsm", task: hex.EncodeToString(h1),
			steps: []step{{digest: h1, ok: true}}, signatures: 1},
		{name: "task session, unlisted hash", context: "hsm", task: hex.EncodeToString(h1),
			steps: []step{{digest: sha("h3")}}},
		{name: "task session, listed hash twice", context: "hsm", task: hex.EncodeToString(h1),
			steps: []step{{digest: h1, ok: true}, {digest: h1}}, signatures: 1},
		{name: "context demands a task", context: "signing", steps: []step{{digest: h1}}},
		{name: "digest of 31 bytes", context: "hsm", steps: []step{{digest: h1[:31]}}},
		{name: "data with an unknown member", context: "hsm",
			steps: []step{{data: map[string]any{"tbs_hash": r2ps.Bytes(h1), "extra": 1}}}},
		{name: "device fails", context: "hsm", closeDevice: true, steps: []step{{digest: h1}}, signatures: 1, failed: 1},
		{name: "session row changed outside wsca", context: "hsm", task: hex.EncodeToString(h1), untaskRow: true,
			steps: []step{{digest: h1}}, signatures: 1, failed: 1},
	}
	for _, b := range testenv.StoreBackends() {
		t.Run(b.Name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					ctx := t.Context()
					dsn := b.DSN(t)
					r := stacktest.Start(t, dsn, testdevice.Soft(t), nil)
					keys, err := client.FetchServerKeys(ctx, httptransport.New(nil), r.URL)
					if err != nil {
						t.Fatal(err)
					}
					g := &rig{t: t, url: r.URL, svc: r.Services, st: r.Store, pins: r.PIN, dev: r.Device, server: keys}
					w := g.enrol(tc.context, "")
					kid := mustGenerate(t, w)
					if tc.task != "" {
						if w.sess, err = w.c.Login(ctx, []byte("123456"), client.LoginOptions{Task: r2ps.TaskSignPrefix + tc.task}); err != nil {
							t.Fatal(err)
						}
					}
					if tc.untaskRow {
						if _, err := testenv.RawDB(t, dsn).ExecContext(ctx, `UPDATE sessions SET task = '' WHERE unit_id = $1`, w.unit); err != nil {
							t.Fatal(err)
						}
					}
					if tc.closeDevice {
						if err := g.dev.Close(); err != nil {
							t.Fatal(err)
						}
					}
					for i, s := range tc.steps {
						data := s.data
						if m, ok := data.(map[string]any); ok {
							m["kid"] = kid
						} else {
							data = r2ps.SignRequest{KID: kid, TBSHash: s.digest}
						}
						o := g.send(w, forged{mode: r2ps.Mode2FA, typ: r2ps.TypeSignECDSA, data: data})
						if ok := o.problem == "" && o.enclosed == ""; ok != s.ok {
							t.Fatalf("step %d: %+v, want success %v", i, o, s.ok)
						}
					}
					// Sequenced here (Evidence.Sync would also sign a
					// checkpoint, with the device).
					tree, _, err := r.Store.SequenceEvidence(ctx, 1000)
					if err != nil {
						t.Fatal(err)
					}
					var got []string
					counts := map[event.Type]int{}
					for i := range tree.Size {
						leaf, err := r.Store.GetEvidenceLeaf(ctx, i)
						if err != nil {
							t.Fatal(err)
						}
						e, err := event.Parse(leaf)
						if err != nil {
							t.Fatal(err)
						}
						if e.Kid == kid && e.Type != event.KeyGenerated {
							got = append(got, e.Type.String())
							counts[e.Type]++
						}
					}
					if counts[event.Signature] != tc.signatures || counts[event.SignatureFailed] != tc.failed || len(got) != tc.signatures+tc.failed {
						t.Fatalf("events of the key %v, want %d signature and %d signature_failed", got, tc.signatures, tc.failed)
					}
					if tc.failed > 0 && got[len(got)-1] != event.SignatureFailed.String() {
						t.Fatalf("events of the key %v: signature_failed is not last", got)
					}
				})
			}
		})
	}
}
