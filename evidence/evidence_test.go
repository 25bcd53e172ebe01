package evidence_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the tests' raw access to the database
	"golang.org/x/mod/sumdb/tlog"
	_ "modernc.org/sqlite"

	"github.com/wsca/wsca/evidence"
	"github.com/wsca/wsca/evidence/event"
	"github.com/wsca/wsca/evidence/logverify"
	"github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/r2ps/client/httptransport"
	"github.com/wsca/wsca/store"
)

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func getOK(t *testing.T, url string) []byte {
	t.Helper()
	code, b := get(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, b)
	}
	return b
}

type logClient struct {
	t        *testing.T
	url      string
	adminURL string // leaves are on the admin listener only
	v        *logverify.Verifier
}

// testAdminToken is the admin API's token in these tests.
const testAdminToken = "evidence-test-admin-token-0123456789abcdef"

// adminGet fetches a leaf from the admin API with the token.
func (c logClient) adminGet(path string) []byte {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.adminURL+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

func (c logClient) checkpoint() logverify.Checkpoint {
	cp, err := logverify.OpenCheckpoint(getOK(c.t, c.url+evidence.PathCheckpoint), c.v)
	if err != nil {
		c.t.Fatal(err)
	}
	return cp
}

// entry fetches leaf i and proves it in cp, with logverify and with tlog
// directly.
func (c logClient) entry(cp logverify.Checkpoint, i int64) ([]byte, error) {
	leaf := c.adminGet(fmt.Sprintf("%s%d", evidence.PathEntries, i))
	var p logverify.InclusionProof
	if err := json.Unmarshal(getOK(c.t, fmt.Sprintf("%s%s?index=%d&size=%d", c.url, evidence.PathInclusion, i, cp.Size)), &p); err != nil {
		c.t.Fatal(err)
	}
	err := logverify.VerifyInclusion(cp, leaf, p)
	hs := make(tlog.RecordProof, len(p.Hashes))
	for j := range p.Hashes {
		hs[j] = tlog.Hash(p.Hashes[j])
	}
	if terr := tlog.CheckRecord(hs, cp.Size, cp.Root, i, tlog.RecordHash(leaf)); (terr == nil) != (err == nil) {
		c.t.Fatalf("logverify (%v) and tlog (%v) disagree", err, terr)
	}
	return leaf, err
}

func (c logClient) consistency(old, new logverify.Checkpoint) error {
	var p logverify.ConsistencyProof
	if err := json.Unmarshal(getOK(c.t, fmt.Sprintf("%s%s?old=%d&new=%d", c.url, evidence.PathConsistency, old.Size, new.Size)), &p); err != nil {
		c.t.Fatal(err)
	}
	err := logverify.VerifyConsistency(old, new, p)
	hs := make(tlog.TreeProof, len(p.Hashes))
	for j := range p.Hashes {
		hs[j] = tlog.Hash(p.Hashes[j])
	}
	if terr := tlog.CheckTree(hs, new.Size, new.Root, old.Size, old.Root); (terr == nil) != (err == nil) {
		c.t.Fatalf("logverify (%v) and tlog (%v) disagree", err, terr)
	}
	return err
}

// TestUnitLife: a unit's life on SoftHSM in wrapped storage, through R2PS
// and the admin services, leaves its events in the log in order, each
// proven in the served checkpoint; a later checkpoint is consistent; then
// the log is rewritten and truncated behind wsca, and that is found.
func TestUnitLife(t *testing.T) {
	for _, b := range testenv.StoreBackends() {
		t.Run(b.Name, func(t *testing.T) {
			dsn := b.DSN(t)
			dev := testdevice.PKCS11Wrapped(t)
			r := stacktest.Start(t, dsn, dev, func(o *stack.Options) {
				o.EvidenceInterval = time.Hour
				o.AdminToken = []byte(testAdminToken)
			})
			ctx := t.Context()
			const unit = "life-unit"
			if err := r.Units.Create(ctx, unit); err != nil {
				t.Fatal(err)
			}
			code, err := r.Units.IssueActivationCode(ctx, unit, store.PurposeActivation, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			keys, err := client.FetchServerKeys(ctx, httptransport.New(nil), r.URL)
			if err != nil {
				t.Fatal(err)
			}
			csk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			cak, _ := ecdh.P256().GenerateKey(rand.Reader)
			c, err := client.New(client.Config{URL: r.URL, Transport: httptransport.New(nil), Unit: unit, Context: "hsm", SigningKey: csk, AgreementKey: cak, Server: keys})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Enrol(ctx, code.Code, []byte("135790")); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Login(ctx, []byte("000000"), client.LoginOptions{}); err == nil {
				t.Fatal("wrong PIN accepted")
			}
			s, err := c.Login(ctx, []byte("135790"), client.LoginOptions{})
			if err != nil {
				t.Fatal(err)
			}
			k, err := s.Generate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			d := sha256.Sum256([]byte("to be signed"))
			if _, err := s.Sign(ctx, k.KID, d[:]); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteKey(ctx, k.KID); err != nil {
				t.Fatal(err)
			}
			for _, st := range []store.UnitState{store.UnitSuspended, store.UnitActive} {
				if err := r.Units.SetState(ctx, unit, st); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Units.Destroy(ctx, unit); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Evidence.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			vkey := strings.TrimSpace(string(getOK(t, r.URL+evidence.PathKey)))
			v, err := logverify.NewVerifier(vkey)
			if err != nil {
				t.Fatal(err)
			}
			lc := logClient{t: t, url: r.URL, adminURL: r.AdminURL, v: v}
			// A leaf names a unit: never on the public listener.
			if code, _ := get(t, r.URL+"/evidence/entries/0"); code != http.StatusNotFound {
				t.Fatalf("a leaf on the public listener: %d", code)
			}
			cp := lc.checkpoint()
			var got []string
			for i := range cp.Size {
				leaf, err := lc.entry(cp, i)
				if err != nil {
					t.Fatalf("leaf %d: %v", i, err)
				}
				e, err := event.Parse(leaf)
				if err != nil {
					t.Fatal(err)
				}
				if e.Unit != unit {
					continue
				}
				s := e.Type.String()
				if e.Type == event.KeyDestroyed {
					s += ":" + string(e.Data)
				}
				if e.Kid != "" && e.Kid != k.KID {
					t.Errorf("%s of kid %s", e.Type, e.Kid)
				}
				got = append(got, s)
			}
			want := []string{"unit_created", "enrolled", "pin_failure", "pin_failure", "key_generated", "signature",
				"key_destroyed:" + event.DestroyedBlobErased, "suspended", "unsuspended", "revoked", "unit_destroyed"}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("events\n got %v\nwant %v", got, want)
			}

			// A later checkpoint extends this one.
			if err := r.Units.Create(ctx, "later-unit"); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Evidence.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			cp2 := lc.checkpoint()
			if cp2.Size != cp.Size+1 {
				t.Fatalf("sizes %d, %d", cp.Size, cp2.Size)
			}
			if err := lc.consistency(cp, cp2); err != nil {
				t.Fatal(err)
			}

			db := testenv.RawDB(t, dsn)
			// A rewritten leaf no longer proves.
			if _, err := db.ExecContext(ctx, `UPDATE evidence_leaves SET leaf = $1 WHERE leaf_index = 3`, []byte("rewritten")); err != nil {
				t.Fatal(err)
			}
			if _, err := lc.entry(cp2, 3); !errors.Is(err, logverify.ErrInclusion) {
				t.Fatalf("rewritten leaf: %v", err)
			}
			// A rewritten hash: the leaf next to it no longer proves.
			if _, err := db.ExecContext(ctx, `UPDATE evidence_hashes SET hash = $1 WHERE hash_index = $2`, make([]byte, 32), tlog.StoredHashIndex(0, 4)); err != nil {
				t.Fatal(err)
			}
			if _, err := lc.entry(cp2, 5); !errors.Is(err, logverify.ErrInclusion) {
				t.Fatalf("leaf beside a rewritten hash: %v", err)
			}
			// Truncated to 4 leaves with a consistent root, then grown past
			// the signed size: no checkpoint is signed over it.
			const keep = 4
			root, err := tlog.TreeHash(keep, r.Store.EvidenceHashes(ctx))
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{
				`DELETE FROM evidence_leaves WHERE leaf_index >= $1`,
				`DELETE FROM evidence_hashes WHERE hash_index >= $1`,
			} {
				arg := int64(keep)
				if strings.Contains(q, "hash_index") {
					arg = tlog.StoredHashCount(keep)
				}
				if _, err := db.ExecContext(ctx, q, arg); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.ExecContext(ctx, `UPDATE evidence_tree SET size = $1, root = $2`, keep, root[:]); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Evidence.Sync(ctx); !errors.Is(err, evidence.ErrIntegrity) {
				t.Fatalf("truncated log: %v", err)
			}
			for i := range cp2.Size {
				if err := r.Units.Create(ctx, fmt.Sprint("refill-", i)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := r.Evidence.Sync(ctx); !errors.Is(err, evidence.ErrIntegrity) {
				t.Fatalf("truncated and refilled log: %v", err)
			}
			if after := lc.checkpoint(); after.Size != cp2.Size {
				t.Fatalf("a checkpoint of %d was signed over a rewritten log", after.Size)
			}
		})
	}
}
