package main

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
)

func testWallet(t *testing.T, path string) *wallet {
	t.Helper()
	csk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cak, _ := ecdh.P256().GenerateKey(rand.Reader)
	ssk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sak, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return &wallet{path: path, url: "http://127.0.0.1:1", unit: "alice", context: "hsm", enrolled: true, csk: csk, cak: cak,
		server: client.ServerKeys{Signing: &ssk.PublicKey, SigningKID: r2ps.Thumbprint(&ssk.PublicKey),
			Agreement: &sak.PublicKey, AgreementKID: r2ps.Thumbprint(&sak.PublicKey)},
		session: &savedSession{id: "sid", key: bytes.Repeat([]byte{7}, 32), task: "2fa_update", expiresAt: time.Unix(2e9, 0)}}
}

func TestStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "client.json")
	w := testWallet(t, path)
	if err := w.save(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%v %v", fi.Mode(), err)
	}
	if fi, _ := os.Stat(filepath.Dir(path)); fi.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode %v", fi.Mode())
	}
	got, err := loadWallet(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.csk.Equal(w.csk) || !got.cak.Equal(w.cak) || !got.server.Signing.Equal(w.server.Signing) ||
		got.server.AgreementKID != w.server.AgreementKID || got.url != w.url || got.unit != w.unit || !got.enrolled ||
		got.session.id != "sid" || !bytes.Equal(got.session.key, w.session.key) || got.session.task != "2fa_update" ||
		!got.session.expiresAt.Equal(w.session.expiresAt) {
		t.Fatalf("round trip: %+v", got)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "BEGIN PRIVATE KEY") {
		t.Fatalf("keys are not PKCS#8 PEM:\n%s", data)
	}
	// Nothing but the temporary file's rename touched the directory.
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("left over: %v", ents)
	}

	// The wallet's secrets stay out of fmt and slog.
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "wallet", got)
	for _, s := range []string{fmt.Sprint(got), fmt.Sprintf("%v", got), logged.String()} {
		if strings.Contains(s, "PRIVATE") || strings.Contains(s, "sid") || !strings.Contains(s, "alice") {
			t.Errorf("leaks or lacks the unit: %s", s)
		}
	}
}

func TestStateRejects(t *testing.T) {
	dir := t.TempDir()
	w := testWallet(t, filepath.Join(dir, "ok.json"))
	if err := w.save(); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(w.path)
	for name, tc := range map[string]struct {
		edit func(string) string
		mode os.FileMode
		want string
	}{
		"world readable": {func(s string) string { return s }, 0o604, "group or others"},
		"group readable": {func(s string) string { return s }, 0o640, "group or others"},
		"unknown member": {func(s string) string { return strings.Replace(s, `"version"`, `"extra": 1, "version"`, 1) }, 0o600, "unknown field"},
		"trailing data":  {func(s string) string { return s + "{}" }, 0o600, "after the JSON"},
		"version":        {func(s string) string { return strings.Replace(s, `"version": 1`, `"version": 2`, 1) }, 0o600, "version 2"},
		"server kid":     {func(s string) string { return strings.Replace(s, w.server.SigningKID, "x", 1) }, 0o600, "thumbprint"},
		"session key":    {func(s string) string { return strings.Replace(s, `"key": "`, `"key": "AA`, 1) }, 0o600, "32-byte key"},
		"not PEM":        {func(s string) string { return strings.Replace(s, "BEGIN PRIVATE KEY", "BEGIN EC PRIVATE KEY", 1) }, 0o600, "PKCS#8"},
		"missing unit":   {func(s string) string { return strings.Replace(s, `"unit": "alice"`, `"unit": ""`, 1) }, 0o600, "required"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
			if err := os.WriteFile(path, []byte(tc.edit(string(good))), 0o600); err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, tc.mode)
			if _, err := loadWallet(path); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := loadWallet(filepath.Join(dir, "none")); err == nil || !strings.Contains(err.Error(), "run wsca enroll") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestDefaultStatePath(t *testing.T) {
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/x/wsca/client.json"},
		{map[string]string{"XDG_CONFIG_HOME": "rel", "HOME": "/h"}, "/h/.config/wsca/client.json"},
		{map[string]string{"HOME": "/h"}, "/h/.config/wsca/client.json"},
		{map[string]string{}, ""},
	} {
		got, err := defaultStatePath(env(tc.env))
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("%v: %q %v", tc.env, got, err)
		}
	}
}
