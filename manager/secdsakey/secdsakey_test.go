package secdsakey_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/plugintest"
	"github.com/wsca/wsca/manager/secdsakey"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/secdsa"
	"github.com/wsca/wsca/wscd"
)

var ctx = context.Background()

// host is the wallet app: it answers PIN requests and keeps them.
type host struct {
	mu     sync.Mutex
	pin    string
	newPIN string
	asked  []manager.PINRequest
}

func (h *host) RequestPIN(_ context.Context, req manager.PINRequest) (*manager.Secret, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.asked = append(h.asked, req)
	if req.Reason == manager.ReasonChangeNew {
		return manager.NewSecret([]byte(h.newPIN)), nil
	}
	return manager.NewSecret([]byte(h.pin)), nil
}

func (h *host) RequestWebAuthnAssertion(context.Context, manager.WebAuthnRequest) ([]byte, error) {
	return nil, manager.ErrUnsupported
}

func (h *host) setPIN(p string) { h.mu.Lock(); h.pin = p; h.mu.Unlock() }

// server is one in-process wscad (SQLite, SoftHSM).
type server struct {
	*stacktest.Running
}

func newServer(t testing.TB) *server {
	return &server{stacktest.Start(t, testenv.SQLite(t), testdevice.PKCS11(t), nil)}
}

// unit is an enrolled unit: its R2PS client and the phone's PIN binder.
type unit struct {
	id     string
	c      *client.Client
	binder *secdsa.SoftwarePINBinder
}

// unit creates and enrols a unit (the SECDSA types need its CSK
// registered).
func (s *server) unit(t testing.TB) *unit {
	t.Helper()
	c, id := s.EnrolledClient(t, "opaque-pin")
	k := make([]byte, 32)
	rand.Read(k)
	b, err := secdsa.NewSoftwarePINBinder(k)
	if err != nil {
		t.Fatal(err)
	}
	return &unit{id: id, c: c, binder: b}
}

// plugin makes a plugin for u over dir.
func (u *unit) plugin(t testing.TB, dir string, mod func(*secdsakey.Config)) *secdsakey.Plugin {
	t.Helper()
	cfg := secdsakey.Config{Client: u.c, Binder: u.binder, Dir: dir}
	if mod != nil {
		mod(&cfg)
	}
	p, err := secdsakey.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// activated is a fresh unit with an activated plugin.
func (s *server) activated(t testing.TB, h *host) (*unit, *secdsakey.Plugin) {
	t.Helper()
	u := s.unit(t)
	p := u.plugin(t, t.TempDir(), nil)
	if _, err := p.Activate(ctx, manager.Env{Auth: h}); err != nil {
		t.Fatal(err)
	}
	return u, p
}

func TestConformance(t *testing.T) {
	s := newServer(t)
	h := &host{pin: "1234"}
	fresh := func(t *testing.T) manager.Plugin { _, p := s.activated(t, h); return p }
	plugintest.Run(t, manager.Env{Auth: h}, fresh)
	plugintest.RunBindings(t, manager.Env{Auth: h}, fresh)
}

// TestFactorsPromptsRecords: through the manager, every operation reports
// pop and pin; every PIN request names the plugin (register at
// activation, unlock per instruction: no session); every instruction's
// record reaches OnRecord, carries the consent text and verifies with the
// binding alone.
func TestFactorsPromptsRecords(t *testing.T) {
	s := newServer(t)
	h := &host{pin: "1234"}
	u := s.unit(t)
	var records []*secdsa.TRecord
	p := u.plugin(t, t.TempDir(), func(c *secdsakey.Config) {
		c.Consent = func(op r2ps.SECDSAOp) []byte { return []byte("consent to " + op.Op) }
		c.OnRecord = func(tr *secdsa.TRecord) { records = append(records, tr) }
	})
	if _, err := p.Binding(); !errors.Is(err, secdsakey.ErrNotActivated) {
		t.Fatalf("binding before activation: %v", err)
	}
	if _, err := p.Activate(ctx, manager.Env{Auth: h}); err != nil {
		t.Fatal(err)
	}
	st, err := manager.OpenDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := manager.New(ctx, manager.Config{Store: st, Default: p.ID(), Auth: h}, p)
	if err != nil {
		t.Fatal(err)
	}
	k, res, err := m.Generate(ctx, manager.GenerateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("m"))
	_, sres, err := m.Sign(ctx, k.KID, d[:])
	if err != nil {
		t.Fatal(err)
	}
	for _, amr := range [][]string{res.AMR, sres.AMR} {
		if !slices.Equal(amr, []string{r2ps.AMRPossession, r2ps.AMRPIN}) {
			t.Fatalf("amr %v", amr)
		}
	}
	want := []manager.Reason{manager.ReasonRegister, manager.ReasonUnlock, manager.ReasonUnlock}
	if len(h.asked) != len(want) {
		t.Fatalf("%d PIN requests, want %d", len(h.asked), len(want))
	}
	for i, r := range h.asked {
		if r.Plugin != secdsakey.DefaultID || r.Reason != want[i] || r.DisplayName == "" {
			t.Fatalf("PIN request %d: %+v", i, r)
		}
	}
	b, err := p.Binding()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 2 {
		t.Fatalf("%d records", len(records))
	}
	for i, op := range []string{r2ps.SECDSAOpGenerate, r2ps.SECDSAOpSign} {
		if string(records[i].Additional) != "consent to "+op {
			t.Fatalf("record %d additional data %q", i, records[i].Additional)
		}
		if err := secdsa.VerifyTRecord(b.Cert, b.Provider, records[i]); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWrongPINAndLock: a wrong PIN is ErrAuthRequired and counted by the
// server; at the limit the binding is locked and even the right PIN gets
// ErrLocked.
func TestWrongPINAndLock(t *testing.T) {
	s := newServer(t)
	h := &host{pin: "1234"}
	u, p := s.activated(t, h)
	k, _, err := p.Generate(ctx, "", manager.Env{Auth: h})
	if err != nil {
		t.Fatal(err)
	}
	h.setPIN("0000")
	d := make([]byte, 32)
	for i := range wscd.DefaultSECDSAMaxFailures {
		if _, _, err := p.Sign(ctx, k.Handle, d, manager.Env{Auth: h}); !errors.Is(err, manager.ErrAuthRequired) {
			t.Fatalf("wrong PIN %d: %v", i, err)
		}
		if b, err := s.Store.GetSECDSA(ctx, u.id); err != nil || b.Failures != i+1 {
			t.Fatalf("after %d wrong PINs: %+v, %v", i+1, b, err)
		}
	}
	h.setPIN("1234")
	if _, _, err := p.Sign(ctx, k.Handle, d, manager.Env{Auth: h}); !errors.Is(err, secdsakey.ErrLocked) {
		t.Fatalf("right PIN on a locked binding: %v", err)
	}
	if _, _, err := p.Sign(ctx, k.Handle, d, manager.Env{}); !errors.Is(err, manager.ErrAuthRequired) {
		t.Fatalf("no AuthCallback: %v", err)
	}
}

// TestSerialNumbersPersist: a second plugin over the same directory (the
// next process) goes on above the last serial number even when its clock
// is far behind.
func TestSerialNumbersPersist(t *testing.T) {
	s := newServer(t)
	h := &host{pin: "1234"}
	u := s.unit(t)
	dir := t.TempDir()
	a := u.plugin(t, dir, nil)
	if _, err := a.Activate(ctx, manager.Env{Auth: h}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Generate(ctx, "l", manager.Env{Auth: h}); err != nil {
		t.Fatal(err)
	}
	b := u.plugin(t, dir, func(c *secdsakey.Config) { c.Now = func() time.Time { return time.Unix(0, 0) } })
	if _, _, err := b.Generate(ctx, "l2", manager.Env{Auth: h}); err != nil {
		t.Fatalf("the next process: %v", err)
	}
	if k, ok, err := b.Lookup(ctx, "l", manager.Env{}); err != nil || !ok {
		t.Fatalf("the first process's key: %+v, %v, %v", k, ok, err)
	}
}

// TestChangePIN: after a PIN change in one process, another process over
// the same directory works with the new PIN (it reads the new binding)
// and the old PIN is refused.
func TestChangePIN(t *testing.T) {
	s := newServer(t)
	h := &host{pin: "1234", newPIN: "5678"}
	u := s.unit(t)
	dir := t.TempDir()
	a, b := u.plugin(t, dir, nil), u.plugin(t, dir, nil)
	if _, err := a.Activate(ctx, manager.Env{Auth: h}); err != nil {
		t.Fatal(err)
	}
	k, _, err := b.Generate(ctx, "", manager.Env{Auth: h})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ChangePIN(ctx, manager.Env{Auth: h}); err != nil {
		t.Fatal(err)
	}
	d := make([]byte, 32)
	if _, _, err := b.Sign(ctx, k.Handle, d, manager.Env{Auth: h}); !errors.Is(err, manager.ErrAuthRequired) {
		t.Fatalf("old PIN: %v", err)
	}
	h.setPIN("5678")
	if _, _, err := b.Sign(ctx, k.Handle, d, manager.Env{Auth: h}); err != nil {
		t.Fatalf("new PIN in the other process: %v", err)
	}
}

// TestDeletedElsewhere: a key the server no longer has while its file
// stays is ErrKeyNotFound, and its file goes; a plugin without a binding
// is ErrNotActivated.
func TestDeletedElsewhere(t *testing.T) {
	s := newServer(t)
	h := &host{pin: "1234"}
	u := s.unit(t)
	dir, other := t.TempDir(), t.TempDir()
	p := u.plugin(t, dir, nil)
	if _, err := p.Activate(ctx, manager.Env{Auth: h}); err != nil {
		t.Fatal(err)
	}
	k, _, err := p.Generate(ctx, "", manager.Env{Auth: h})
	if err != nil {
		t.Fatal(err)
	}
	// A directory without a binding sends nothing.
	q := u.plugin(t, other, nil)
	if _, err := q.Instruct(ctx, manager.Env{Auth: h}, r2ps.SECDSAOp{Op: r2ps.SECDSAOpDelete, KID: k.Handle}, nil); !errors.Is(err, secdsakey.ErrNotActivated) {
		t.Fatalf("a plugin without binding: %v", err)
	}
	// The key destroyed on the server behind the key file's back.
	if _, err := p.Instruct(ctx, manager.Env{Auth: h}, r2ps.SECDSAOp{Op: r2ps.SECDSAOpDelete, KID: k.Handle}, []byte("delete")); err != nil {
		t.Fatal(err)
	}
	d := make([]byte, 32)
	if _, _, err := p.Sign(ctx, k.Handle, d, manager.Env{Auth: h}); !errors.Is(err, manager.ErrKeyNotFound) {
		t.Fatalf("sign with a key the server destroyed: %v", err)
	}
	if _, err := p.PublicKey(ctx, k.Handle, manager.Env{}); !errors.Is(err, manager.ErrKeyNotFound) {
		t.Fatalf("the key's file stayed: %v", err)
	}
}

// TestCorruptBinding: a binding file whose certificate the provider key
// does not verify is refused before any instruction.
func TestCorruptBinding(t *testing.T) {
	s := newServer(t)
	h := &host{pin: "1234"}
	u := s.unit(t)
	dir := t.TempDir()
	p := u.plugin(t, dir, nil)
	if _, err := p.Activate(ctx, manager.Env{Auth: h}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "binding.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f map[string][]byte
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f["provider_key"], _ = other.PublicKey.Bytes()
	raw, _ = json.Marshal(f)
	if err := os.WriteFile(filepath.Join(dir, "binding.json"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Binding(); !errors.Is(err, manager.ErrCorruptBinding) {
		t.Fatalf("binding: %v", err)
	}
	if _, _, err := p.Generate(ctx, "", manager.Env{Auth: h}); !errors.Is(err, manager.ErrCorruptBinding) {
		t.Fatalf("generate: %v", err)
	}
}
