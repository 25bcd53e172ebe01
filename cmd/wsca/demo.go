package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/config"
	"github.com/wsca/wsca/internal/datadir"
	"github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// localServer is the wscad stack (store, device, key service, PIN server,
// R2PS dispatcher, HTTP server) on embedded defaults in a data directory,
// serving on a loopback port: for the demo and the tests.
type localServer struct {
	url    string
	svc    *wscd.Services
	pins   *pin.Server
	device device.Info
	stack  *stack.Stack
	stop   func() error
}

// startLocalServer builds the stack as wscad does with default settings
// (stack.Build: both roles, sign_ecdsa in context "signing" bound to sign:
// tasks) and serves it on 127.0.0.1 until stop is called or ctx ends.
func startLocalServer(ctx context.Context, dataDir, backend string, log *slog.Logger) (_ *localServer, err error) {
	res, err := config.State{DataDir: dataDir, DeviceBackend: backend}.Resolve()
	if err != nil {
		return nil, err
	}
	o, err := config.Open(ctx, res, log, nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, o.Close())
		}
	}()
	// The listener first: its URL goes into the status lists.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	url := "http://" + ln.Addr().String()
	stk, err := stack.Build(ctx, o.Store, o.WSCD, stack.Options{
		Addr: ln.Addr().String(), PublicURL: url, Logger: log, Version: version,
		// As wscad by default: every PIN record's OPRF key on the device.
		OPRFInHSM: true,
		// Short, so the demo's status changes show at once.
		StatusLists: stack.StatusListOptions{ShardSize: 10_000, Pool: 2, Debounce: 10 * time.Millisecond},
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- stk.Server.Serve(sctx, ln) }()
	go func() { done <- stk.Background(sctx) }()
	stop := func() error {
		cancel()
		return errors.Join(<-done, <-done, o.Close())
	}
	return &localServer{url: url, svc: o.WSCD, pins: stk.PIN, device: o.Device.Info(), stack: stk, stop: stop}, nil
}

// demoStep is one numbered line of the demo.
type demoStep struct {
	N      int    `json:"n"`
	Name   string `json:"step"`
	Detail string `json:"detail"`
}

type demo struct {
	out    io.Writer // nil with --json
	steps  []demoStep
	srv    *localServer
	hc     *http.Client
	unit   string
	code   string // the activation code, handed over out of band
	wallet *wallet
	sess   *client.Session
	key    client.Key
	digest []byte
	sig    []byte
}

// step runs fn as the next step and prints its line.
func (d *demo) step(name string, fn func() (string, error)) error {
	n := len(d.steps) + 1
	detail, err := fn()
	if err != nil {
		return fmt.Errorf("demo step %d (%s) failed: %w", n, name, err)
	}
	d.steps = append(d.steps, demoStep{N: n, Name: name, Detail: detail})
	if d.out != nil {
		fmt.Fprintf(d.out, "%d. %s: %s\n", n, name, detail)
	}
	return nil
}

// The demo's PINs; the wallet's PIN never reaches the server (OPAQUE).
var (
	demoPIN      = []byte("123456")
	demoWrongPIN = []byte("999999")
)

func demoR2PS(ctx context.Context, e env, args []string) error {
	d := &demo{}
	return runDemo(ctx, e, args, "r2ps", "R2PS", d, d.run)
}

// runDemo is the frame of a demo command: its flags, a temporary data
// directory removed afterwards, the steps printed as they run (or as JSON)
// and the final OK line.
func runDemo(ctx context.Context, e env, args []string, cmd, title string, d *demo,
	run func(ctx context.Context, dir, backend string, log *slog.Logger) error) error {
	fs := flag.NewFlagSet("wsca demo "+cmd, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	backend := fs.String("device-backend", datadir.Auto, "device of the temporary data directory: auto (SoftHSM if installed, else soft), softhsm or soft")
	logLevel := fs.String("log-level", "error", "server log level on stderr: debug, info, warn or error")
	asJSON := fs.Bool("json", false, "print the steps as JSON")
	if _, err := parseArgs(e, fs, args, 0, nil); err != nil {
		return err
	}
	log, err := config.Logger(e.stderr, "text", *logLevel)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "wsca-demo-")
	if err != nil {
		return err
	}
	if !*asJSON {
		d.out = e.stdout
	}
	err = run(ctx, dir, *backend, log)
	if rerr := os.RemoveAll(dir); rerr != nil {
		err = errors.Join(err, fmt.Errorf("removing the demo's directory: %w", rerr))
	}
	if err != nil {
		return err
	}
	final := fmt.Sprintf("OK: %s demo finished (%d steps)", title, len(d.steps))
	return printResult(e, *asJSON, map[string]any{"ok": true, "steps": d.steps, "result": final}, func(o io.Writer) {
		fmt.Fprintln(o, final)
	})
}

// demoStepFunc is one named step of a demo after its server started.
type demoStepFunc struct {
	name string
	fn   func(context.Context) (string, error)
}

// play starts the demo's server in dir (its first step, described by
// describe), runs the steps in order and stops the server.
func (d *demo) play(ctx context.Context, dir, backend string, log *slog.Logger, describe func(*localServer) string, steps []demoStepFunc) (err error) {
	// Loopback only: no proxy, whatever the environment says.
	d.hc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer d.hc.CloseIdleConnections()
	err = d.step("server", func() (string, error) {
		srv, err := startLocalServer(ctx, filepath.Join(dir, "data"), backend, log)
		if err != nil {
			return "", err
		}
		d.srv = srv
		return describe(srv), nil
	})
	if err != nil {
		return err
	}
	defer func() {
		if serr := d.srv.stop(); serr != nil {
			err = errors.Join(err, fmt.Errorf("stopping the demo server: %w", serr))
		}
		if d.sess != nil {
			clear(d.sess.Key)
		}
	}()
	for _, s := range steps {
		if err := d.step(s.name, func() (string, error) { return s.fn(ctx) }); err != nil {
			return err
		}
	}
	return nil
}

// run plays the R2PS demo against a server in dir.
func (d *demo) run(ctx context.Context, dir, backend string, log *slog.Logger) error {
	describe := func(srv *localServer) string {
		what := srv.device.Backend + " device, " + srv.device.Description
		if srv.device.SoftwareOnly() {
			what += " (software keys, development only)"
		}
		return fmt.Sprintf("in-process wscad at %s on a SQLite store and the %s", srv.url, what)
	}
	return d.play(ctx, dir, backend, log, describe, []demoStepFunc{
		{"operator", d.operator},
		{"enrol", d.enrol},
		{"login", d.login},
		{"keygen", d.keygen},
		{"sign", d.sign},
		{"verify", d.verify},
		{"wrong PIN", d.wrongPIN},
		{"right PIN", d.rightPIN},
	})
}

func (d *demo) operator(ctx context.Context) (string, error) {
	d.unit = wscd.NewUnitID()
	if err := d.srv.svc.Units.Create(ctx, d.unit); err != nil {
		return "", err
	}
	code, err := d.srv.svc.Units.IssueActivationCode(ctx, d.unit, store.PurposeActivation, 0)
	if err != nil {
		return "", err
	}
	d.code = code.Code
	return fmt.Sprintf("unit %s created, one-time activation code issued until %s", d.unit, code.ExpiresAt.Format(time.RFC3339)), nil
}

func (d *demo) enrol(ctx context.Context) (string, error) {
	w, err := newWallet(ctx, d.hc, "", d.srv.url, d.unit, "hsm")
	if err != nil {
		return "", err
	}
	if err := w.enrol(ctx, d.code, demoPIN); err != nil {
		return "", err
	}
	d.wallet = w
	csk, cak, err := w.kids()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("fresh CSK %s and CAK %s registered with the activation code and a PIN (OPAQUE); server keys pinned: signing %s, agreement %s",
		abbrev(csk), abbrev(cak), abbrev(w.server.SigningKID), abbrev(w.server.AgreementKID)), nil
}

func (d *demo) login(ctx context.Context) (string, error) {
	c, err := d.wallet.client()
	if err != nil {
		return "", err
	}
	if d.sess, err = c.Login(ctx, demoPIN, client.LoginOptions{}); err != nil {
		return "", err
	}
	return fmt.Sprintf("PIN proved with OPAQUE (never sent); session %s until %s", abbrev(d.sess.ID), d.sess.ExpiresAt.Format(time.RFC3339)), nil
}

func (d *demo) keygen(ctx context.Context) (string, error) {
	var err error
	if d.key, err = d.sess.Generate(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("P-256 key %s made on the server's device for the unit", d.key.KID), nil
}

const demoMessage = "wsca R2PS demo"

func (d *demo) sign(ctx context.Context) (string, error) {
	h := sha256.Sum256([]byte(demoMessage))
	d.digest = h[:]
	var err error
	if d.sig, err = d.sess.Sign(ctx, d.key.KID, d.digest); err != nil {
		return "", err
	}
	return fmt.Sprintf("SHA-256 of %q signed with %s: %d-byte DER ECDSA signature", demoMessage, d.key.KID, len(d.sig)), nil
}

func (d *demo) verify(ctx context.Context) (string, error) {
	if err := verifyWithListed(ctx, d.sess, d.key.KID, d.digest, d.sig); err != nil {
		return "", err
	}
	if !ecdsa.VerifyASN1(d.key.Public, d.digest, d.sig) {
		return "", errors.New("the signature does not verify with the generated key")
	}
	return "signature verified locally with the key's public key (from hsm_list_keys, kid = its thumbprint)", nil
}

func (d *demo) wrongPIN(ctx context.Context) (string, error) {
	c, err := d.wallet.client()
	if err != nil {
		return "", err
	}
	_, err = c.Login(ctx, demoWrongPIN, client.LoginOptions{})
	if !client.IsCode(err, r2ps.CodeUnauthorized) {
		return "", fmt.Errorf("a wrong PIN gave %v, want %s", err, r2ps.CodeUnauthorized)
	}
	a, err := d.srv.pins.Attempts(ctx, d.unit, d.wallet.context)
	if err != nil {
		return "", err
	}
	if a.Failures != 1 || a.Locked {
		return "", fmt.Errorf("server-side counter after one wrong PIN: %+v, want 1 failure", a)
	}
	return fmt.Sprintf("login refused with %s; server-side counter: %d failed attempt of %d before lock", r2ps.CodeUnauthorized, a.Failures, pin.DefaultMaxAttempts), nil
}

func (d *demo) rightPIN(ctx context.Context) (string, error) {
	c, err := d.wallet.client()
	if err != nil {
		return "", err
	}
	s, err := c.Login(ctx, demoPIN, client.LoginOptions{})
	if err != nil {
		return "", err
	}
	clear(s.Key)
	a, err := d.srv.pins.Attempts(ctx, d.unit, d.wallet.context)
	if err != nil {
		return "", err
	}
	if a.Failures != 0 {
		return "", fmt.Errorf("server-side counter after the right PIN: %+v, want 0", a)
	}
	return "login with the right PIN; server-side counter back to 0", nil
}

// abbrev abbreviates an identifier for the demo's lines.
func abbrev(id string) string {
	if len(id) <= 12 {
		return id
	}
	return id[:12] + "…"
}
