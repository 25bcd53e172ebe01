//go:build cgo && !nopkcs11

package dispatch_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/bytemare/opaque"
	"github.com/bytemare/opaque/message"
	"github.com/go-jose/go-jose/v4"
	p11 "github.com/miekg/pkcs11"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/device/pkcs11"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/r2ps/dispatch"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// The benchmarks put the whole R2PS path next to its floor, in one process
// and one run (docs/benchmarks.md, "R2PS protocol"):
//
//   - BenchmarkSign: sign_ecdsa in an established session against a bare
//     C_SignInit + C_Sign on the same key through a second miekg/pkcs11
//     context (issue 3's target: at least 0.7× its throughput);
//   - BenchmarkSignSteps: the server-side steps of that request, alone and
//     in sequence, to show where the time goes;
//   - BenchmarkLogin: the server side of create_session (evaluate and
//     finalize through Dispatcher.Serve) against bytemare's GenerateKE2.
//
// They need the test token and database (WSCA_TEST_* variables, as
// scripts/bench.sh sets them):
//
//	go test -run '^$' -bench . -benchmem -count 5 ./r2ps/dispatch/

// benchWorld is the wscad stack in-process: store, SoftHSM, key service,
// PIN server, dispatcher, and the HTTP server on loopback.
type benchWorld struct {
	url  string
	svc  *wscd.Service
	st   *store.Store
	pins *pin.Server
	disp *dispatch.Dispatcher
}

func newBenchWorld(b *testing.B, dsn string) *benchWorld {
	b.Helper()
	r := stacktest.Start(b, dsn, testdevice.PKCS11(b), nil)
	return &benchWorld{url: r.URL, svc: r.Keys, st: r.Store, pins: r.PIN, disp: r.R2PS}
}

// timer records the time of each exchange a transport carries.
type timer struct {
	last  time.Duration
	total time.Duration
	calls []time.Duration // every exchange since the last reset
}

func (t *timer) add(d time.Duration) {
	t.last = d
	t.total += d
	t.calls = append(t.calls, d)
}

func (t *timer) reset() { *t = timer{calls: t.calls[:0]} }

// serveTransport hands each request body to Dispatcher.Serve, with no
// HTTP and no network, and times the Serve call alone: the server's whole
// cost for the message, without the client's.
type serveTransport struct {
	d *dispatch.Dispatcher
	timer
}

func (t *serveTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	rep := t.d.Serve(req.Context(), body)
	t.add(time.Since(t0))
	return &http.Response{
		StatusCode: rep.Status, Header: http.Header{"Content-Type": {rep.ContentType}},
		Body: io.NopCloser(bytes.NewReader(rep.Body)), ContentLength: int64(len(rep.Body)), Request: req,
	}, nil
}

// wireTransport carries requests over loopback HTTP (keep-alive) and times
// each exchange until the whole answer is read: the server's cost plus
// HTTP's, without the client's own cryptography.
type wireTransport struct {
	rt http.RoundTripper
	timer
}

func (t *wireTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t0 := time.Now()
	resp, err := t.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.add(time.Since(t0))
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// newClient makes a client for unit with fresh keys that sends through rt.
func (w *benchWorld) newClient(b *testing.B, unit string, rt http.RoundTripper) *client.Client {
	b.Helper()
	keys, err := client.FetchServerKeys(context.Background(), nil, w.url)
	if err != nil {
		b.Fatal(err)
	}
	csk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	cak, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	c, err := client.New(client.Config{URL: w.url, HTTP: &http.Client{Transport: rt}, Unit: unit, Context: "hsm",
		SigningKey: csk, AgreementKey: cak, Server: keys})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// withTransport returns c's identity sending through rt.
func withTransport(b *testing.B, c *client.Client, rt http.RoundTripper) *client.Client {
	b.Helper()
	cfg := c.Config()
	cfg.HTTP = &http.Client{Transport: rt}
	out, err := client.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

const benchPIN = "123456"

// enrolled creates a unit and enrols a client for it over HTTP.
func (w *benchWorld) enrolled(b *testing.B) (*client.Client, string) {
	b.Helper()
	ctx := context.Background()
	unit := wscd.NewUnitID() + "-bench"
	if err := w.svc.CreateUnit(ctx, unit); err != nil {
		b.Fatal(err)
	}
	code, err := w.svc.IssueActivationCode(ctx, unit, store.PurposeActivation, 0)
	if err != nil {
		b.Fatal(err)
	}
	c := w.newClient(b, unit, http.DefaultTransport)
	if err := c.Enrol(ctx, code.Code, []byte(benchPIN)); err != nil {
		b.Fatalf("Enrol: %v", err)
	}
	return c, unit
}

func login(b *testing.B, c *client.Client) *client.Session {
	b.Helper()
	s, err := c.Login(context.Background(), []byte(benchPIN), client.LoginOptions{Duration: time.Hour})
	if err != nil {
		b.Fatalf("Login: %v", err)
	}
	return s
}

// rawSigner is the baseline: C_SignInit + C_Sign (CKM_ECDSA) on a key's
// private object through a second miekg/pkcs11 context, with the handle
// looked up and the mechanism built once.
type rawSigner struct {
	lib  *p11.Ctx
	s    p11.SessionHandle
	h    p11.ObjectHandle
	mech []*p11.Mechanism
}

func isCKR(err error, code uint) bool {
	var e p11.Error
	return errors.As(err, &e) && uint(e) == code
}

// newRawSigner opens a session on the test token and finds the private key
// of kid (CKA_ID is the kid's bytes, as the device sets it).
func newRawSigner(b *testing.B, kid device.KID) *rawSigner {
	b.Helper()
	cfg, err := pkcs11.ParseURI(testenv.PKCS11URI(b))
	if err != nil {
		b.Fatal(err)
	}
	lib := p11.New(cfg.Module)
	if lib == nil {
		b.Fatalf("cannot load %s", cfg.Module)
	}
	// The device has initialised the library in this process already.
	if err := lib.Initialize(); err != nil && !isCKR(err, p11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		b.Fatal(err)
	}
	slots, err := lib.GetSlotList(true)
	if err != nil {
		b.Fatal(err)
	}
	for _, sl := range slots {
		ti, err := lib.GetTokenInfo(sl)
		if err != nil || ti.Label != cfg.TokenLabel {
			continue
		}
		s, err := lib.OpenSession(sl, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { lib.CloseSession(s) })
		if err := lib.Login(s, p11.CKU_USER, cfg.PIN); err != nil && !isCKR(err, p11.CKR_USER_ALREADY_LOGGED_IN) {
			b.Fatal(err)
		}
		if err := lib.FindObjectsInit(s, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
			p11.NewAttribute(p11.CKA_ID, kid.Bytes()),
		}); err != nil {
			b.Fatal(err)
		}
		hs, _, err := lib.FindObjects(s, 2)
		lib.FindObjectsFinal(s)
		if err != nil || len(hs) != 1 {
			b.Fatalf("found %d private objects for %s: %v", len(hs), kid, err)
		}
		return &rawSigner{lib: lib, s: s, h: hs[0], mech: []*p11.Mechanism{p11.NewMechanism(p11.CKM_ECDSA, nil)}}
	}
	b.Fatalf("token %q not found", cfg.TokenLabel)
	return nil
}

func (r *rawSigner) sign(digest []byte) error {
	if err := r.lib.SignInit(r.s, r.mech, r.h); err != nil {
		return err
	}
	sig, err := r.lib.Sign(r.s, digest)
	if err == nil && len(sig) != device.SignatureSize {
		err = errors.New("raw signature of the wrong size")
	}
	return err
}

func nsPerOp(b *testing.B) float64 {
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}

// signFixture is a unit with one key and a session per path: loopback HTTP
// and Dispatcher.Serve called in-process.
type signFixture struct {
	w      *benchWorld
	c      *client.Client
	unit   string
	kid    string
	raw    *rawSigner
	digest []byte

	wire                *wireTransport
	serve               *serveTransport
	overHTTP, inProcess *client.Session
}

func newSignFixture(b *testing.B, dsn string) *signFixture {
	b.Helper()
	ctx := context.Background()
	w := newBenchWorld(b, dsn)
	c, unit := w.enrolled(b)
	f := &signFixture{w: w, c: c, unit: unit,
		wire:  &wireTransport{rt: &http.Transport{MaxIdleConnsPerHost: 4}},
		serve: &serveTransport{d: w.disp},
	}
	f.overHTTP = login(b, withTransport(b, c, f.wire))
	f.inProcess = login(b, withTransport(b, c, f.serve))
	k, err := f.overHTTP.Generate(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.svc.Destroy(context.Background(), unit, k.KID) })
	f.kid = k.KID
	f.raw = newRawSigner(b, device.KID(k.KID))
	d := sha256.Sum256([]byte("benchmark"))
	f.digest = d[:]
	// One signature each way, checked, before any timing.
	for _, s := range []*client.Session{f.overHTTP, f.inProcess} {
		sig, err := s.Sign(ctx, f.kid, f.digest)
		if err != nil {
			b.Fatal(err)
		}
		if !ecdsa.VerifyASN1(k.Public, f.digest, sig) {
			b.Fatal("the protocol's signature does not verify")
		}
	}
	return f
}

// BenchmarkSign: one sign_ecdsa (32-byte digest) in an established session,
// per store, against raw C_Sign on the same key.
//
//   - raw-C_Sign is the baseline;
//   - http is the client's whole call over loopback HTTP: the client's
//     request JWS and 2FA JWE, the server's work, the client's checks of the
//     answer. wire-ns/op is the HTTP exchange alone (server and HTTP,
//     without the client's cryptography);
//   - serve calls Dispatcher.Serve in-process (no HTTP); server-ns/op is the
//     Serve call alone;
//   - x-raw divides raw-C_Sign's ns/op by the sub-benchmark's ns/op,
//     server-x-raw by its wire-ns/op or server-ns/op (throughput ratios);
//   - interleaved-* alternate a raw signature and a protocol one, swapping
//     the order every iteration, and report medians and their ratios.
func BenchmarkSign(b *testing.B) {
	for _, be := range testenv.StoreBackends() {
		b.Run(be.Name, func(b *testing.B) {
			f := newSignFixture(b, be.DSN(b))
			ctx := context.Background()
			var rawNs float64
			b.Run("raw-C_Sign", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := f.raw.sign(f.digest); err != nil {
						b.Fatal(err)
					}
				}
				rawNs = nsPerOp(b)
			})
			for _, path := range []struct {
				name   string
				s      *client.Session
				t      *timer
				metric string
			}{
				{"http", f.overHTTP, &f.wire.timer, "wire-ns/op"},
				{"serve", f.inProcess, &f.serve.timer, "server-ns/op"},
			} {
				b.Run(path.name, func(b *testing.B) {
					b.ReportAllocs()
					path.t.reset()
					for b.Loop() {
						if _, err := path.s.Sign(ctx, f.kid, f.digest); err != nil {
							b.Fatal(err)
						}
					}
					server := float64(path.t.total.Nanoseconds()) / float64(b.N)
					b.ReportMetric(server, path.metric)
					if rawNs > 0 {
						b.ReportMetric(rawNs/nsPerOp(b), "x-raw")
						b.ReportMetric(rawNs/server, "server-x-raw")
					}
				})
				b.Run("interleaved-"+path.name, func(b *testing.B) {
					var tRaw, tCall, tServer []time.Duration
					for i := 0; b.Loop(); i++ {
						for j := range 2 {
							if (i+j)%2 == 0 {
								t0 := time.Now()
								if err := f.raw.sign(f.digest); err != nil {
									b.Fatal(err)
								}
								tRaw = append(tRaw, time.Since(t0))
								continue
							}
							t0 := time.Now()
							if _, err := path.s.Sign(ctx, f.kid, f.digest); err != nil {
								b.Fatal(err)
							}
							tCall = append(tCall, time.Since(t0))
							tServer = append(tServer, path.t.last)
						}
					}
					mRaw, mCall, mServer := testenv.Median(tRaw), testenv.Median(tCall), testenv.Median(tServer)
					b.ReportMetric(float64(mRaw.Nanoseconds()), "raw-p50-ns/op")
					b.ReportMetric(float64(mCall.Nanoseconds()), "call-p50-ns/op")
					b.ReportMetric(float64(mServer.Nanoseconds()), "server-p50-ns/op")
					b.ReportMetric(float64(mRaw)/float64(mCall), "call/raw")
					b.ReportMetric(float64(mRaw)/float64(mServer), "server/raw")
				})
			}
		})
	}
}

// BenchmarkSignSteps times each step the server takes for one sign_ecdsa
// in a session, in the order Dispatcher.Serve takes them (the AES-GCM of
// the 2FA envelope and the JSON codec are left out: a few µs). First each
// step alone, in a loop of its own (warm: its code, data and the token's
// object in cache), then all of them one after the other as a request runs
// them; the sum in sequence is close to BenchmarkSign's server-ns/op.
func BenchmarkSignSteps(b *testing.B) {
	for _, be := range testenv.StoreBackends() {
		b.Run(be.Name, func(b *testing.B) {
			f := newSignFixture(b, be.DSN(b))
			ctx := context.Background()
			w := f.w
			cfg := f.c.Config()
			cskKID := r2ps.Thumbprint(&cfg.SigningKey.PublicKey)
			data, err := r2ps.EncodeData(r2ps.SignRequest{KID: f.kid, TBSHash: f.digest})
			if err != nil {
				b.Fatal(err)
			}
			req := r2ps.Request{Version: r2ps.Version, Nonce: make([]byte, 16), IssuedAt: time.Now(), Type: r2ps.TypeSignECDSA, Data: data,
				JWEHash: r2ps.JWEHash(r2ps.ProtectedHeader2FA(f.inProcess.ID))}
			payload, err := r2ps.EncodeRequest(req)
			if err != nil {
				b.Fatal(err)
			}
			jws, err := r2ps.SignJWS(payload, r2ps.TypRequest, cskKID, cfg.SigningKey, nil)
			if err != nil {
				b.Fatal(err)
			}
			ssk, err := w.svc.ServerKey(ctx, wscd.PurposeR2PSSigning)
			if err != nil {
				b.Fatal(err)
			}

			h := make([]byte, store.HashSize)
			steps := []struct {
				name string
				run  func() error
			}{
				{"session-lookup", func() error { // pin.Server.Lookup: store read, unseal
					_, err := w.pins.Lookup(ctx, f.inProcess.ID)
					return err
				}},
				{"csk-lookup", func() error { // store read of the client key
					_, err := w.st.GetClientKey(ctx, cskKID)
					return err
				}},
				{"request-jws-verify", func() error { // ECDSA P-256 verify
					_, _, err := r2ps.VerifyJWS(jws, r2ps.TypRequest, func(string, *jose.JSONWebKey) (*ecdsa.PublicKey, error) {
						return &cfg.SigningKey.PublicKey, nil
					})
					return err
				}},
				{"nonce-insert", func() error { // store write
					rand.Read(h)
					return w.st.UseNonce(ctx, h, time.Now().Add(time.Hour))
				}},
				{"service-sign", func() error { // access check (store read) + HSM signature
					_, err := w.svc.Sign(ctx, f.unit, f.kid, f.digest)
					return err
				}},
				{"response-jws-sign", func() error { // HSM signature (the SSK) + JWS
					_, err := r2ps.SignJWS(payload, r2ps.TypResponse, "k", w.svc.Signer(ctx, ssk), nil)
					return err
				}},
			}
			for i, st := range steps {
				b.Run(fmt.Sprintf("%d-%s", i+1, st.name), func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if err := st.run(); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			// The same steps one after the other, as a request runs them:
			// each step's mean in the sequence, and ns/op their sum.
			b.Run("in-sequence", func(b *testing.B) {
				b.ReportAllocs()
				spent := make([]time.Duration, len(steps))
				for b.Loop() {
					for i, st := range steps {
						t0 := time.Now()
						if err := st.run(); err != nil {
							b.Fatal(err)
						}
						spent[i] += time.Since(t0)
					}
				}
				for i, st := range steps {
					b.ReportMetric(float64(spent[i].Nanoseconds())/float64(b.N), st.name+"-ns/op")
				}
			})
		})
	}
}

// BenchmarkLogin is create_session (evaluate, then finalize) through
// Dispatcher.Serve, timing only the Serve calls, next to bytemare's
// GenerateKE2 alone in the same iterations (pin's BenchmarkLogin does the
// same for pin.Server without the protocol). server-ns/op is both Serve
// calls; evaluate-ns/op and finalize-ns/op split it; x-GenerateKE2 divides
// it by the bare GenerateKE2 time. ns/op includes the client's work.
func BenchmarkLogin(b *testing.B) {
	for _, be := range testenv.StoreBackends() {
		b.Run(be.Name, func(b *testing.B) {
			w := newBenchWorld(b, be.DSN(b))
			c, _ := w.enrolled(b)
			st := &serveTransport{d: w.disp}
			c = withTransport(b, c, st)
			op, rec, ke1 := bareKE2(b)
			ctx := context.Background()
			var bare, eval, fin time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, _, err := op.GenerateKE2(ke1, rec); err != nil {
					b.Fatal(err)
				}
				bare += time.Since(t0)
				st.reset()
				s, err := c.Login(ctx, []byte(benchPIN), client.LoginOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if len(st.calls) != 2 {
					b.Fatalf("a login made %d requests", len(st.calls))
				}
				eval += st.calls[0]
				fin += st.calls[1]
				if err := w.pins.End(ctx, s.ID); err != nil {
					b.Fatal(err)
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(eval.Nanoseconds())/n, "evaluate-ns/op")
			b.ReportMetric(float64(fin.Nanoseconds())/n, "finalize-ns/op")
			b.ReportMetric(float64((eval+fin).Nanoseconds())/n, "server-ns/op")
			b.ReportMetric(float64(bare.Nanoseconds())/n, "GenerateKE2-ns/op")
			b.ReportMetric(float64(eval+fin)/float64(bare), "x-GenerateKE2")
		})
	}
}

// bareKE2 returns a bytemare server of the PIN profile with key material,
// a registered client's record and a KE1 (as pin's benchmark does).
func bareKE2(b *testing.B) (*opaque.Server, *opaque.ClientRecord, *message.KE1) {
	b.Helper()
	conf, err := pin.Profile{}.Configuration()
	if err != nil {
		b.Fatal(err)
	}
	op, err := conf.Server()
	if err != nil {
		b.Fatal(err)
	}
	sk, pk := conf.KeyGen()
	if err := op.SetKeyMaterial(&opaque.ServerKeyMaterial{
		PrivateKey: sk, PublicKeyBytes: pk.Encode(), OPRFGlobalSeed: conf.GenerateOPRFSeed(),
	}); err != nil {
		b.Fatal(err)
	}
	credID := []byte("hsm|u")
	c, err := conf.Client()
	if err != nil {
		b.Fatal(err)
	}
	req, err := c.RegistrationInit([]byte(benchPIN))
	if err != nil {
		b.Fatal(err)
	}
	resp, err := op.RegistrationResponse(req, credID, nil)
	if err != nil {
		b.Fatal(err)
	}
	reg, _, err := c.RegistrationFinalize(resp, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	if c, err = conf.Client(); err != nil {
		b.Fatal(err)
	}
	ke1, err := c.GenerateKE1([]byte(benchPIN))
	if err != nil {
		b.Fatal(err)
	}
	return op, &opaque.ClientRecord{RegistrationRecord: reg, CredentialIdentifier: credID}, ke1
}
