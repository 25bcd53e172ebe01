package statuslists

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/statuslist"
	"github.com/wsca/wsca/statuslist/statuslisttest"
	"github.com/wsca/wsca/store"
)

const base = "https://wsca.example"

func testConfig(pki *statuslisttest.PKI) Config {
	return Config{
		BaseURI:   base,
		ShardSize: MinShardSize,
		Pool:      2,
		Lifetime:  24 * time.Hour,
		TTL:       5 * time.Minute,
		Debounce:  time.Second,
		Signer:    pki.Key,
		Chain:     pki.Chain,
		KeyID:     "sl1",
		IndexKey:  bytes.Repeat([]byte{3}, 32),
	}
}

func openStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// createUnits makes the active units ids (those that exist are left as
// they are): entries are allocated only for
// active units.
func createUnits(t testing.TB, st *store.Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		u := store.Unit{ID: id, State: store.UnitActive, CreatedAt: time.Unix(1, 0), UpdatedAt: time.Unix(1, 0)}
		if err := st.CreateUnit(context.Background(), u); err != nil && !errors.Is(err, store.ErrExists) {
			t.Fatal(err)
		}
	}
}

func newPublisher(t *testing.T, st Store, cfg Config) *Publisher {
	t.Helper()
	p, err := New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigRefused(t *testing.T) {
	pki := statuslisttest.NewPKI(t)
	other := statuslisttest.NewPKI(t)
	cases := map[string]func(*Config){
		"small shard":   func(c *Config) { c.ShardSize = MinShardSize - 1 },
		"huge shard":    func(c *Config) { c.ShardSize = maxShardSize + 1 },
		"no pool":       func(c *Config) { c.Pool = 0 },
		"relative base": func(c *Config) { c.BaseURI = "/wsca" },
		// Attestations refuse a status list uri that is not https (http
		// only on loopback): each would fail when issued.
		"http base":             func(c *Config) { c.BaseURI = "http://wsca.example" },
		"http on all addresses": func(c *Config) { c.BaseURI = "http://0.0.0.0:8080" },
		"http without a host":   func(c *Config) { c.BaseURI = "http://:8080" },
		"ftp base":              func(c *Config) { c.BaseURI = "ftp://wsca.example" },
		"base with userinfo":    func(c *Config) { c.BaseURI = "https://u:p@wsca.example" },
		"ttl 0":                 func(c *Config) { c.TTL = 0 },
		"ttl > lifetime":        func(c *Config) { c.Lifetime = c.TTL - time.Second },
		"negative debounce":     func(c *Config) { c.Debounce = -1 },
		"short index key":       func(c *Config) { c.IndexKey = c.IndexKey[:16] },
		"no signer":             func(c *Config) { c.Signer = nil },
		"no chain or kid":       func(c *Config) { c.Chain, c.KeyID = nil, "" },
		"chain of another":      func(c *Config) { c.Chain = other.Chain },
	}
	for name, mod := range cases {
		cfg := testConfig(pki)
		mod(&cfg)
		if _, err := New(nil, cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, ok := range []string{"https://wsca.example/base", "http://127.0.0.1:8080", "http://[::1]:8080", "http://localhost:8080"} {
		cfg := testConfig(pki)
		cfg.BaseURI = ok
		if _, err := New(nil, cfg); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
}

// get fetches a list with an Accept header and optional If-None-Match.
func get(t *testing.T, h http.Handler, id, accept, inm string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/statuslists/"+id, nil)
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	if inm != "" {
		r.Header.Set("If-None-Match", inm)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, r *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPublisher runs the publisher on every store backend.
func TestPublisher(t *testing.T) {
	for _, b := range testenv.StoreBackends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			dsn := b.DSN(t)
			t.Run("Serve", func(t *testing.T) { testServe(t, openStore(t, dsn)) })
			t.Run("TwoInstances", func(t *testing.T) { testTwoInstances(t, dsn) })
		})
	}
}

func testServe(t *testing.T, st *store.Store) {
	ctx := t.Context()
	pki := statuslisttest.NewPKI(t)
	p := newPublisher(t, st, testConfig(pki))
	h := p.Handler()
	refs := make(map[string]statuslist.Reference)
	for i := range 6 {
		unit := fmt.Sprintf("u%d", i)
		createUnits(t, st, unit)
		ref, err := p.Allocate(ctx, unit, store.StatusKindWIA, "")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(ref.URI, base+"/statuslists/") {
			t.Fatalf("uri %q", ref.URI)
		}
		refs[unit] = ref
	}
	if _, err := st.SetUnitStatuses(ctx, "u1", store.StatusSuspended, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetUnitStatuses(ctx, "u2", store.StatusInvalid, time.Now()); err != nil {
		t.Fatal(err)
	}
	want := map[string]statuslist.Status{"u1": statuslist.Suspended, "u2": statuslist.Invalid}

	check := func(t *testing.T) {
		t.Helper()
		for unit, ref := range refs {
			id := strings.TrimPrefix(ref.URI, base+"/statuslists/")
			for _, c := range []struct {
				accept, media string
				verify        func(*statuslist.Verifier, []byte, string) (*statuslist.Verified, error)
			}{
				{"", statuslist.MediaTypeJWT, (*statuslist.Verifier).VerifyJWT},
				{"application/statuslist+cwt", statuslist.MediaTypeCWT, (*statuslist.Verifier).VerifyCWT},
				{"application/statuslist+cwt;q=0.5, application/statuslist+jwt", statuslist.MediaTypeJWT, (*statuslist.Verifier).VerifyJWT},
				{"*/*, application/statuslist+jwt;q=0.1", statuslist.MediaTypeCWT, (*statuslist.Verifier).VerifyCWT},
			} {
				resp := get(t, h, id, c.accept, "")
				if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != c.media || resp.Header.Get("Vary") != "Accept" {
					t.Fatalf("Accept %q: %d %q", c.accept, resp.StatusCode, resp.Header.Get("Content-Type"))
				}
				cc := resp.Header.Get("Cache-Control")
				age, err := strconv.Atoi(strings.TrimPrefix(cc, "public, max-age="))
				if err != nil || age <= 0 || age > 300 {
					t.Fatalf("Cache-Control %q", cc)
				}
				v := &statuslist.Verifier{Roots: pki.Roots}
				got, err := c.verify(v, body(t, resp), ref.URI)
				if err != nil {
					t.Fatal(err)
				}
				if got.TTL != 5*time.Minute || got.List.Len() != MinShardSize || got.Bits != 2 {
					t.Fatalf("token %+v", got.Token)
				}
				if s, _ := got.Status(ref.Index); s != want[unit] {
					t.Fatalf("%s: %s is %v, want %v", c.media, unit, s, want[unit])
				}
				etag := resp.Header.Get("ETag")
				if r := get(t, h, id, c.accept, etag); r.StatusCode != http.StatusNotModified || len(body(t, r)) != 0 {
					t.Fatalf("If-None-Match: %d", r.StatusCode)
				}
			}
		}
	}
	check(t) // the first GET publishes
	before := get(t, h, strings.TrimPrefix(refs["u1"].URI, base+"/statuslists/"), "", "")
	oldTag := before.Header.Get("ETag")

	// Revoking a suspended unit, and another change, show after a publish.
	st.SetUnitStatuses(ctx, "u1", store.StatusInvalid, time.Now())
	st.SetUnitStatuses(ctx, "u3", store.StatusSuspended, time.Now())
	want["u1"], want["u3"] = statuslist.Invalid, statuslist.Suspended
	if err := p.PublishAll(ctx); err != nil {
		t.Fatal(err)
	}
	check(t)
	id1 := strings.TrimPrefix(refs["u1"].URI, base+"/statuslists/")
	if r := get(t, h, id1, "", oldTag); r.StatusCode != http.StatusOK {
		t.Fatalf("old ETag still matches: %d", r.StatusCode)
	}

	// Refusals.
	cases := []struct {
		id, accept string
		want       int
	}{
		{"nosuchlist", "", http.StatusNotFound},
		{"Bad%20Id", "", http.StatusNotFound},
		{id1, "text/html", http.StatusNotAcceptable},
		{id1, "application/statuslist+jwt;q=0", http.StatusNotAcceptable},
	}
	for _, c := range cases {
		if r := get(t, h, c.id, c.accept, ""); r.StatusCode != c.want {
			t.Errorf("%s %q: %d, want %d", c.id, c.accept, r.StatusCode, c.want)
		}
	}
	r := httptest.NewRequest(http.MethodPost, "/statuslists/"+id1, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", w.Code)
	}
}

// testTwoInstances: two publishers on one database serve the same bytes,
// and one that was not told of a change still serves it once another
// instance published it.
func testTwoInstances(t *testing.T, dsn string) {
	ctx := t.Context()
	pki := statuslisttest.NewPKI(t)
	stA := openStore(t, dsn)
	createUnits(t, stA, "u1")
	a := newPublisher(t, stA, testConfig(pki))
	stB := openStore(t, dsn)
	b := newPublisher(t, stB, testConfig(pki))
	ref, err := a.Allocate(ctx, "u1", store.StatusKindKey, "k1")
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimPrefix(ref.URI, base+"/statuslists/")
	if err := a.PublishAll(ctx); err != nil {
		t.Fatal(err)
	}
	ja, jb := body(t, get(t, a.Handler(), id, "", "")), body(t, get(t, b.Handler(), id, "", ""))
	if !bytes.Equal(ja, jb) {
		t.Fatal("instances serve different tokens")
	}
	if _, err := stB.SetKeyStatus(ctx, "u1", "k1", store.StatusInvalid, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := b.PublishAll(ctx); err != nil {
		t.Fatal(err)
	}
	// a has an older array in memory; publishing from it must not replace
	// b's newer token.
	if err := a.PublishAll(ctx); err != nil {
		t.Fatal(err)
	}
	v := &statuslist.Verifier{Key: &pki.Key.PublicKey}
	for name, p := range map[string]*Publisher{"a": a, "b": b} {
		got, err := v.VerifyJWT(body(t, get(t, p.Handler(), id, "", "")), ref.URI)
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := got.Status(ref.Index); s != statuslist.Invalid {
			t.Fatalf("instance %s serves %v", name, s)
		}
	}
}

// countingStore counts full builds and signatures' stores.
type countingStore struct {
	*store.Store
	builds, puts atomic.Int32
}

func (c *countingStore) ListStatuses(ctx context.Context, id string) ([]store.StatusChange, int64, error) {
	c.builds.Add(1)
	return c.Store.ListStatuses(ctx, id)
}

func (c *countingStore) PutStatusToken(ctx context.Context, t store.StatusToken) (bool, error) {
	c.puts.Add(1)
	return c.Store.PutStatusToken(ctx, t)
}

// TestDebounce: a burst of notifications gives one publication, and the
// array is built in full once, then updated from changes.
func TestDebounce(t *testing.T) {
	st := &countingStore{Store: openStore(t, testenv.SQLite(t))}
	for i := range 20 {
		createUnits(t, st.Store, fmt.Sprintf("u%d", i))
	}
	pki := statuslisttest.NewPKI(t)
	cfg := testConfig(pki)
	cfg.Pool = 1
	fire := make(chan time.Time)
	var requested sync.WaitGroup
	cfg.after = func(d time.Duration) <-chan time.Time {
		if d == cfg.Debounce {
			requested.Done()
			return fire
		}
		return nil // no refresh in this test
	}
	published := make(chan int64, 10)
	cfg.onPublish = func(_ string, v int64) { published <- v }
	p := newPublisher(t, st, cfg)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()

	for i := range 20 {
		if _, err := p.Allocate(t.Context(), fmt.Sprintf("u%d", i), store.StatusKindWIA, ""); err != nil {
			t.Fatal(err)
		}
	}
	for round := int64(1); round <= 2; round++ {
		requested.Add(1)
		for i := range 20 {
			st.SetUnitStatuses(t.Context(), fmt.Sprintf("u%d", i), uint8(round%2)*store.StatusSuspended+uint8(1-round%2)*store.StatusValid, time.Now())
			p.Notify()
		}
		requested.Wait() // the loop is in its debounce delay
		p.Notify()       // absorbed by the publication that follows
		fire <- time.Now()
		if v := <-published; v != round*20 {
			t.Fatalf("round %d published version %d", round, v)
		}
	}
	cancel()
	<-done
	if n := len(published); n != 0 {
		t.Fatalf("%d more publications after the bursts", n)
	}
	if st.builds.Load() != 1 || st.puts.Load() != 4 {
		t.Fatalf("%d full builds, %d tokens stored; want 1 and 4", st.builds.Load(), st.puts.Load())
	}
}
