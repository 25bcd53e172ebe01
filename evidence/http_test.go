package evidence_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsca/wsca/evidence"
	"github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
)

// TestHTTPRefusals: a raw client forging one parameter at a time gets a
// generic 400 (or 404), never a proof or a leaf it did not ask for
// correctly, and a leaf served to the operator is never marked for a
// shared cache (it names a unit and was fetched with the admin token).
func TestHTTPRefusals(t *testing.T) {
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.Soft(t), func(o *stack.Options) {
		o.EvidenceInterval = time.Hour
		o.AdminToken = []byte(testAdminToken)
	})
	ctx := t.Context()
	for i := range 5 {
		if err := r.Units.Create(ctx, fmt.Sprintf("http-unit-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Evidence.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	tree, err := r.Store.GetEvidenceTree(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := tree.Size
	if n < 5 {
		t.Fatalf("tree of %d leaves", n)
	}
	for _, tc := range []struct {
		name, query string
		want        int
	}{
		{"inclusion ok", fmt.Sprintf("%s?index=0&size=%d", evidence.PathInclusion, n), http.StatusOK},
		{"inclusion index = size", fmt.Sprintf("%s?index=%d&size=%d", evidence.PathInclusion, n, n), http.StatusBadRequest},
		{"inclusion size beyond the tree", fmt.Sprintf("%s?index=0&size=%d", evidence.PathInclusion, n+1), http.StatusBadRequest},
		{"inclusion size 0", evidence.PathInclusion + "?index=0&size=0", http.StatusBadRequest},
		{"inclusion negative index", fmt.Sprintf("%s?index=-1&size=%d", evidence.PathInclusion, n), http.StatusBadRequest},
		{"inclusion signed size", fmt.Sprintf("%s?index=0&size=+%d", evidence.PathInclusion, n), http.StatusBadRequest},
		{"inclusion leading zero", fmt.Sprintf("%s?index=00&size=%d", evidence.PathInclusion, n), http.StatusBadRequest},
		{"inclusion int64 overflow", evidence.PathInclusion + "?index=0&size=9223372036854775808", http.StatusBadRequest},
		{"inclusion 20 digits", evidence.PathInclusion + "?index=0&size=10000000000000000000", http.StatusBadRequest},
		{"inclusion max int64", evidence.PathInclusion + "?index=9223372036854775806&size=9223372036854775807", http.StatusBadRequest},
		{"inclusion repeated", fmt.Sprintf("%s?index=0&index=1&size=%d", evidence.PathInclusion, n), http.StatusBadRequest},
		{"inclusion missing size", evidence.PathInclusion + "?index=0", http.StatusBadRequest},
		{"inclusion extra parameter", fmt.Sprintf("%s?index=0&size=%d&x=1", evidence.PathInclusion, n), http.StatusBadRequest},
		{"inclusion bad escape", fmt.Sprintf("%s?index=0&size=%d&%%zz", evidence.PathInclusion, n), http.StatusBadRequest},
		{"consistency ok", fmt.Sprintf("%s?old=1&new=%d", evidence.PathConsistency, n), http.StatusOK},
		{"consistency from empty", fmt.Sprintf("%s?old=0&new=%d", evidence.PathConsistency, n), http.StatusOK},
		{"consistency same size", fmt.Sprintf("%s?old=%d&new=%d", evidence.PathConsistency, n, n), http.StatusOK},
		{"consistency shrinking", fmt.Sprintf("%s?old=%d&new=1", evidence.PathConsistency, n), http.StatusBadRequest},
		{"consistency beyond the tree", fmt.Sprintf("%s?old=1&new=%d", evidence.PathConsistency, n+1), http.StatusBadRequest},
		{"consistency new 0", evidence.PathConsistency + "?old=0&new=0", http.StatusBadRequest},
		{"consistency negative", fmt.Sprintf("%s?old=-1&new=%d", evidence.PathConsistency, n), http.StatusBadRequest},
		{"consistency overflow", evidence.PathConsistency + "?old=1&new=99999999999999999999", http.StatusBadRequest},
		{"consistency extra parameter", fmt.Sprintf("%s?old=1&new=%d&old2=1", evidence.PathConsistency, n), http.StatusBadRequest},
		{"checkpoint with a query", evidence.PathCheckpoint + "?size=1", http.StatusBadRequest},
		{"no leaf on the public listener", evidence.PathEntries + "0", http.StatusNotFound},
		{"no leaf under /evidence", "/evidence/entries/0", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, r.URL+tc.query)
			if code != tc.want {
				t.Fatalf("GET %s: %d %s, want %d", tc.query, code, body, tc.want)
			}
			if code == http.StatusBadRequest && strings.TrimSpace(string(body)) != `{"error":"bad request"}` {
				t.Fatalf("GET %s: body %s, want the generic error", tc.query, body)
			}
		})
	}
	admin := func(ctx context.Context, path, token string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.AdminURL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, tc := range []struct {
		name, path, token string
		want              int
	}{
		{"leaf", evidence.PathEntries + "0", testAdminToken, http.StatusOK},
		{"leaf without the token", evidence.PathEntries + "0", "", http.StatusUnauthorized},
		{"leaf with a wrong token", evidence.PathEntries + "0", testAdminToken + "x", http.StatusUnauthorized},
		{"leaf beyond the tree", fmt.Sprintf("%s%d", evidence.PathEntries, n+1000), testAdminToken, http.StatusNotFound},
		{"leaf max int64", evidence.PathEntries + "9223372036854775807", testAdminToken, http.StatusNotFound},
		{"leaf overflow", evidence.PathEntries + "9223372036854775808", testAdminToken, http.StatusBadRequest},
		{"leaf negative", evidence.PathEntries + "-1", testAdminToken, http.StatusBadRequest},
		{"leaf leading zero", evidence.PathEntries + "01", testAdminToken, http.StatusBadRequest},
		{"leaf hex", evidence.PathEntries + "0x1", testAdminToken, http.StatusBadRequest},
		{"leaf with a query", evidence.PathEntries + "0?x=1", testAdminToken, http.StatusBadRequest},
		{"leaf no index", evidence.PathEntries, testAdminToken, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := admin(ctx, tc.path, tc.token)
			if resp.StatusCode != tc.want {
				t.Fatalf("GET %s: %d, want %d", tc.path, resp.StatusCode, tc.want)
			}
			// A leaf names a unit and was fetched with the token: a
			// shared cache in front of the admin listener must not keep
			// it for others (RFC 9111 §3.5: "public" would allow that).
			if cc := resp.Header.Get("Cache-Control"); resp.StatusCode == http.StatusOK && !strings.Contains(cc, "private") {
				t.Fatalf("leaf served with Cache-Control %q", cc)
			}
		})
	}
}
