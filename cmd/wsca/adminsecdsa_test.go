package main

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/secdsa"
	"github.com/wsca/wsca/store"
)

// TestAdminSECDSAReset: "admin unit secdsa-reset" needs --yes; it clears
// the unit's SECDSA binding through wscad's admin API, and says so when
// the unit has none.
func TestAdminSECDSAReset(t *testing.T) {
	const token = "0123456789abcdef-secdsa"
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.Soft(t), func(o *stack.Options) { o.AdminToken = []byte(token) })
	if r.SECDSA == nil {
		t.Fatal("no SECDSA service")
	}
	tokFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokFile, []byte(token+"\n"), 0o600)
	c := cli{t: t, dir: t.TempDir()}
	common := []string{"--admin-url", r.AdminURL, "--admin-token-file", tokFile}
	ctx := t.Context()
	if err := r.Units.Create(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	dev, err := secdsa.NewSoftwareDeviceKey()
	if err != nil {
		t.Fatal(err)
	}
	k := make([]byte, 32)
	rand.Read(k)
	binder, err := secdsa.NewSoftwarePINBinder(k)
	if err != nil {
		t.Fatal(err)
	}
	nonce, err := r.SECDSA.Nonce(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	req, state, err := secdsa.BeginActivation(rand.Reader, binder, dev, []byte("1234"), []byte("alice"), nonce)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := r.SECDSA.Activate(ctx, "alice", dev.Public(), req.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	yp, err := state.Finish(resp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.SECDSA.Finish(ctx, "alice", dev.Public(), yp); err != nil {
		t.Fatal(err)
	}

	if code, _, errs := c.run(append([]string{"admin", "unit", "secdsa-reset", "alice"}, common...)...); code == 0 || !strings.Contains(errs, "--yes") {
		t.Fatalf("reset without --yes: %d %s", code, errs)
	}
	if _, err := r.Store.GetSECDSA(ctx, "alice"); err != nil {
		t.Fatalf("a refused reset touched the binding: %v", err)
	}
	if out := c.ok(append([]string{"admin", "unit", "secdsa-reset", "alice", "--yes"}, common...)...); !strings.Contains(out, "reset") {
		t.Fatalf("reset: %s", out)
	}
	if _, err := r.Store.GetSECDSA(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("binding after the reset: %v", err)
	}
	if code, _, errs := c.run(append([]string{"admin", "unit", "secdsa-reset", "alice", "--yes"}, common...)...); code != 1 || !strings.Contains(errs, "409") {
		t.Fatalf("second reset: %d %s", code, errs)
	}
}
