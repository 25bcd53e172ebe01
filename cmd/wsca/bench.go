package main

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/bits"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsca/wsca/internal/proccpu"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/r2ps/client/httptransport"
)

// Bounds of a bench run: it always ends.
const (
	benchMaxRequests    = 10_000_000
	benchMaxDuration    = time.Hour
	benchMaxConcurrency = 256
	// benchRequestsTimeout bounds a --requests run that sets no --duration.
	benchRequestsTimeout = 10 * time.Minute
)

var benchOps = []string{"sign", "ecdh", "login", "list"}

// benchOptions are the flags of wsca bench.
type benchOptions struct {
	url         string
	unit, code  string
	pinContext  string
	op          string
	duration    time.Duration
	requests    int
	concurrency int
	serverPID   string
	dbPIDs      string
	admin       *adminFlags
}

// benchCmd is wsca bench: it enrols wallet units, logs in, makes a key and
// drives one R2PS operation from concurrent workers, then prints a summary.
// With the admin API each worker has its own unit (as many wallets would);
// with --unit and --code the workers share that one unit and its session.
func benchCmd(ctx context.Context, e env, args []string) error {
	o, err := parseBench(e, args)
	if err != nil {
		return err
	}
	progress := !o.admin.asJSON && benchIsTerminal(e.stderr)
	if progress {
		fmt.Fprintf(e.stderr, "wsca bench: enrolling %d unit(s) at %s\n", o.units(), o.url)
	}
	workers, cleanup, err := benchSetup(ctx, o)
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil {
		return err
	}
	cpu := newBenchCPU(proccpu.Proc{}, o)
	sum := benchRun(ctx, o, workers, e.stderr, progress, cpu)
	return printResult(e, o.admin.asJSON, sum, sum.text)
}

func parseBench(e env, args []string) (*benchOptions, error) {
	f := newAdminFlags(e, "bench")
	o := &benchOptions{admin: f}
	f.fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "base `URL` of the wscad to load (one you operate)")
	f.fs.StringVar(&o.unit, "unit", "", "enrol this `unit` with --code instead of creating units through the admin API")
	f.fs.StringVar(&o.code, "code", "", "activation `code` of --unit")
	f.fs.StringVar(&o.pinContext, "context", "hsm", "security `context` of the PIN (one where sign_ecdsa needs no task)")
	f.fs.StringVar(&o.op, "op", "sign", "operation: "+strings.Join(benchOps, ", "))
	f.fs.DurationVar(&o.duration, "duration", 0, "how long to run (default 30s; with --requests, a time limit, default 10m)")
	f.fs.IntVar(&o.requests, "requests", 0, "how many operations to run (default: as many as --duration allows)")
	f.fs.IntVar(&o.concurrency, "concurrency", 1, "operations in flight at once")
	f.fs.StringVar(&o.serverPID, "server-pid", "auto", "`pid` of the wscad whose CPU per operation to report; auto: the process listening on --url's port when it is loopback; none: off")
	f.fs.StringVar(&o.dbPIDs, "db-pids", "auto", "comma-separated `pids` of database processes (each with its descendants, e.g. a postmaster) whose CPU per operation to report; auto: the PostgreSQL listening on a loopback port the server is connected to; none: off")
	if _, err := f.parse(e, args, 0); err != nil {
		return nil, err
	}
	bad := func(format string, a ...any) (*benchOptions, error) {
		fmt.Fprintf(e.stderr, "wsca bench: "+format+"\n", a...)
		return nil, errUsage
	}
	switch {
	case !slices.Contains(benchOps, o.op):
		return bad("--op must be one of %s", strings.Join(benchOps, ", "))
	case o.concurrency < 1 || o.concurrency > benchMaxConcurrency:
		return bad("--concurrency must be between 1 and %d", benchMaxConcurrency)
	case o.requests < 0 || o.requests > benchMaxRequests:
		return bad("--requests must be between 1 and %d", benchMaxRequests)
	case o.duration < 0 || o.duration > benchMaxDuration:
		return bad("--duration must be at most %s", benchMaxDuration)
	case !benchValidPIDs(o.serverPID, false):
		return bad("--server-pid must be auto, none or a process id")
	case !benchValidPIDs(o.dbPIDs, true):
		return bad("--db-pids must be auto, none or comma-separated process ids")
	case (o.unit == "") != (o.code == ""):
		return bad("--unit and --code go together")
	case o.code != "" && o.op == "login" && o.concurrency > 1:
		// Each login in flight counts as a PIN failure until it finishes:
		// enough concurrent logins of one unit lock it.
		return bad("--op login on one unit (--code) needs --concurrency 1; the admin API gives each worker its own unit")
	}
	if o.duration == 0 {
		o.duration = 30 * time.Second
		if o.requests > 0 {
			o.duration = benchRequestsTimeout
		}
	}
	return o, nil
}

// units is how many wallet units the run enrols.
func (o *benchOptions) units() int {
	if o.code != "" {
		return 1
	}
	return o.concurrency
}

// benchWorker is one unit's session and key, and the operation to run.
type benchWorker struct {
	c    *client.Client
	s    *client.Session
	kid  string
	pin  []byte
	op   func(ctx context.Context) error
	unit string
}

// benchSetup enrols the units, logs in and makes a key for each; cleanup
// deletes the keys (and, with the admin API, revokes the units).
func benchSetup(ctx context.Context, o *benchOptions) ([]*benchWorker, func(), error) {
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: o.concurrency, IdleConnTimeout: time.Minute,
	}}
	keys, err := client.FetchServerKeys(ctx, httptransport.New(hc), o.url)
	if err != nil {
		return nil, nil, err
	}
	var units []*benchWorker
	cleanup := func() {
		// The run's context may be cancelled (^C): clean up regardless.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for _, u := range units {
			if u.s != nil && u.kid != "" {
				u.s.DeleteKey(cctx, u.kid)
			}
			if o.code == "" {
				var out map[string]any
				o.admin.call(cctx, "POST", "/units/"+u.unit+"/state", map[string]string{"state": "revoked"}, &out)
			}
		}
	}
	for range o.units() {
		u, err := benchEnrol(ctx, o, hc, keys)
		if u != nil {
			units = append(units, u)
		}
		if err != nil {
			return nil, cleanup, err
		}
	}
	workers := make([]*benchWorker, o.concurrency)
	for i := range workers {
		workers[i] = units[i%len(units)]
	}
	return workers, cleanup, nil
}

// benchEnrol enrols one unit with a random PIN, logs in for the run and
// makes a key. The returned worker is non-nil once the unit exists.
func benchEnrol(ctx context.Context, o *benchOptions, hc *http.Client, keys client.ServerKeys) (*benchWorker, error) {
	unit, code := o.unit, o.code
	if code == "" {
		var c adminCode
		if err := o.admin.call(ctx, "POST", "/units", map[string]any{}, &c); err != nil {
			return nil, err
		}
		unit, code = c.Unit, c.Code
	}
	// From here on w names the unit, for the cleanup.
	w := &benchWorker{unit: unit}
	csk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return w, err
	}
	cak, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return w, err
	}
	if w.c, err = client.New(client.Config{URL: o.url, Transport: httptransport.New(hc), Unit: unit, Context: o.pinContext,
		SigningKey: csk, AgreementKey: cak, Server: keys}); err != nil {
		return w, err
	}
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return w, err
	}
	w.pin = fmt.Appendf(nil, "%06d", n)
	if err := w.c.Enrol(ctx, code, w.pin); err != nil {
		return w, fmt.Errorf("enrol unit %s: %w", unit, err)
	}
	// The session outlives the run; the server caps it at its --max-session.
	if w.s, err = w.c.Login(ctx, w.pin, client.LoginOptions{Duration: o.duration + time.Minute}); err != nil {
		return w, fmt.Errorf("login of unit %s: %w", unit, err)
	}
	k, err := w.s.Generate(ctx)
	if err != nil {
		return w, fmt.Errorf("key for unit %s: %w", unit, err)
	}
	w.kid = k.KID
	w.op, err = benchOp(o.op, w)
	return w, err
}

// benchOp returns the operation a worker repeats.
func benchOp(op string, w *benchWorker) (func(ctx context.Context) error, error) {
	switch op {
	case "sign":
		digest := sha256.Sum256([]byte("wsca bench"))
		return func(ctx context.Context) error {
			_, err := w.s.Sign(ctx, w.kid, digest[:])
			return err
		}, nil
	case "ecdh":
		peer, err := ecdh.P256().GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		point := peer.PublicKey().Bytes()
		return func(ctx context.Context) error {
			_, err := w.s.ECDH(ctx, w.kid, point)
			return err
		}, nil
	case "login":
		// Short sessions: the server forgets them soon.
		return func(ctx context.Context) error {
			_, err := w.c.Login(ctx, w.pin, client.LoginOptions{Duration: time.Second})
			return err
		}, nil
	case "list":
		return func(ctx context.Context) error {
			_, err := w.s.ListKeys(ctx)
			return err
		}, nil
	}
	return nil, fmt.Errorf("unknown operation %q", op)
}

// benchSummary is the outcome of a run.
type benchSummary struct {
	Op          string         `json:"op"`
	URL         string         `json:"url"`
	Concurrency int            `json:"concurrency"`
	Units       int            `json:"units"`
	Requests    uint64         `json:"requests"`
	OK          uint64         `json:"ok"`
	Errors      map[string]int `json:"errors"`
	Interrupted bool           `json:"interrupted,omitempty"`
	Seconds     float64        `json:"duration_seconds"`
	// Throughput counts successful operations per second.
	Throughput float64 `json:"throughput_ops_per_second"`
	// Latencies of successful operations, in milliseconds.
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
	benchCPUSummary
}

func (s benchSummary) text(w io.Writer) {
	fmt.Fprintf(w, "operation:   %s at %s, concurrency %d, %d unit(s)\n", s.Op, s.URL, s.Concurrency, s.Units)
	fmt.Fprintf(w, "requests:    %d (%d ok, %d failed)", s.Requests, s.OK, s.Requests-s.OK)
	if s.Interrupted {
		fmt.Fprint(w, ", interrupted")
	}
	fmt.Fprintln(w)
	codes := make([]string, 0, len(s.Errors))
	for c := range s.Errors {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		fmt.Fprintf(w, "  error %-20s %d\n", c, s.Errors[c])
	}
	fmt.Fprintf(w, "duration:    %.2fs\n", s.Seconds)
	fmt.Fprintf(w, "throughput:  %.1f ops/s\n", s.Throughput)
	fmt.Fprintf(w, "latency:     p50 %s  p90 %s  p99 %s  max %s\n", benchFmtMs(s.P50), benchFmtMs(s.P90), benchFmtMs(s.P99), benchFmtMs(s.Max))
	s.benchCPUSummary.text(w)
}

func benchFmtMs(ms float64) string { return fmt.Sprintf("%.2fms", ms) }

// benchState is what the workers share during a run.
type benchState struct {
	mu     sync.Mutex
	hist   benchHistogram
	errors map[string]int
	issued atomic.Uint64
	done   atomic.Uint64
}

// benchErrorCode names a failure for the summary: the server's code, or where
// the request failed.
func benchErrorCode(err error) string {
	var ce *client.Error
	switch {
	case errors.As(err, &ce):
		return ce.Code
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	var ue interface{ Timeout() bool }
	if errors.As(err, &ue) && ue.Timeout() {
		return "timeout"
	}
	if strings.Contains(err.Error(), "client: response") {
		return "bad_response"
	}
	return "transport"
}

// benchRun drives the workers until the request count or the duration is
// reached, or ctx ends; requests in flight then finish.
func benchRun(ctx context.Context, o *benchOptions, workers []*benchWorker, stderr io.Writer, progress bool, cpu *benchCPU) benchSummary {
	st := &benchState{errors: map[string]int{}}
	cpu0 := cpu.snapshot()
	start := time.Now()
	deadline := start.Add(o.duration)
	// Requests in flight at the deadline or at ^C finish with their own
	// timeout; they are not cut off.
	reqCtx := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				if n := st.issued.Add(1); o.requests > 0 && n > uint64(o.requests) {
					return
				}
				t0 := time.Now()
				err := w.op(reqCtx)
				d := time.Since(t0)
				st.mu.Lock()
				if err != nil {
					st.errors[benchErrorCode(err)]++
				} else {
					st.hist.record(d)
				}
				st.mu.Unlock()
				st.done.Add(1)
			}
		})
	}
	stop := make(chan struct{})
	var pg sync.WaitGroup
	if progress {
		pg.Go(func() { benchProgress(st, o, start, stderr, stop) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1 := cpu.snapshot()
	close(stop)
	pg.Wait()

	units := map[string]bool{}
	for _, w := range workers {
		units[w.unit] = true
	}
	sum := benchSummary{Op: o.op, URL: o.url, Concurrency: o.concurrency, Units: len(units),
		Requests: st.done.Load(), OK: st.hist.n, Errors: st.errors, Interrupted: ctx.Err() != nil,
		Seconds: elapsed.Seconds()}
	if elapsed > 0 {
		sum.Throughput = float64(sum.OK) / elapsed.Seconds()
	}
	sum.P50, sum.P90, sum.P99 = benchMillis(st.hist.quantile(0.50)), benchMillis(st.hist.quantile(0.90)), benchMillis(st.hist.quantile(0.99))
	sum.Max = benchMillis(st.hist.max)
	sum.benchCPUSummary = cpu.summary(cpu0, cpu1, sum.Requests)
	return sum
}

func benchMillis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// benchProgress rewrites one status line on stderr until stop is closed,
// then erases it.
func benchProgress(st *benchState, o *benchOptions, start time.Time, w io.Writer, stop <-chan struct{}) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	width := 0
	for {
		select {
		case <-stop:
			fmt.Fprintf(w, "\r%s\r", strings.Repeat(" ", width))
			return
		case <-t.C:
		}
		elapsed := time.Since(start)
		done := st.done.Load()
		st.mu.Lock()
		p50, p99, nerr := st.hist.quantile(0.50), st.hist.quantile(0.99), 0
		for _, n := range st.errors {
			nerr += n
		}
		st.mu.Unlock()
		var line string
		if o.requests > 0 {
			line = fmt.Sprintf("%s %d/%d", o.op, done, o.requests)
		} else {
			line = fmt.Sprintf("%s %d done, %s/%s", o.op, done, elapsed.Truncate(100*time.Millisecond), o.duration)
		}
		line += fmt.Sprintf("  %.0f ops/s  p50 %s  p99 %s  errors %d",
			float64(done)/elapsed.Seconds(), benchFmtMs(benchMillis(p50)), benchFmtMs(benchMillis(p99)), nerr)
		pad := max(width-len(line), 0)
		width = len(line)
		fmt.Fprintf(w, "\r%s%s", line, strings.Repeat(" ", pad))
	}
}

// benchIsTerminal reports whether w is a character device (a terminal).
func benchIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// benchHistogram counts durations in log-linear buckets, as HdrHistogram does:
// values below 2^benchHistSub ns exactly, larger ones by their benchHistSub+1 top
// bits, so a bucket is at most 1/2^benchHistSub (1.6 %) of its value wide.
type benchHistogram struct {
	counts [(64 - benchHistSub + 1) << benchHistSub]uint64
	n      uint64
	max    time.Duration
}

const benchHistSub = 6

func benchBucket(v uint64) int {
	if v < 1<<benchHistSub {
		return int(v)
	}
	shift := bits.Len64(v) - benchHistSub - 1
	return shift<<benchHistSub + int(v>>shift)
}

// benchBucketValue returns the middle of bucket i.
func benchBucketValue(i int) uint64 {
	if i < 1<<benchHistSub {
		return uint64(i)
	}
	shift := i>>benchHistSub - 1
	m := uint64(i - shift<<benchHistSub)
	return m<<shift + (uint64(1)<<shift)/2
}

func (h *benchHistogram) record(d time.Duration) {
	d = max(d, 0)
	h.counts[benchBucket(uint64(d))]++
	h.n++
	h.max = max(h.max, d)
}

// quantile returns the value at quantile q (0 < q ≤ 1), within a bucket's
// width and never above the largest value recorded; 0 when empty.
func (h *benchHistogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := min(max(uint64(math.Ceil(q*float64(h.n))), 1), h.n) // nearest rank
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			return min(time.Duration(benchBucketValue(i)), h.max)
		}
	}
	return h.max
}
