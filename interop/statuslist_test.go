package interop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/statuslist"
	"github.com/wsca/wsca/statuslist/statuslisttest"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wsca/statuslists"
)

// slView is what statuslist-check.mjs reports of one token.
type slView struct {
	Typ      string     `json:"typ"`
	Alg      any        `json:"alg"`
	Kid      *string    `json:"kid"`
	Sub      string     `json:"sub"`
	Iat      int64      `json:"iat"`
	Exp      int64      `json:"exp"`
	TTL      int64      `json:"ttl"`
	Bits     int        `json:"bits"`
	Len      int        `json:"len"`
	Statuses [][2]int64 `json:"statuses"`
}

type slReport struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	JWT   slView `json:"jwt"`
	CWT   slView `json:"cwt"`
}

func needStatusListNode(t *testing.T) string {
	t.Helper()
	return testenv.Node(t, "node", ".", "@sd-jwt/jwt-status-list", "cbor2", "jose")
}

// TestStatusListInterop: lists wsca publishes, as JWT and CWT, are read by
// @sd-jwt/jwt-status-list and jose (JWT) and by cbor2 and node:crypto
// (CWT), which see every status, before and after entries flip.
func TestStatusListInterop(t *testing.T) {
	node := needStatusListNode(t)
	ctx := t.Context()
	st, err := store.Open(ctx, testenv.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pki := statuslisttest.NewPKI(t)
	p, err := statuslists.New(st, statuslists.Config{
		BaseURI: "https://wsca.example", ShardSize: statuslists.MinShardSize, Pool: 1,
		Lifetime: 24 * time.Hour, TTL: 10 * time.Minute, Debounce: time.Second,
		Signer: pki.Key, Chain: pki.Chain, KeyID: "sl-1",
		IndexKey: bytes.Repeat([]byte{5}, statuslist.IndexKeySize),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()

	refs := make([]statuslist.Reference, 12)
	for i := range refs {
		unit := store.Unit{ID: fmt.Sprintf("unit-%d", i), State: store.UnitActive, CreatedAt: time.Unix(1, 0), UpdatedAt: time.Unix(1, 0)}
		if err := st.CreateUnit(ctx, unit); err != nil {
			t.Fatal(err)
		}
		if refs[i], err = p.Allocate(ctx, unit.ID, store.StatusKindWIA, ""); err != nil {
			t.Fatal(err)
		}
	}
	uri := refs[0].URI
	want := make(map[int]uint8)
	set := func(unit int, s uint8) {
		if _, err := st.SetUnitStatuses(ctx, fmt.Sprintf("unit-%d", unit), s, time.Now()); err != nil {
			t.Fatal(err)
		}
		if want[unit] != store.StatusInvalid {
			want[unit] = s
		}
	}
	steps := []func(){
		func() { set(1, store.StatusInvalid); set(2, store.StatusSuspended); set(5, store.StatusSuspended) },
		func() {
			set(2, store.StatusValid)
			set(5, store.StatusInvalid)
			set(1, store.StatusValid)
			set(11, store.StatusSuspended)
		},
	}
	for n, step := range steps {
		step()
		if err := p.PublishAll(ctx); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		jwtFile, cwtFile := filepath.Join(dir, "list.jwt"), filepath.Join(dir, "list.cwt")
		os.WriteFile(jwtFile, fetch(t, srv.URL, uri, statuslist.MediaTypeJWT), 0o600)
		os.WriteFile(cwtFile, fetch(t, srv.URL, uri, statuslist.MediaTypeCWT), 0o600)

		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		cmd := exec.CommandContext(cctx, node, "statuslist-check.mjs", jwtFile, cwtFile, uri)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		var rep slReport
		if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil || err != nil || !rep.OK {
			t.Fatalf("step %d: node: %v %v %s\nstdout: %s\nstderr: %s", n, err, jerr, rep.Error, stdout.String(), stderr.String())
		}
		var expect [][2]int64
		for unit, s := range want {
			if s != 0 {
				expect = append(expect, [2]int64{int64(refs[unit].Index), int64(s)})
			}
		}
		slices.SortFunc(expect, func(a, b [2]int64) int { return int(a[0] - b[0]) })
		for name, v := range map[string]slView{"jwt": rep.JWT, "cwt": rep.CWT} {
			if v.Sub != uri || v.Bits != 2 || v.Len != statuslists.MinShardSize || v.TTL != 600 || v.Exp-v.Iat != 86400 ||
				v.Kid == nil || *v.Kid != "sl-1" {
				t.Fatalf("step %d %s: %+v", n, name, v)
			}
			if !slices.Equal(v.Statuses, expect) {
				t.Fatalf("step %d %s: statuses %v, want %v", n, name, v.Statuses, expect)
			}
		}
		if rep.JWT.Typ != statuslist.TypJWT || rep.JWT.Alg != "ES256" {
			t.Fatalf("jwt header typ %q alg %v", rep.JWT.Typ, rep.JWT.Alg)
		}
		if rep.CWT.Typ != statuslist.TypCWT || rep.CWT.Alg != float64(-7) {
			t.Fatalf("cwt header type %q alg %v", rep.CWT.Typ, rep.CWT.Alg)
		}
	}
}

func fetch(t *testing.T, srvURL, uri, accept string) []byte {
	t.Helper()
	path := uri[strings.Index(uri, "/statuslists/"):]
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srvURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != accept {
		t.Fatalf("GET %s (%s): %d %q %v", path, accept, resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	return b
}
