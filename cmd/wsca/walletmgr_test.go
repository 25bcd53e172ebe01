package main

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/softkey"
)

// generated is keygen's JSON output.
type generated struct {
	KID    string   `json:"kid"`
	Plugin string   `json:"plugin"`
	Handle string   `json:"handle"`
	JWK    jwk      `json:"public_key"`
	AMR    []string `json:"amr"`
}

// signedOut is sign's JSON output.
type signedOut struct {
	KID       string   `json:"kid"`
	Plugin    string   `json:"plugin"`
	Handle    string   `json:"handle"`
	Digest    string   `json:"digest"`
	Signature string   `json:"signature"`
	Verified  bool     `json:"verified"`
	AMR       []string `json:"amr"`
}

func (c walletCLI) keygen(args ...string) generated {
	c.t.Helper()
	return decodeJSONAs[generated](c.t, c.ok("", append([]string{"keygen", "--json"}, args...)...))
}

// signs signs a digest with the key named kid (either form) and checks the
// signature against pub.
func (c walletCLI) signs(kid string, pub *ecdsa.PublicKey) signedOut {
	c.t.Helper()
	d := sha256.Sum256([]byte(kid))
	s := decodeJSONAs[signedOut](c.t, c.ok("", "sign", "--kid", kid, "--digest", hex.EncodeToString(d[:]), "--verify", "--json"))
	sig, err := base64.StdEncoding.DecodeString(s.Signature)
	if err != nil || !s.Verified || s.Digest != hex.EncodeToString(d[:]) || !ecdsa.VerifyASN1(pub, d[:], sig) || len(s.AMR) == 0 {
		c.t.Fatalf("sign --kid %s: %+v", kid, s)
	}
	return s
}

func (c walletCLI) mgrDir() string { return filepath.Join(filepath.Dir(c.state), "manager") }

// TestSoftkeyWithoutServer: with no state file at all, the key commands
// run on the softkey plugin: keygen, sign --verify and ECDH by kid and by
// handle, keylist, keydelete; the keys are in manager/ beside the state
// file, encrypted under a private 32-byte KEK.
func TestSoftkeyWithoutServer(t *testing.T) {
	c := newWalletCLI(t)
	plugins := decodeJSONAs[[]pluginRow](t, c.ok("", "plugins", "--json"))
	if len(plugins) != 1 || plugins[0].ID != softkey.ID || !plugins[0].Default || plugins[0].Properties.Storage != manager.StorageSoftware || !plugins[0].Properties.Exportable {
		t.Fatalf("plugins: %+v", plugins)
	}
	g := c.keygen()
	if g.Plugin != softkey.ID || !manager.KID(g.KID).Valid() || len(g.Handle) != 22 || g.JWK.Kid != g.KID || !slices.Equal(g.AMR, []string{"swk"}) {
		t.Fatalf("keygen: %+v", g)
	}
	pub := jwkPublicKey(t, g.JWK)
	if kid, _ := manager.Thumbprint(pub); string(kid) != g.KID {
		t.Fatalf("kid %s is not the thumbprint %s", g.KID, kid)
	}
	for _, kid := range []string{g.KID, g.Handle} {
		if s := c.signs(kid, pub); s.KID != g.KID || s.Handle != g.Handle || s.Plugin != softkey.ID {
			t.Fatalf("sign --kid %s: %+v", kid, s)
		}
	}
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	kp, _ := pub.ECDH()
	want, _ := peer.ECDH(kp)
	for _, kid := range []string{g.KID, g.Handle} {
		z := decodeJSONAs[map[string]any](t, c.ok("", "ecdh", "--kid", kid, "--peer", hex.EncodeToString(peer.PublicKey().Bytes()), "--json"))
		if z["shared_secret"] != base64.StdEncoding.EncodeToString(want) || z["kid"] != g.KID || z["amr"] == nil {
			t.Fatalf("ecdh --kid %s: %v", kid, z)
		}
	}
	// A point of the right shape that is not on the curve is refused here.
	off := append([]byte{4}, bytes.Repeat([]byte{1}, 64)...)
	c.fails("not a point on P-256", "", "ecdh", "--kid", g.KID, "--peer", hex.EncodeToString(off))

	if out := c.ok("", "keylist"); !strings.HasPrefix(out, g.KID+" softkey "+g.Handle+" ") || strings.Count(out, "\n") != 1 {
		t.Fatalf("keylist: %q", out)
	}
	fi, err := os.Stat(filepath.Join(c.mgrDir(), kekFile))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != softkey.KEKSize {
		t.Fatalf("KEK file: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(c.mgrDir(), "softkey", g.Handle+".jwe")); err != nil {
		t.Fatalf("softkey file: %v", err)
	}
	if _, err := os.Stat(c.state); !os.IsNotExist(err) {
		t.Fatalf("softkey commands wrote a state file: %v", err)
	}
	c.ok("", "keydelete", "--kid", g.Handle)
	if out := c.ok("", "keylist"); out != "" {
		t.Fatalf("keylist after delete: %q", out)
	}
	c.fails("no such key", "", "sign", "--kid", g.KID, "--digest", strings.Repeat("00", 32))
	c.fails("not a kid", "", "sign", "--kid", "a b", "--digest", strings.Repeat("00", 32))
	c.fails(`no plugin "r2ps" here (wsca plugins lists them; r2ps needs wsca enroll)`, "", "keygen", "--plugin", "r2ps")
}

// TestBothPlugins: an enrolled wallet has r2ps (the default) and softkey;
// keylist shows the keys of both, --kid takes the thumbprint or the
// handle (the server's kid) on either, and migrating between them needs
// re-enrolment: the softkey cannot go into the HSM, the HSM key cannot
// come out.
func TestBothPlugins(t *testing.T) {
	srv := walletTestServer(t)
	c := enrolledWallet(t, srv)
	plugins := decodeJSONAs[[]pluginRow](t, c.ok("", "plugins", "--json"))
	if len(plugins) != 2 || plugins[0].ID != "r2ps" || !plugins[0].Default || plugins[0].Properties.Storage != manager.StorageRemoteHSM ||
		plugins[0].Properties.Exportable || plugins[1].ID != softkey.ID || plugins[1].Default {
		t.Fatalf("plugins: %+v", plugins)
	}
	if out := c.ok("", "plugins"); !strings.Contains(out, "r2ps: Wallet Provider HSM at "+srv.url+" (default for keygen)") {
		t.Fatalf("plugins: %s", out)
	}

	hsm := c.keygen()
	soft := c.keygen("--plugin", "softkey")
	if hsm.Plugin != "r2ps" || !isServerKID(hsm.Handle) || !manager.KID(hsm.KID).Valid() || len(hsm.AMR) == 0 || soft.Plugin != softkey.ID {
		t.Fatalf("keygen: %+v %+v", hsm, soft)
	}
	for _, g := range []generated{hsm, soft} {
		pub := jwkPublicKey(t, g.JWK)
		for _, kid := range []string{g.KID, g.Handle} {
			if s := c.signs(kid, pub); s.KID != g.KID || s.Handle != g.Handle || s.Plugin != g.Plugin {
				t.Fatalf("sign --kid %s: %+v", kid, s)
			}
		}
	}

	rows := decodeJSONAs[[]walletKeyRow](t, c.ok("", "keylist", "--json"))
	got := map[string]walletKeyRow{}
	for _, r := range rows {
		got[r.Plugin] = r
	}
	if len(rows) != 2 || string(got["r2ps"].KID) != hsm.KID || got["r2ps"].Handle != hsm.Handle ||
		string(got[softkey.ID].KID) != soft.KID || got[softkey.ID].Handle != soft.Handle || got["r2ps"].Created.IsZero() {
		t.Fatalf("keylist: %+v", rows)
	}

	type migrated struct {
		Migrated bool     `json:"migrated"`
		ReEnrol  bool     `json:"re_enrollment_required"`
		From     string   `json:"from"`
		AMR      []string `json:"amr"`
	}
	for _, tc := range []struct {
		key generated
		to  string
	}{{soft, "r2ps"}, {hsm, softkey.ID}} {
		if out := c.ok("", "migrate", "--kid", tc.key.KID, "--to", tc.to); !strings.HasPrefix(out, "re-enrollment required") {
			t.Fatalf("migrate %s → %s: %q", tc.key.Plugin, tc.to, out)
		}
		m := decodeJSONAs[migrated](t, c.ok("", "migrate", "--kid", tc.key.Handle, "--to", tc.to, "--json"))
		if m.Migrated || !m.ReEnrol || m.From != tc.key.Plugin || m.AMR == nil {
			t.Fatalf("migrate %s → %s: %+v", tc.key.Plugin, tc.to, m)
		}
	}
	// Nothing moved.
	if rows := decodeJSONAs[[]walletKeyRow](t, c.ok("", "keylist", "--json")); len(rows) != 2 {
		t.Fatalf("keylist after migrate: %+v", rows)
	}
	c.fails(`no plugin "fido2" here (wsca plugins lists them)`, "", "migrate", "--kid", soft.KID, "--to", "fido2")

	for _, g := range []generated{hsm, soft} {
		del := decodeJSONAs[map[string]any](t, c.ok("", "keydelete", "--kid", g.Handle, "--json"))
		if del["kid"] != g.KID || del["plugin"] != g.Plugin || del["deleted"] != true || del["amr"] == nil {
			t.Fatalf("keydelete: %v", del)
		}
	}
	if out := c.ok("", "keylist"); out != "" {
		t.Fatalf("keylist after delete: %q", out)
	}
}

// TestUnboundServerKey: a key the manager has no binding for (made before
// the wallet ran on the manager) is still found by its server kid, and by
// its thumbprint through the default plugin.
func TestUnboundServerKey(t *testing.T) {
	srv := walletTestServer(t)
	c := enrolledWallet(t, srv)
	g := c.keygen()
	if err := os.RemoveAll(filepath.Join(c.mgrDir(), "bindings")); err != nil {
		t.Fatal(err)
	}
	pub := jwkPublicKey(t, g.JWK)
	if s := c.signs(g.Handle, pub); s.KID != g.KID || s.Plugin != "r2ps" {
		t.Fatalf("sign by server kid: %+v", s)
	}
	c.signs(g.KID, pub)
	c.fails("no such key", "", "sign", "--kid", strings.Repeat("ab", 16), "--digest", strings.Repeat("00", 32))
}

// TestAmbiguousHandle: a handle bound on two plugins is refused rather
// than guessed.
func TestAmbiguousHandle(t *testing.T) {
	c := newWalletCLI(t)
	g := c.keygen()
	st, err := manager.OpenDirStore(filepath.Join(c.mgrDir(), "bindings"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	opub, _ := manager.Thumbprint(&other.PublicKey)
	if err := st.Bind(context.Background(), manager.Binding{KID: opub, Plugin: "other", Handle: g.Handle, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	c.fails("names keys on several plugins", "", "sign", "--kid", g.Handle, "--digest", strings.Repeat("00", 32))
	c.signs(g.KID, jwkPublicKey(t, g.JWK))
}

// TestKEKFileMode: a softkey KEK file that group or others may read, or
// that is not 32 bytes, is refused by every command on the manager.
func TestKEKFileMode(t *testing.T) {
	c := newWalletCLI(t)
	g := c.keygen()
	kek := filepath.Join(c.mgrDir(), kekFile)
	for _, mode := range []os.FileMode{0o640, 0o604} {
		if err := os.Chmod(kek, mode); err != nil {
			t.Fatal(err)
		}
		c.fails("group or others may read it", "", "keygen")
		c.fails("group or others may read it", "", "keylist")
		c.fails("group or others may read it", "", "sign", "--kid", g.KID, "--digest", strings.Repeat("00", 32))
	}
	os.Chmod(kek, 0o600)
	c.ok("", "keylist")

	good, _ := os.ReadFile(kek)
	for _, b := range [][]byte{good[:31], append(bytes.Clone(good), 0)} {
		if err := os.WriteFile(kek, b, 0o600); err != nil {
			t.Fatal(err)
		}
		c.fails("is not 32 bytes", "", "keylist")
	}
	// Another KEK does not open the keys.
	os.WriteFile(kek, bytes.Repeat([]byte{9}, 32), 0o600)
	c.fails("does not decrypt", "", "sign", "--kid", g.KID, "--digest", strings.Repeat("00", 32))
	// Every plugin (here the only one) failed to list: an error, not a
	// warning.
	code, _, errs := c.run("", "keylist")
	if code != 1 || !strings.Contains(errs, "wsca: warning: keylist: plugin softkey") || !strings.Contains(errs, "wsca: error: keylist: no plugin could list its keys") {
		t.Fatalf("keylist with every plugin failing: exit %d, %q", code, errs)
	}
}

func TestLoadKEK(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	a, err := loadKEK(dir)
	if err != nil || len(a) != softkey.KEKSize || bytes.Equal(a, make([]byte, softkey.KEKSize)) {
		t.Fatalf("%x %v", a, err)
	}
	b, err := loadKEK(dir)
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("second load: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("left over: %v", ents)
	}
}

// TestLoginFlag: without a session a key command fails unless --login is
// given; then it asks for the PIN naming the plugin, and the session it
// opens is kept for the next commands.
func TestLoginFlag(t *testing.T) {
	srv := walletTestServer(t)
	c := enrolledWallet(t, srv)
	c.ok("", "logout")
	c.fails("no session: run wsca login", "", "keygen")
	c.fails("reading the PIN for r2ps (Wallet Provider HSM at "+srv.url+")", "", "keygen", "--login")
	c.fails("sign --login reads the PIN from stdin", "123456\n", "sign", "--login", "--kid", "x")
	g := decodeJSONAs[generated](t, c.ok("123456\n", "keygen", "--login", "--json"))
	if g.Plugin != "r2ps" {
		t.Fatalf("keygen --login: %+v", g)
	}
	// The session --login opened is in the state file.
	c.signs(g.KID, jwkPublicKey(t, g.JWK))
	if out := c.ok("", "status"); !strings.Contains(out, "session:  until") || !strings.Contains(out, "manager:  "+c.mgrDir()) {
		t.Fatalf("status: %s", out)
	}
	// A wrong PIN through --login is the server's refusal.
	c.ok("", "logout")
	c.fails("wrong PIN", "999999\n", "keygen", "--login")
	if code, _, errs := c.run("999999\n", "keylist", "--login"); code != 0 || !strings.Contains(errs, "wsca: warning: keylist: plugin r2ps") || !strings.Contains(errs, "wrong PIN") {
		t.Fatalf("keylist --login, wrong PIN: exit %d, %q", code, errs)
	}
}

// TestEnrollForceDropsBindings: re-enrolling over a wallet loses its HSM
// keys, so their bindings go; softkey keys stay.
func TestEnrollForceDropsBindings(t *testing.T) {
	srv := walletTestServer(t)
	c := enrolledWallet(t, srv)
	hsm := c.keygen()
	soft := c.keygen("--plugin", softkey.ID)
	unit, code := issueUnit(t, srv, "carol")
	c.ok("123456\n123456\n", "enroll", "--url", srv.url, "--unit", unit, "--code", code, "--force")
	st, err := manager.OpenDirStore(filepath.Join(c.mgrDir(), "bindings"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Binding(context.Background(), manager.KID(hsm.KID)); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("the replaced unit's key is still bound: %v", err)
	}
	if _, err := st.Binding(context.Background(), manager.KID(soft.KID)); err != nil {
		t.Fatalf("the softkey lost its binding: %v", err)
	}
}

// TestPINChangeWrongPIN: a wrong current PIN is reported as the login of
// the PIN change failing, and the PIN stays.
func TestPINChangeWrongPIN(t *testing.T) {
	srv := walletTestServer(t)
	c := enrolledWallet(t, srv)
	c.fails("pin change: login with the current PIN: r2ps: server answered UNAUTHORIZED (wrong PIN", "999999\n654321\n654321\n", "pin", "change")
	c.ok("123456\n", "login")
}

// TestRecoveryDoesNotBlock: an r2ps generation interrupted by a crash is
// finished when the manager opens; when that cannot be done yet (no
// session), the command still runs and says so, and a later command with a
// session finishes it.
func TestRecoveryDoesNotBlock(t *testing.T) {
	srv := walletTestServer(t)
	c := enrolledWallet(t, srv)
	c.ok("", "logout")
	st, err := manager.OpenDirStore(filepath.Join(c.mgrDir(), "bindings"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	label := "interrupted"
	if err := st.PutIntent(ctx, manager.Intent{Label: label, Plugin: "r2ps", Created: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	journal := filepath.Join(c.mgrDir(), "r2ps-journal", hex.EncodeToString([]byte(label))+".json")
	if err := os.WriteFile(journal, []byte(`{"label":"interrupted","before":[],"created":"2026-01-01T00:00:00Z"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := c.run("", "keygen", "--plugin", "softkey")
	if code != 0 || out == "" || !strings.Contains(errs, "wsca: warning: finishing an interrupted key operation: no session: run wsca login") {
		t.Fatalf("keygen with a pending r2ps intent: exit %d, %q", code, errs)
	}
	c.ok("123456\n", "login")
	if code, _, errs := c.run("", "keylist"); code != 0 || errs != "" {
		t.Fatalf("keylist after login: exit %d, %q", code, errs)
	}
	if in, err := st.Intents(ctx); err != nil || len(in) != 0 {
		t.Fatalf("the intent is still there: %v %v", in, err)
	}
}

func TestCLIAuth(t *testing.T) {
	ctx := context.Background()
	req := manager.PINRequest{Plugin: "r2ps", DisplayName: "HSM", Reason: manager.ReasonUnlock}
	for _, tc := range []struct {
		auth cliAuth
		want error
	}{
		{cliAuth{}, errNoSession},
		{cliAuth{hadSession: true}, errSessionExpired},
	} {
		if _, err := tc.auth.RequestPIN(ctx, req); !errors.Is(err, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.auth, err, tc.want)
		}
	}
	a := cliAuth{preset: map[manager.Reason][]byte{manager.ReasonUnlock: []byte("1234")}}
	s, err := a.RequestPIN(ctx, req)
	if err != nil || string(s.Bytes()) != "1234" || a.asked[manager.ReasonUnlock] != 1 {
		t.Fatalf("preset: %v %v", s, err)
	}
	s.Wipe() // the plugin wipes what it gets: the preset stays
	if s, _ := a.RequestPIN(ctx, req); string(s.Bytes()) != "1234" {
		t.Fatal("the preset PIN was wiped by its first use")
	}
	p := cliAuth{login: true, prompt: prompter{in: strings.NewReader("4321\n"), prompts: io.Discard}}
	if s, err := p.RequestPIN(ctx, req); err != nil || string(s.Bytes()) != "4321" {
		t.Fatalf("prompt: %v %v", s, err)
	}
	if _, err := p.RequestWebAuthnAssertion(ctx, manager.WebAuthnRequest{}); !errors.Is(err, manager.ErrUnsupported) {
		t.Fatal(err)
	}
}

func TestClassifyKID(t *testing.T) {
	tp := strings.Repeat("A", 43)
	for in, want := range map[string]kidKind{
		tp:                       kidThumbprint,
		strings.Repeat("ab", 16): kidHandle,
		"q81x6jecIdY_lo7y8yjSkQ": kidHandle,
		"":                       kidBad,
		"a b":                    kidBad,
		"a\x00":                  kidBad,
		strings.Repeat("x", 129): kidBad,
	} {
		if got := classifyKID(in); got != want {
			t.Errorf("%q: %v, want %v", in, got, want)
		}
	}
	if !isServerKID(strings.Repeat("ab", 16)) || isServerKID(strings.Repeat("AB", 16)) || isServerKID(strings.Repeat("zz", 16)) {
		t.Error("isServerKID")
	}
}

func FuzzClassifyKID(f *testing.F) {
	for _, s := range []string{strings.Repeat("A", 43), strings.Repeat("ab", 16), "q81x6jecIdY_lo7y8yjSkQ", "", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		switch classifyKID(s) {
		case kidThumbprint:
			if !manager.KID(s).Valid() {
				t.Fatalf("%q is no thumbprint", s)
			}
		case kidHandle:
			if s == "" || len(s) > 128 || strings.ContainsAny(s, " \t\n\x00") {
				t.Fatalf("%q taken as a handle", s)
			}
		}
		if isServerKID(s) && classifyKID(s) != kidHandle {
			t.Fatalf("server kid %q is not a handle", s)
		}
	})
}

func FuzzParsePeerPoint(f *testing.F) {
	k, _ := ecdh.P256().GenerateKey(rand.Reader)
	for _, s := range []string{hex.EncodeToString(k.PublicKey().Bytes()), base64.StdEncoding.EncodeToString(k.PublicKey().Bytes()), "0102", "!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := parsePeerPoint(s)
		if err != nil {
			return
		}
		if !(len(b) == 65 && b[0] == 4) && !(len(b) == 33 && (b[0] == 2 || b[0] == 3)) {
			t.Fatalf("%q gave %x", s, b)
		}
	})
}

// A kid is base64url and may begin with '-': keydelete takes it with
// --kid or after --, never as a flag.
func TestKeydeleteDashKID(t *testing.T) {
	c := newWalletCLI(t)
	for range 300 {
		g := c.keygen()
		if !strings.HasPrefix(g.KID, "-") {
			c.ok("", "keydelete", "--kid", g.KID)
			continue
		}
		if code, _, _ := c.run("", "keydelete", g.KID); code != 2 { // an unknown flag: usage
			t.Fatalf("keydelete %s: exit %d, want 2", g.KID, code)
		}
		c.ok("", "keydelete", "--", g.KID)
		return
	}
	t.Skip("no kid beginning with '-' in 300 keys")
}
