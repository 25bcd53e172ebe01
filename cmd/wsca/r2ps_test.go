package main

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/datadir"
	"github.com/wsca/wsca/store"
)

// walletCLI runs wsca as a wallet user does, with its state file given
// by WSCA_STATE and what it reads on stdin.
type walletCLI struct {
	t     *testing.T
	state string
}

func newWalletCLI(t *testing.T) walletCLI {
	return walletCLI{t: t, state: filepath.Join(t.TempDir(), "cfg", "client.json")}
}

func (c walletCLI) run(stdin string, args ...string) (int, string, string) {
	c.t.Helper()
	var out, errb bytes.Buffer
	lookup := func(k string) (string, bool) {
		if k == "WSCA_STATE" {
			return c.state, true
		}
		return "", false
	}
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb, lookup)
	return code, out.String(), errb.String()
}

func (c walletCLI) ok(stdin string, args ...string) string {
	c.t.Helper()
	code, out, errs := c.run(stdin, args...)
	if code != 0 {
		c.t.Fatalf("wsca %s: exit %d\n%s", strings.Join(args, " "), code, errs)
	}
	return out
}

// fails runs a command that must fail with exit 1 and print want in one
// error line.
func (c walletCLI) fails(want, stdin string, args ...string) {
	c.t.Helper()
	code, _, errs := c.run(stdin, args...)
	if code != 1 || !strings.Contains(errs, want) || strings.Count(errs, "wsca: error: ") != 1 {
		c.t.Fatalf("wsca %s: exit %d, stderr %q; want exit 1 and one error with %q", strings.Join(args, " "), code, errs, want)
	}
}

func decodeJSONAs[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	return v
}

// testServer starts the demo's server on a soft keystore for one test.
func walletTestServer(t *testing.T) *localServer {
	t.Helper()
	srv, err := startLocalServer(context.Background(), t.TempDir(), datadir.Soft, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.stop(); err != nil {
			t.Error(err)
		}
	})
	return srv
}

// newUnit creates a unit and returns it and its activation code, as an
// operator would hand them over.
func issueUnit(t *testing.T, srv *localServer, unit string) (string, string) {
	t.Helper()
	ctx := context.Background()
	if err := srv.svc.Units.Create(ctx, unit); err != nil {
		t.Fatal(err)
	}
	code, err := srv.svc.Units.IssueActivationCode(ctx, unit, store.PurposeActivation, 0)
	if err != nil {
		t.Fatal(err)
	}
	return unit, code.Code
}

// enrolled enrols a wallet with PIN 123456 and logs it in.
func enrolledWallet(t *testing.T, srv *localServer) walletCLI {
	t.Helper()
	c := newWalletCLI(t)
	unit, code := issueUnit(t, srv, "alice")
	c.ok("123456\n123456\n", "enroll", "--url", srv.url, "--unit", unit, "--code", code)
	c.ok("123456\n", "login")
	return c
}

func jwkPublicKey(t *testing.T, j jwk) *ecdsa.PublicKey {
	t.Helper()
	x, err1 := base64.RawURLEncoding.DecodeString(j.X)
	y, err2 := base64.RawURLEncoding.DecodeString(j.Y)
	if err1 != nil || err2 != nil {
		t.Fatalf("jwk %+v", j)
	}
	pub, err := device.PublicKeyFromBytes(append(append([]byte{4}, x...), y...))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// TestWalletFlow: enroll → login → keygen → sign --verify (digest, stdin,
// file) → ecdh → keylist → pin change → the old PIN is refused and the new
// one works → keydelete → logout, all through the CLI with PINs on stdin.
func TestWalletFlow(t *testing.T) {
	srv := walletTestServer(t)
	c := newWalletCLI(t)
	unit, code := issueUnit(t, srv, "alice")

	// The code comes as the first line of stdin, then the new PIN twice.
	en := decodeJSONAs[map[string]string](t, c.ok(code+"\n123456\n123456\n", "enroll", "--url", srv.url, "--unit", unit, "--json"))
	if en["unit"] != unit || en["state"] != c.state || len(en["server_signing_kid"]) != 43 || len(en["server_agreement_kid"]) != 43 {
		t.Fatalf("enroll: %v", en)
	}
	if fi, err := os.Stat(c.state); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", fi.Mode(), err)
	}
	if out := c.ok("", "status"); !strings.Contains(out, "session:  none") || !strings.Contains(out, en["server_signing_kid"]) {
		t.Fatalf("status: %s", out)
	}
	c.fails("no session: run wsca login", "", "keygen")

	login := decodeJSONAs[map[string]any](t, c.ok("123456\n", "login", "--json"))
	if exp, _ := time.Parse(time.RFC3339, login["expires_at"].(string)); !exp.After(time.Now()) {
		t.Fatalf("login: %v", login)
	}
	gen := decodeJSONAs[struct {
		KID string `json:"kid"`
		JWK jwk    `json:"public_key"`
	}](t, c.ok("", "keygen", "--json"))
	pub := jwkPublicKey(t, gen.JWK)

	type signed struct {
		Digest    string `json:"digest"`
		Signature string `json:"signature"`
		Verified  bool   `json:"verified"`
	}
	check := func(s signed, data string) {
		t.Helper()
		d := sha256.Sum256([]byte(data))
		sig, err := base64.StdEncoding.DecodeString(s.Signature)
		if err != nil || s.Digest != hex.EncodeToString(d[:]) || !s.Verified || !ecdsa.VerifyASN1(pub, d[:], sig) {
			t.Fatalf("sign: %+v", s)
		}
	}
	d := sha256.Sum256([]byte("digest"))
	check(decodeJSONAs[signed](t, c.ok("", "sign", "--kid", gen.KID, "--digest", hex.EncodeToString(d[:]), "--verify", "--json")), "digest")
	check(decodeJSONAs[signed](t, c.ok("data on stdin", "sign", "--kid", gen.KID, "--verify", "--json")), "data on stdin")
	file := filepath.Join(t.TempDir(), "doc")
	os.WriteFile(file, []byte("a file"), 0o600)
	check(decodeJSONAs[signed](t, c.ok("", "sign", "--verify", "--json", "--file", file, "--kid", gen.KID)), "a file")
	if out := c.ok("x", "sign", "--kid", gen.KID); strings.Count(out, "\n") != 1 {
		t.Fatalf("sign prints one line: %q", out)
	}

	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	for _, enc := range []func([]byte) string{hex.EncodeToString, base64.StdEncoding.EncodeToString, base64.RawURLEncoding.EncodeToString} {
		// map[string]any: the output carries the factors (amr) as a list.
		z := decodeJSONAs[map[string]any](t, c.ok("", "ecdh", "--kid", gen.KID, "--peer", enc(peer.PublicKey().Bytes()), "--json"))
		kp, _ := pub.ECDH()
		want, _ := peer.ECDH(kp)
		if z["shared_secret"] != base64.StdEncoding.EncodeToString(want) {
			t.Fatalf("ecdh: %v", z)
		}
	}
	c.fails("SEC 1", "", "ecdh", "--kid", gen.KID, "--peer", "0102")

	keys := decodeJSONAs[[]walletKeyRow](t, c.ok("", "keylist", "--json"))
	if len(keys) != 1 || string(keys[0].KID) != gen.KID || keys[0].JWK != gen.JWK {
		t.Fatalf("keylist: %+v", keys)
	}

	// PIN change: current PIN, then the new one twice.
	c.fails("do not match", "123456\n654321\n654320\n", "pin", "change")
	c.ok("123456\n654321\n654321\n", "pin", "change")
	c.fails("UNAUTHORIZED", "123456\n", "login")
	if a, err := srv.pins.Attempts(context.Background(), unit, "hsm"); err != nil || a.Failures != 1 {
		t.Fatalf("attempts after a wrong PIN: %+v %v", a, err)
	}
	c.ok("654321\n", "login")

	if out := c.ok("", "keys"); !strings.Contains(out, gen.KID) {
		t.Fatalf("wsca keys: %q", out)
	}
	c.ok("", "keydelete", "--kid", gen.KID)
	if out := c.ok("", "keylist"); out != "" {
		t.Fatalf("keylist after delete: %q", out)
	}
	if out := c.ok("", "logout"); !strings.Contains(out, "session forgotten") {
		t.Fatalf("logout: %s", out)
	}
	c.fails("no session: run wsca login", "", "keygen")
	// keylist lists every plugin's keys: softkey's answer, so the r2ps
	// plugin's missing session is a warning, not a failure.
	if code, _, errs := c.run("", "keylist"); code != 0 || !strings.Contains(errs, "wsca: warning: keylist: plugin r2ps: no session: run wsca login") {
		t.Fatalf("keylist without a session: exit %d, %q", code, errs)
	}
}

func TestWrongPIN(t *testing.T) {
	srv := walletTestServer(t)
	c := enrolledWallet(t, srv)
	code, out, errs := c.run("999999\n", "login")
	if code != 1 || out != "" || !strings.Contains(errs, "UNAUTHORIZED") || !strings.Contains(errs, "wrong PIN") {
		t.Fatalf("wrong PIN: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// The session from before stays: keylist would answer with the
	// softkey plugin's keys alone, so the check is that r2ps had no
	// complaint.
	if code, _, errs := c.run("", "keylist"); code != 0 || errs != "" {
		t.Fatalf("keylist after a wrong PIN: exit %d, %q", code, errs)
	}
}

// TestStateFileMode: a state file others may read is refused by every
// command, and a private one is accepted again.
func TestStateFileMode(t *testing.T) {
	srv := walletTestServer(t)
	c := enrolledWallet(t, srv)
	if err := os.Chmod(c.state, 0o644); err != nil {
		t.Fatal(err)
	}
	c.fails("group or others may read it (mode 0644)", "", "keylist")
	c.fails("group or others may read it", "123456\n", "login")
	c.fails("group or others may read it", "", "status")
	os.Chmod(c.state, 0o600)
	c.ok("", "keylist")
}

// TestSessionExpired: a session past its expiry, or one the server does
// not know, says "session expired: run wsca login"; the latter is
// forgotten.
func TestSessionExpired(t *testing.T) {
	srv := walletTestServer(t)
	c := enrolledWallet(t, srv)
	edit := func(fn func(*savedSession)) {
		t.Helper()
		w, err := loadWallet(c.state)
		if err != nil {
			t.Fatal(err)
		}
		fn(w.session)
		if err := w.save(); err != nil {
			t.Fatal(err)
		}
	}
	edit(func(s *savedSession) { s.expiresAt = time.Now().Add(-time.Second) })
	c.fails("session expired: run wsca login", "", "keygen")
	if out := c.ok("", "status"); !strings.Contains(out, "session:  expired at") {
		t.Fatalf("status: %s", out)
	}

	c.ok("123456\n", "login")
	edit(func(s *savedSession) { s.id = "unknown-session-id" })
	c.fails("session expired: run wsca login", "", "keygen")
	w, err := loadWallet(c.state)
	if err != nil || w.session != nil {
		t.Fatalf("the unknown session was kept: %v", err)
	}
}

func TestEnrollErrors(t *testing.T) {
	srv := walletTestServer(t)
	c := newWalletCLI(t)
	unit, code := issueUnit(t, srv, "bob")
	args := []string{"enroll", "--url", srv.url, "--unit", unit, "--code", code}
	c.fails("do not match", "123456\n123465\n", args...)
	c.fails("at least 4", "12\n12\n", args...)
	c.fails("reading the new PIN again", "123456\n", args...)
	if _, err := os.Stat(c.state); !os.IsNotExist(err) {
		t.Fatalf("a failed PIN entry wrote the state: %v", err)
	}
	bad := append(args[:len(args)-1:len(args)-1], "AAAAAAAAAAAAAAAAAAAAAAAAAA")
	code1, _, errs := c.run("123456\n123456\n", bad...)
	if code1 != 1 || !strings.Contains(errs, "wsca: error: enrolment: r2ps:") {
		t.Fatalf("wrong code: exit %d %s", code1, errs)
	}
	// An unfinished enrolment is replaced without --force.
	c.ok("123456\n123456\n", args...)
	c.fails("already holds unit bob", "123456\n123456\n", args...)
	if code, _, _ := c.run("", "enroll", "--unit", unit); code != 2 {
		t.Fatalf("enroll without --url: exit %d", code)
	}
}

func TestWalletUsage(t *testing.T) {
	c := newWalletCLI(t)
	code, _, errs := c.run("", "help")
	if code != 0 {
		t.Fatal(code)
	}
	for _, w := range []string{"wallet commands", "operator commands", "keylist", "pin change", "demo r2ps", "key destroy"} {
		if !strings.Contains(errs, w) {
			t.Errorf("usage lacks %q", w)
		}
	}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"sign"}, 2}, // no --kid
		{[]string{"sign", "--kid", "k", "--digest", "00", "--file", "f"}, 2},
		{[]string{"keydelete"}, 2},                // no kid
		{[]string{"ecdh", "--kid", "k"}, 2},       // no --peer
		{[]string{"login", "--pin", "123456"}, 2}, // no PIN in argv
		{[]string{"login", "-h"}, 0},
		{[]string{"status"}, 1}, // no state file yet
		{[]string{"demo", "r2ps", "extra"}, 2},
	} {
		if code, _, errs := c.run("", tc.args...); code != tc.want {
			t.Errorf("wsca %v: exit %d, want %d (%s)", tc.args, code, tc.want, errs)
		}
	}
}
