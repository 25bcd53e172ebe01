package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsca/wsca/internal/proccpu"
	"github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// benchServer is a wscad in-process on loopback: R2PS on one listener, the
// admin API on another, on a soft keystore and SQLite.
type benchServer struct {
	url, adminURL, tokenFile string
	svc                      *wscd.Services
}

func newBenchServer(t *testing.T) *benchServer {
	t.Helper()
	return newBenchServerOn(t, testenv.SQLite(t))
}

// newBenchServerOn is newBenchServer on the store at dsn.
func newBenchServerOn(t *testing.T, dsn string) *benchServer {
	t.Helper()
	const token = "bench-test-admin-token"
	r := stacktest.Start(t, dsn, testdevice.Soft(t), func(o *stack.Options) { o.AdminToken = []byte(token) })
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &benchServer{url: r.URL, adminURL: r.AdminURL, tokenFile: tokenFile, svc: r.Services}
}

// bench runs wsca bench and decodes its JSON summary.
func (s *benchServer) bench(t *testing.T, args ...string) (benchSummary, string) {
	t.Helper()
	var out, errb bytes.Buffer
	args = append([]string{"bench", "--url", s.url, "--json"}, args...)
	if code := run(context.Background(), args, strings.NewReader(""), &out, &errb, func(string) (string, bool) { return "", false }); code != 0 {
		t.Fatalf("wsca %s: exit %d\n%s", strings.Join(args, " "), code, errb.String())
	}
	var sum benchSummary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("summary: %v\n%s", err, out.String())
	}
	return sum, errb.String()
}

// TestBenchAdmin: 50 signatures from 4 workers, each with its own unit
// enrolled through the admin API; every request is counted, none fails,
// the latencies are ordered, nothing is written to stderr (--json), and
// the units are revoked afterwards.
func TestBenchAdmin(t *testing.T) {
	s := newBenchServer(t)
	sum, stderr := s.bench(t, "--admin-url", s.adminURL, "--admin-token-file", s.tokenFile,
		"--requests", "50", "--concurrency", "4", "--op", "sign")
	if sum.Requests != 50 || sum.OK != 50 || len(sum.Errors) != 0 {
		t.Fatalf("summary: %+v", sum)
	}
	if sum.Units != 4 || sum.Concurrency != 4 || sum.Op != "sign" || sum.Throughput <= 0 {
		t.Fatalf("summary: %+v", sum)
	}
	if !(0 < sum.P50 && sum.P50 <= sum.P90 && sum.P90 <= sum.P99 && sum.P99 <= sum.Max) {
		t.Fatalf("latencies out of order: %+v", sum)
	}
	if stderr != "" {
		t.Fatalf("stderr with --json: %q", stderr)
	}
	// The server runs in this process: found by its port, and said so.
	checkCPU(t, sum, sum.ServerCPU, "server")
	if sum.ServerPID != os.Getpid() || len(sum.CPUNotes) != 1 || !strings.Contains(sum.CPUNotes[0], "this process") {
		t.Fatalf("server pid %d (want %d), notes %q", sum.ServerPID, os.Getpid(), sum.CPUNotes)
	}
	if sum.DBCPU != nil || sum.DBPIDs != nil {
		t.Fatalf("db CPU on SQLite: %+v", sum.benchCPUSummary)
	}
	units, err := s.svc.Units.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(units) != 4 {
		t.Fatalf("%d units", len(units))
	}
	for _, u := range units {
		if u.State != store.UnitRevoked {
			t.Fatalf("unit %s left %s", u.ID, u.State)
		}
		if keys, _ := s.svc.Keys.List(context.Background(), u.ID); len(keys) != 0 {
			t.Fatalf("unit %s kept %d keys", u.ID, len(keys))
		}
	}
}

// TestBenchCode: with --unit and --code every op runs on the one unit.
func TestBenchCode(t *testing.T) {
	s := newBenchServer(t)
	ctx := context.Background()
	for _, op := range []string{"ecdh", "list", "login"} {
		unit := wscd.NewUnitID()
		if err := s.svc.Units.Create(ctx, unit); err != nil {
			t.Fatal(err)
		}
		code, err := s.svc.Units.IssueActivationCode(ctx, unit, store.PurposeActivation, 0)
		if err != nil {
			t.Fatal(err)
		}
		conc := "2"
		if op == "login" {
			conc = "1"
		}
		sum, _ := s.bench(t, "--unit", unit, "--code", code.Code, "--requests", "10", "--concurrency", conc, "--op", op)
		if sum.Requests != 10 || sum.OK != 10 || len(sum.Errors) != 0 || sum.Units != 1 {
			t.Fatalf("%s: %+v", op, sum)
		}
	}
}

// TestBenchDuration: a run bounded by time stops there.
func TestBenchDuration(t *testing.T) {
	s := newBenchServer(t)
	ctx := context.Background()
	unit := wscd.NewUnitID()
	if err := s.svc.Units.Create(ctx, unit); err != nil {
		t.Fatal(err)
	}
	code, err := s.svc.Units.IssueActivationCode(ctx, unit, store.PurposeActivation, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sum, _ := s.bench(t, "--unit", unit, "--code", code.Code, "--duration", "300ms", "--op", "list")
	if took := time.Since(start); took > 10*time.Second || sum.Seconds < 0.3 || sum.Requests == 0 || sum.OK != sum.Requests {
		t.Fatalf("took %s: %+v", took, sum)
	}
}

// TestBenchErrorCode: failures are counted by the server's code, or by
// where they happened.
func TestBenchErrorCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&client.Error{Code: r2ps.CodeAccessDenied, Status: 200}, r2ps.CodeAccessDenied},
		{fmt.Errorf("client: %w", &client.Error{Code: r2ps.CodeTryLater, Status: 503}), r2ps.CodeTryLater},
		{fmt.Errorf("client: %w", context.DeadlineExceeded), "timeout"},
		{errors.New("client: response: bad signature"), "bad_response"},
		{errors.New("client: dial tcp: connection refused"), "transport"},
	} {
		if got := benchErrorCode(tc.err); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestBenchUsage(t *testing.T) {
	c := cli{t: t, dir: t.TempDir()}
	for _, args := range [][]string{
		{"bench", "--op", "delete"},
		{"bench", "--concurrency", "0"},
		{"bench", "--concurrency", "100000"},
		{"bench", "--requests", "-1"},
		{"bench", "--duration", "48h"},
		{"bench", "--unit", "u"},
		{"bench", "--unit", "u", "--code", "c", "--op", "login", "--concurrency", "2"},
		{"bench", "--server-pid", "0"},
		{"bench", "--server-pid", "1,2"},
		{"bench", "--server-pid", "self"},
		{"bench", "--db-pids", "1,x"},
		{"bench", "--db-pids", ""},
	} {
		if code, _, errs := c.run(args...); code != 2 {
			t.Errorf("wsca %v: exit %d, want 2 (%s)", args, code, errs)
		}
	}
}

// TestBenchHistogram: quantiles are within a bucket (1/64) of the exact
// nearest-rank quantiles of the samples, and never above the maximum.
func TestBenchHistogram(t *testing.T) {
	var h benchHistogram
	if h.quantile(0.5) != 0 {
		t.Fatal("empty histogram")
	}
	r := rand.New(rand.NewPCG(1, 2))
	var ds []time.Duration
	for range 10000 {
		d := time.Duration(r.ExpFloat64() * float64(2*time.Millisecond))
		ds = append(ds, d)
		h.record(d)
	}
	slices.Sort(ds)
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		want := ds[max(int(float64(len(ds))*q+0.999999)-1, 0)]
		got := h.quantile(q)
		if diff := float64(got-want) / float64(want); diff < -1.0/64 || diff > 1.0/64 {
			t.Errorf("q %v: got %v, want %v", q, got, want)
		}
	}
	if h.quantile(1) != ds[len(ds)-1] || h.max != ds[len(ds)-1] {
		t.Errorf("max %v %v, want %v", h.quantile(1), h.max, ds[len(ds)-1])
	}
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 1 << 20, 1<<63 + 12345, 1<<64 - 1} {
		i := benchBucket(v)
		if mid := benchBucketValue(i); benchBucket(mid) != i {
			t.Errorf("value %d: bucket %d, its middle %d is in bucket %d", v, i, mid, benchBucket(mid))
		}
	}
}

// checkCPU: a CPU per operation was measured, is positive, and is no
// more than the run's wall time on every CPU allows (a consistency check
// of the units, not a timing threshold).
func checkCPU(t *testing.T, sum benchSummary, ms *float64, what string) {
	t.Helper()
	if ms == nil {
		t.Fatalf("no %s CPU: %+v", what, sum.benchCPUSummary)
	}
	if limit := sum.Seconds * 1000 * float64(runtime.NumCPU()) / float64(sum.Requests); *ms <= 0 || *ms > limit {
		t.Fatalf("%s CPU %.4f ms/op, want in (0, %.4f]", what, *ms, limit)
	}
}

// TestBenchCPUFlags: --server-pid and --db-pids name the processes
// measured, none turns each off, and the text output shows them.
func TestBenchCPUFlags(t *testing.T) {
	s := newBenchServer(t)
	admin := []string{"--admin-url", s.adminURL, "--admin-token-file", s.tokenFile, "--requests", "10", "--op", "list"}
	self := strconv.Itoa(os.Getpid())
	sum, _ := s.bench(t, append(admin, "--server-pid", self, "--db-pids", self+","+self)...)
	checkCPU(t, sum, sum.ServerCPU, "server")
	checkCPU(t, sum, sum.DBCPU, "db")
	checkCPU(t, sum, sum.ClientCPU, "client")
	if sum.ServerPID != os.Getpid() || !slices.Equal(sum.DBPIDs, []int{os.Getpid(), os.Getpid()}) || sum.DBProcs != 1 {
		t.Fatalf("pids: %+v", sum.benchCPUSummary)
	}
	sum, _ = s.bench(t, append(admin, "--server-pid", "none", "--db-pids", "none")...)
	if sum.ServerCPU != nil || sum.DBCPU != nil || sum.ServerPID != 0 || sum.DBPIDs != nil || sum.CPUNotes != nil {
		t.Fatalf("none: %+v", sum.benchCPUSummary)
	}
	// A server that is not loopback is not looked for.
	c := newBenchCPU(proccpu.Proc{}, &benchOptions{url: "http://192.0.2.1:8080", serverPID: "auto", dbPIDs: "auto"})
	if c.serverPID != 0 || len(c.notes) != 1 || !strings.Contains(c.notes[0], "not loopback") {
		t.Fatalf("remote server: %+v", c)
	}
	// The text summary names both.
	var out bytes.Buffer
	v := 0.5
	benchSummary{Requests: 1, benchCPUSummary: benchCPUSummary{ServerPID: 7, ServerCPU: &v, DBPIDs: []int{8}, DBProcs: 3, DBCPU: &v}}.text(&out)
	if !strings.Contains(out.String(), "server CPU/op 0.500ms (pid 7)  db CPU/op 0.500ms (pids 8, 3 processes)") {
		t.Fatalf("text: %s", out.String())
	}
}

// TestBenchCPUPostgres: on PostgreSQL the database is found through the
// server's loopback connections, and its CPU is counted.
func TestBenchCPUPostgres(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	s := newBenchServerOn(t, testenv.Postgres(t))
	// /proc counts CPU in 10 ms ticks: enough requests that the database's
	// share (a quarter of a millisecond each) spans several ticks.
	sum, _ := s.bench(t, "--admin-url", s.adminURL, "--admin-token-file", s.tokenFile, "--requests", "400", "--concurrency", "2", "--op", "sign")
	if sum.OK != 400 {
		t.Fatalf("summary: %+v", sum)
	}
	checkCPU(t, sum, sum.ServerCPU, "server")
	checkCPU(t, sum, sum.DBCPU, "db")
	if len(sum.DBPIDs) != 1 || sum.DBProcs < 2 {
		t.Fatalf("db: %+v", sum.benchCPUSummary)
	}
	st, err := proccpu.Proc{}.Stat(sum.DBPIDs[0])
	if err != nil || st.Comm != "postgres" {
		t.Fatalf("db pid %d: %+v, %v", sum.DBPIDs[0], st, err)
	}
}
