package remote_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/kv"
	"github.com/wsca/wsca/manager/plugintest"
	"github.com/wsca/wsca/manager/remote"
	"github.com/wsca/wsca/manager/softkey"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/r2ps/client/httptransport"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

var ctx = context.Background()

// host is the wallet app: it answers PIN requests and counts them.
type host struct {
	mu     sync.Mutex
	pin    string
	asked  []manager.PINRequest
	cancel bool
	newPIN string
}

func (h *host) RequestPIN(_ context.Context, req manager.PINRequest) (*manager.Secret, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.asked = append(h.asked, req)
	if h.cancel {
		return nil, manager.ErrAuthCancelled
	}
	if req.Reason == manager.ReasonChangeNew {
		return manager.NewSecret([]byte(h.newPIN)), nil
	}
	return manager.NewSecret([]byte(h.pin)), nil
}

func (h *host) RequestWebAuthnAssertion(context.Context, manager.WebAuthnRequest) ([]byte, error) {
	return nil, manager.ErrUnsupported
}

func (h *host) count() int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.asked) }

// server is one in-process wscad (SQLite, SoftHSM) shared by a test.
type server struct {
	url string
	svc *wscd.Services
}

func newServer(t testing.TB) *server {
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.PKCS11(t), nil)
	return &server{url: r.URL, svc: r.Services}
}

// unit creates a unit with an activation code and a plugin for it,
// enrolled with h's PIN.
func (s *server) unit(t testing.TB, h *host) *remote.Plugin {
	t.Helper()
	return s.unitWith(t, h, nil)
}

// unitWith is unit with the plugin's configuration changed by mod.
func (s *server) unitWith(t testing.TB, h *host, mod func(*remote.Config)) *remote.Plugin {
	t.Helper()
	unit := wscd.NewUnitID()
	if err := s.svc.Units.Create(ctx, unit); err != nil {
		t.Fatal(err)
	}
	code, err := s.svc.Units.IssueActivationCode(ctx, unit, store.PurposeActivation, 0)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := client.FetchServerKeys(ctx, httptransport.New(nil), s.url)
	if err != nil {
		t.Fatal(err)
	}
	csk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cak, _ := ecdh.P256().GenerateKey(rand.Reader)
	c, err := client.New(client.Config{URL: s.url, Transport: httptransport.New(nil), Unit: unit, Context: "hsm", SigningKey: csk, AgreementKey: cak, Server: keys})
	if err != nil {
		t.Fatal(err)
	}
	cfg := remote.Config{Client: c, Journal: t.TempDir()}
	if mod != nil {
		mod(&cfg)
	}
	p, err := remote.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Enrol(ctx, code.Code, manager.Env{Auth: h}); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConformance(t *testing.T) {
	s := newServer(t)
	h := &host{pin: "123456"}
	for _, tc := range []struct {
		name string
		mod  func(*remote.Config)
	}{
		{"dir journal", nil},
		{"kv journal", func(c *remote.Config) {
			d, err := kv.OpenDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			c.Journal, c.JournalStore, c.JournalPrefix = "", d, "r2ps-journal/"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fresh := func(t *testing.T) manager.Plugin { return s.unitWith(t, h, tc.mod) }
			plugintest.Run(t, manager.Env{Auth: h}, fresh)
			plugintest.RunBindings(t, manager.Env{Auth: h}, fresh)
		})
	}
}

func digest(s string) []byte { d := sha256.Sum256([]byte(s)); return d[:] }

func TestSessionReuseAndFactors(t *testing.T) {
	s := newServer(t)
	h := &host{pin: "246810"}
	p := s.unit(t, h)
	enrolAsks := h.count()
	st, err := manager.OpenDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := manager.New(ctx, manager.Config{Store: st, Default: "r2ps", Auth: h}, p)
	if err != nil {
		t.Fatal(err)
	}
	k, res, err := m.Generate(ctx, manager.GenerateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.AMR, r2ps.AMRPIN) || !slices.Contains(res.AMR, r2ps.AMRPossession) {
		t.Fatalf("generate amr %v, want pin and pop", res.AMR)
	}
	for i := range 3 {
		sig, res, err := m.Sign(ctx, k.KID, digest("m"))
		if err != nil {
			t.Fatal(err)
		}
		if !ecdsa.Verify(k.Public, digest("m"), new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			t.Fatalf("signature %d does not verify", i)
		}
		if !slices.Contains(res.AMR, r2ps.AMRPIN) {
			t.Fatalf("sign amr %v", res.AMR)
		}
	}
	if n := h.count() - enrolAsks; n != 1 {
		t.Fatalf("the PIN was asked %d times for one session", n)
	}
	for _, req := range h.asked {
		if req.Plugin != "r2ps" {
			t.Fatalf("a PIN request named plugin %q", req.Plugin)
		}
	}

	// A PIN change ends every session: the next call asks again, once,
	// with the new PIN.
	h.newPIN = "135790"
	if err := p.ChangePIN(ctx, manager.Env{Auth: h}); err != nil {
		t.Fatal(err)
	}
	h.pin = h.newPIN
	before := h.count()
	if _, _, err := m.Sign(ctx, k.KID, digest("after change")); err != nil {
		t.Fatal(err)
	}
	if n := h.count() - before; n != 1 {
		t.Fatalf("after a PIN change the PIN was asked %d times", n)
	}

	// Attestation of the key, from the WSCA (1FA: possession only).
	att, res, err := m.Attestation(ctx, []manager.KID{k.KID}, "nonce-1")
	if err != nil || att.Format != "key-attestation+jwt" || att.JWT == "" {
		t.Fatalf("attestation %+v, %v", att, err)
	}
	if !slices.Equal(res.AMR, []string{r2ps.AMRPossession}) {
		t.Fatalf("attestation amr %v", res.AMR)
	}
}

func TestPINRefusals(t *testing.T) {
	s := newServer(t)
	h := &host{pin: "111111"}
	p := s.unit(t, h)
	wrong := &host{pin: "999999"}
	if _, _, err := p.Generate(ctx, "", manager.Env{Auth: wrong}); !errors.Is(err, manager.ErrAuthRequired) {
		t.Fatalf("wrong PIN: %v, want ErrAuthRequired", err)
	}
	if _, _, err := p.Generate(ctx, "", manager.Env{Auth: &host{cancel: true}}); !errors.Is(err, manager.ErrAuthCancelled) {
		t.Fatalf("cancelled: %v, want ErrAuthCancelled", err)
	}
	if _, _, err := p.Generate(ctx, "", manager.Env{}); !errors.Is(err, manager.ErrAuthRequired) {
		t.Fatalf("no callback: %v, want ErrAuthRequired", err)
	}
}

// A crash after the server made the key and before the journal named it:
// Lookup still finds the key by what was there before.
func TestLookupAfterCrash(t *testing.T) {
	s := newServer(t)
	h := &host{pin: "222222"}
	p := s.unit(t, h)
	env := manager.Env{Auth: h}
	old, _, err := p.Generate(ctx, "", env)
	if err != nil {
		t.Fatal(err)
	}
	st, err := manager.OpenDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Made and journalled under "L", binding never written.
	k, _, err := p.Generate(ctx, "L", env)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutIntent(ctx, manager.Intent{Label: "L", Plugin: "r2ps"}); err != nil {
		t.Fatal(err)
	}
	m, err := manager.New(ctx, manager.Config{Store: st, Auth: h}, p)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := manager.Thumbprint(k.Public)
	b, err := st.Binding(ctx, kid)
	if err != nil || b.Handle != k.Handle {
		t.Fatalf("recovered binding %+v, %v", b, err)
	}
	oldKID, _ := manager.Thumbprint(old.Public)
	if _, err := st.Binding(ctx, oldKID); !errors.Is(err, manager.ErrNotFound) {
		t.Fatal("the key made before the intent was bound to it")
	}
	if _, _, err := m.Sign(ctx, kid, digest("x")); err != nil {
		t.Fatal(err)
	}
}

func TestMigrateToRemoteNeedsReEnrolment(t *testing.T) {
	s := newServer(t)
	h := &host{pin: "333333"}
	p := s.unit(t, h)
	sk, err := softkey.Open(t.TempDir(), make([]byte, softkey.KEKSize))
	if err != nil {
		t.Fatal(err)
	}
	st, err := manager.OpenDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := manager.New(ctx, manager.Config{Store: st, Default: "softkey", Auth: h}, sk, p)
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := m.Generate(ctx, manager.GenerateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := m.Migrate(ctx, k.KID, "r2ps")
	if err != nil || !res.ReEnrollmentRequired {
		t.Fatalf("migrate to r2ps: %+v, %v", res, err)
	}
	rk, _, err := m.Generate(ctx, manager.GenerateRequest{Plugin: "r2ps"})
	if err != nil {
		t.Fatal(err)
	}
	if res, _, err := m.Migrate(ctx, rk.KID, "softkey"); err != nil || !res.ReEnrollmentRequired {
		t.Fatalf("migrate out of r2ps: %+v, %v", res, err)
	}
	keys, err := m.List(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("List: %d keys, %v", len(keys), err)
	}
}

// memSessions is a host's session storage (a CLI keeps it in its state
// file).
type memSessions struct {
	mu    sync.Mutex
	saved *remote.SavedSession
}

func (m *memSessions) Load(context.Context) (remote.SavedSession, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.saved == nil {
		return remote.SavedSession{}, false, nil
	}
	s := *m.saved
	s.Key = slices.Clone(s.Key)
	return s, true, nil
}

func (m *memSessions) Save(_ context.Context, s remote.SavedSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s.Key = slices.Clone(s.Key)
	m.saved = &s
	return nil
}

func (m *memSessions) Forget(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.saved = nil
	return nil
}

// A session saved by one process is used by the next without the PIN, and
// a logout forgets it.
func TestSavedSession(t *testing.T) {
	s := newServer(t)
	for _, tc := range []struct {
		name     string
		sessions func(t *testing.T) remote.SessionStore
	}{
		{"memory", func(*testing.T) remote.SessionStore { return &memSessions{} }},
		{"kv", func(t *testing.T) remote.SessionStore {
			d, err := kv.OpenDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			ks, err := remote.NewKVSessions(d, "r2ps/session", bytes.Repeat([]byte{3}, 32))
			if err != nil {
				t.Fatal(err)
			}
			return ks
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { testSavedSession(t, s, tc.sessions(t)) })
	}
}

func testSavedSession(t *testing.T, s *server, sessions remote.SessionStore) {
	h := &host{pin: "444444"}
	first := s.unit(t, h)
	c := first.Client()
	mk := func() *remote.Plugin {
		p, err := remote.New(remote.Config{Client: c, Journal: t.TempDir(), Sessions: sessions})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := mk()
	if _, err := a.Login(ctx, manager.Env{Auth: h}, "", 0); err != nil {
		t.Fatal(err)
	}
	// A failed login keeps the session it would have replaced, and the
	// server's refusal stays readable.
	_, err := a.Login(ctx, manager.Env{Auth: &host{pin: "000000"}}, "", 0)
	var ce *client.Error
	if !errors.Is(err, manager.ErrAuthRequired) || !errors.As(err, &ce) {
		t.Fatalf("wrong PIN: %v", err)
	}
	if _, ok, _ := sessions.Load(ctx); !ok {
		t.Fatal("a failed login dropped the saved session")
	}
	asked := h.count()
	b := mk()
	k, _, err := b.Generate(ctx, "", manager.Env{Auth: h})
	if err != nil {
		t.Fatal(err)
	}
	if h.count() != asked {
		t.Fatal("a second process asked for the PIN despite the saved session")
	}
	if err := b.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mk().Sign(ctx, k.Handle, digest("m"), manager.Env{}); !errors.Is(err, manager.ErrAuthRequired) {
		t.Fatalf("after logout, with no PIN callback: %v, want ErrAuthRequired", err)
	}
}

// A kept session opens only under its KEK and its own key, and its
// session key is never in the clear.
func TestKVSessionsRefusals(t *testing.T) {
	d, err := kv.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	kek := bytes.Repeat([]byte{3}, 32)
	a, err := remote.NewKVSessions(d, "a/session", kek)
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{0x5a}, 32)
	if err := a.Save(ctx, remote.SavedSession{ID: "session #1", Key: bytes.Clone(key), ExpiresAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	raw, _ := d.Get(ctx, "a/session")
	// The id has characters no JWE compact serialisation holds, so it
	// cannot turn up in the base64url text by chance.
	if bytes.Contains(raw, key) || bytes.Contains(raw, []byte("session #1")) {
		t.Fatal("the session is kept in the clear")
	}
	if got, ok, err := a.Load(ctx); err != nil || !ok || !bytes.Equal(got.Key, key) || got.ID != "session #1" {
		t.Fatalf("Load: %+v %v %v", got, ok, err)
	}
	wrong, _ := remote.NewKVSessions(d, "a/session", bytes.Repeat([]byte{4}, 32))
	if _, _, err := wrong.Load(ctx); !errors.Is(err, remote.ErrSessionDecrypt) {
		t.Fatalf("Load under another KEK: %v", err)
	}
	if err := d.Put(ctx, "b/session", raw); err != nil {
		t.Fatal(err)
	}
	moved, _ := remote.NewKVSessions(d, "b/session", kek)
	if _, _, err := moved.Load(ctx); !errors.Is(err, remote.ErrSessionDecrypt) {
		t.Fatalf("Load of a value moved from another key: %v", err)
	}
	if err := a.Forget(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := a.Load(ctx); ok || err != nil {
		t.Fatalf("Load after Forget: %v %v", ok, err)
	}
	if _, err := remote.NewKVSessions(d, "k", kek[:16]); !errors.Is(err, manager.ErrInvalidInput) {
		t.Fatalf("a 16-byte KEK: %v", err)
	}
}

// Refresh takes the properties from the server's statement of its device,
// never from the plugin's hopes.
func TestRefreshFromServer(t *testing.T) {
	s := newServer(t)
	h := &host{pin: "555555"}
	p := s.unit(t, h)
	if err := p.Refresh(ctx, manager.Env{Auth: h}); err != nil {
		t.Fatal(err)
	}
	props := p.NewKeyProperties()
	want := string(testdevice.PKCS11(t).Info().Assurance)
	if props.Assurance != want || props.Storage != manager.StorageRemoteHSM || props.Exportable {
		t.Fatalf("properties %+v, want assurance %q", props, want)
	}
	if want == "not-certified" || want == "software" {
		if props.KeyStorageAttackPotential != "" || props.UserAuthAttackPotential != "" {
			t.Fatalf("an uncertified device gave attack potentials: %+v", props)
		}
	}
}

type progressLog struct {
	mu  sync.Mutex
	got []manager.Stage
}

func (p *progressLog) OnProgress(pr manager.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, pr.Stage)
}

// The plugin tells the host when it waits for the user and when it goes
// to the network; a cancelled context stops a call.
func TestProgressAndCancel(t *testing.T) {
	s := newServer(t)
	h := &host{pin: "666666"}
	p := s.unit(t, h)
	pl := &progressLog{}
	env := manager.Env{Auth: h, Progress: pl}
	k, _, err := p.Generate(ctx, "", env)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pl.got, manager.StageWaitingForUser) || !slices.Contains(pl.got, manager.StageNetworkRoundTrip) {
		t.Fatalf("stages %v", pl.got)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := p.Sign(cctx, k.Handle, digest("m"), env); !errors.Is(err, context.Canceled) {
		t.Fatalf("sign with a cancelled context: %v", err)
	}
}
