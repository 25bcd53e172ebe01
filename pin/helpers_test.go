package pin_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/bytemare/opaque"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/store"
)

// aesSealer is the test Sealer: AES-256-GCM under a random key, the nonce
// prepended.
type aesSealer struct {
	aead   cipher.AEAD
	macKey []byte
}

var _ pin.Sealer = (*aesSealer)(nil)

func newSealer(t testing.TB) *aesSealer {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	macKey := make([]byte, 32)
	rand.Read(macKey)
	return &aesSealer{aead: aead, macKey: macKey}
}

func (s *aesSealer) MAC(domain string, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, s.macKey)
	for _, p := range append([][]byte{[]byte(domain)}, parts...) {
		m.Write(binary.BigEndian.AppendUint32(nil, uint32(len(p))))
		m.Write(p)
	}
	return m.Sum(nil)
}

func (s *aesSealer) Seal(plaintext, ad []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plaintext, ad), nil
}

func (s *aesSealer) Open(sealed, ad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed value too short")
	}
	return s.aead.Open(nil, sealed[:n], sealed[n:], ad)
}

// clock is an injectable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

const hsm = "hsm"

// env is a store, a sealer, a clock and a Server over them.
type env struct {
	st     *store.Store
	sealer *aesSealer
	clock  *clock
	logs   *syncBuffer
	srv    *pin.Server
	conf   *opaque.Configuration
}

// forEachStore runs fn on a fresh database of every store backend.
func forEachStore(t *testing.T, fn func(t *testing.T, dsn string)) {
	for _, b := range testenv.StoreBackends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.DSN(t))
		})
	}
}

func openStore(t testing.TB, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newEnv opens the store at dsn and a Server on it; mod may change the
// Config first.
func newEnv(t testing.TB, dsn string, mod func(*pin.Config)) *env {
	t.Helper()
	e := &env{st: openStore(t, dsn), sealer: newSealer(t), clock: newClock(), logs: &syncBuffer{}}
	e.srv = e.newServer(t, mod)
	conf, err := pin.Profile{}.Configuration()
	if err != nil {
		t.Fatal(err)
	}
	e.conf = conf
	return e
}

func (e *env) config(mod func(*pin.Config)) pin.Config {
	cfg := pin.Config{
		Store:  e.st,
		Sealer: e.sealer,
		Now:    e.clock.Now,
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	return cfg
}

func (e *env) newServer(t testing.TB, mod func(*pin.Config)) *pin.Server {
	t.Helper()
	srv, err := pin.New(context.Background(), e.config(mod))
	if err != nil {
		t.Fatalf("pin.New: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// createUnit creates a unit with an outstanding activation code and returns
// the code's hash.
func (e *env) createUnit(t testing.TB, unit string) []byte {
	t.Helper()
	ctx := context.Background()
	now := e.clock.Now()
	if err := e.st.CreateUnit(ctx, store.Unit{ID: unit, State: store.UnitActive, CreatedAt: now}); err != nil {
		t.Fatalf("CreateUnit: %v", err)
	}
	code := sha256.Sum256([]byte("code-" + unit))
	if err := e.st.PutActivationCode(ctx, store.ActivationCode{CodeHash: code[:], UnitID: unit,
		Purpose: store.PurposeActivation, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatalf("PutActivationCode: %v", err)
	}
	return code[:]
}

// register creates a unit and enrols it with pinCode in context hsm,
// running the client side of OPAQUE registration against srv.
func (e *env) register(t testing.TB, srv *pin.Server, unit, pinCode string) {
	t.Helper()
	code := e.createUnit(t, unit)
	record := e.registration(t, srv, unit, hsm, pinCode)
	csk, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cak, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.st.Enrol(context.Background(), store.Enrolment{
		CodeHash: code, UnitID: unit, Context: hsm,
		SigningKey:   store.ClientKey{KID: "csk-" + unit, UnitID: unit, Usage: store.UsageSign, PublicKey: csk.PublicKey().Bytes(), Profile: "strict", MAC: []byte("m")},
		AgreementKey: store.ClientKey{KID: "cak-" + unit, UnitID: unit, Usage: store.UsageAgree, PublicKey: cak.PublicKey().Bytes(), Profile: "strict", MAC: []byte("m")},
		Record:       record, Now: e.clock.Now(),
	})
	if err != nil {
		t.Fatalf("Enrol: %v", err)
	}
}

// registration runs OPAQUE registration as requester "csk-"+unit and
// returns the record to store.
func (e *env) registration(t testing.TB, srv *pin.Server, unit, pinContext, pinCode string) store.PINRecord {
	t.Helper()
	c, err := e.conf.Client()
	if err != nil {
		t.Fatal(err)
	}
	req, err := c.RegistrationInit([]byte(pinCode))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := srv.RegistrationResponse(context.Background(), unit, pinContext, "csk-"+unit, req.Serialize())
	if err != nil {
		t.Fatalf("RegistrationResponse: %v", err)
	}
	resp, err := c.Deserialize.RegistrationResponse(raw)
	if err != nil {
		t.Fatalf("client: registration response: %v", err)
	}
	rec, _, err := c.RegistrationFinalize(resp, nil, nil)
	if err != nil {
		t.Fatalf("RegistrationFinalize: %v", err)
	}
	record, err := srv.FinishRegistration(context.Background(), unit, pinContext, "csk-"+unit, rec.Serialize())
	if err != nil {
		t.Fatalf("FinishRegistration: %v", err)
	}
	return record
}

// client is one login from the client's side.
type client struct {
	c   *opaque.Client
	ke1 []byte
}

func (e *env) startClient(t testing.TB, pinCode string) *client {
	t.Helper()
	c, err := e.conf.Client()
	if err != nil {
		t.Fatal(err)
	}
	ke1, err := c.GenerateKE1([]byte(pinCode))
	if err != nil {
		t.Fatal(err)
	}
	return &client{c: c, ke1: ke1.Serialize()}
}

// finish computes KE3 and the session key from KE2. With a wrong PIN (or a
// fake record) the client cannot: it then returns 32 random bytes as KE3,
// as a client that tries its luck would, and a nil key.
func (c *client) finish(t testing.TB, ke2 []byte) (ke3, key []byte) {
	t.Helper()
	ke3, key, err := c.tryFinish(ke2)
	if err != nil {
		t.Fatal(err)
	}
	return ke3, key
}

// tryFinish is finish for goroutines other than the test's.
func (c *client) tryFinish(ke2 []byte) (ke3, key []byte, err error) {
	msg, err := c.c.Deserialize.KE2(ke2)
	if err != nil {
		return nil, nil, fmt.Errorf("client: KE2: %w", err)
	}
	out, key, _, err := c.c.GenerateKE3(msg, nil, nil)
	if err != nil {
		guess := make([]byte, 32)
		rand.Read(guess)
		return guess, nil, nil
	}
	return out.Serialize(), key, nil
}

type loginResult struct {
	id        string // session id from LoginStart
	ke2       []byte
	clientKey []byte // nil if the client could not finish
	session   pin.Session
}

// login runs a whole login for unit in context hsm; err is LoginStart's or
// LoginFinish's.
func (e *env) login(t testing.TB, srv *pin.Server, unit, pinCode string, opts pin.LoginOptions) (loginResult, error) {
	t.Helper()
	ctx := context.Background()
	c := e.startClient(t, pinCode)
	id, ke2, err := srv.LoginStart(ctx, unit, hsm, c.ke1, opts)
	if err != nil {
		return loginResult{}, err
	}
	r := loginResult{id: id, ke2: ke2}
	var ke3 []byte
	ke3, r.clientKey = c.finish(t, ke2)
	r.session, err = srv.LoginFinish(ctx, id, unit, hsm, ke3)
	return r, err
}

var unlimited = pin.LoginOptions{Uses: store.Unlimited}

func wantErr(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func wantAttempts(t testing.TB, srv *pin.Server, unit string, failures int, locked bool) store.Attempts {
	t.Helper()
	a, err := srv.Attempts(context.Background(), unit, hsm)
	if err != nil {
		t.Fatalf("Attempts: %v", err)
	}
	if a.Failures != failures || a.Locked != locked {
		t.Fatalf("attempts of %s: %+v, want failures %d locked %v", unit, a, failures, locked)
	}
	return a
}
