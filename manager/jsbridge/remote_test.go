//go:build !(js && wasm)

package jsbridge

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/kv"
	"github.com/wsca/wsca/manager/plugintest"
	"github.com/wsca/wsca/manager/remote"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

type pinHost struct {
	pin   string
	asked atomic.Int32
}

func (h *pinHost) RequestPIN(context.Context, manager.PINRequest) (*manager.Secret, error) {
	h.asked.Add(1)
	return manager.NewSecret([]byte(h.pin)), nil
}

func (h *pinHost) RequestWebAuthnAssertion(context.Context, manager.WebAuthnRequest) ([]byte, error) {
	return nil, manager.ErrUnsupported
}

// unit creates a unit and its activation code.
func unit(t *testing.T, r *stacktest.Running) (string, string) {
	t.Helper()
	u := wscd.NewUnitID()
	if err := r.Services.Units.Create(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	code, err := r.Services.Units.IssueActivationCode(t.Context(), u, store.PurposeActivation, 0)
	if err != nil {
		t.Fatal(err)
	}
	return u, code.Code
}

func kvDir(t *testing.T) *kv.Dir {
	t.Helper()
	d, err := kv.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var kek = bytes.Repeat([]byte{9}, 32)

// The browser's R2PS plugin passes the plugin conformance suite once
// enrolled (device keys made by Enrol and kept in the store).
func TestRemoteConformance(t *testing.T) {
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.PKCS11(t), nil)
	h := &pinHost{pin: "123456"}
	fresh := func(t *testing.T) manager.Plugin {
		u, code := unit(t, r)
		p, err := NewRemote(RemoteConfig{URL: r.URL, Unit: u}, kvDir(t), kek)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Enrol(t.Context(), code, manager.Env{Auth: h}); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plugintest.Run(t, manager.Env{Auth: h}, fresh)
	plugintest.RunBindings(t, manager.Env{Auth: h}, fresh)
}

// Before enrolment the plugin has no key and refuses to work; after it,
// another instance on the same store uses the kept device keys and
// session, but not under another KEK, for another unit, or from a record
// moved under the device key's name.
func TestRemoteDeviceKeys(t *testing.T) {
	ctx := t.Context()
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.PKCS11(t), nil)
	h := &pinHost{pin: "222222"}
	env := manager.Env{Auth: h}
	u, code := unit(t, r)
	st := kvDir(t)
	p, err := NewRemote(RemoteConfig{URL: r.URL, Unit: u}, st, kek)
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := p.List(ctx, env); err != nil || len(keys) != 0 {
		t.Fatalf("List before enrolment: %v %v", keys, err)
	}
	if _, _, err := p.Generate(ctx, "", env); !errors.Is(err, remote.ErrNotEnrolled) {
		t.Fatalf("Generate before enrolment: %v, want ErrNotEnrolled", err)
	}
	if err := p.Enrol(ctx, code, env); err != nil {
		t.Fatal(err)
	}
	k, _, err := p.Generate(ctx, "l", env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, devicePendingKey); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("pending device keys left after enrolment: %v", err)
	}
	asked := h.asked.Load()
	again, _ := NewRemote(RemoteConfig{URL: r.URL, Unit: u}, st, kek)
	if _, _, err := again.Sign(ctx, k.Handle, make([]byte, 32), env); err != nil {
		t.Fatal(err)
	}
	if h.asked.Load() != asked {
		t.Fatal("a second instance asked for the PIN despite the kept session")
	}
	for name, q := range map[string]func() (*Remote, error){
		"another KEK": func() (*Remote, error) {
			return NewRemote(RemoteConfig{URL: r.URL, Unit: u}, st, bytes.Repeat([]byte{1}, 32))
		},
		"another unit": func() (*Remote, error) { return NewRemote(RemoteConfig{URL: r.URL, Unit: "other"}, st, kek) },
	} {
		p, _ := q()
		if _, _, err := p.Sign(ctx, k.Handle, make([]byte, 32), env); !errors.Is(err, ErrDeviceDecrypt) {
			t.Errorf("%s: %v, want ErrDeviceDecrypt", name, err)
		}
	}
	// A record sealed under another name (the pending one) does not open
	// as the device keys.
	rec, _ := st.Get(ctx, deviceKey)
	moved := kvDir(t)
	pending, _ := NewRemote(RemoteConfig{URL: r.URL, Unit: u}, moved, kek)
	dr, _, _, _ := pending.open(ctx, deviceKey) // nothing there yet
	if dr != nil {
		t.Fatal("device keys in an empty store")
	}
	_ = moved.Put(ctx, devicePendingKey, rec)
	if _, _, _, err := pending.open(ctx, devicePendingKey); !errors.Is(err, ErrDeviceDecrypt) {
		t.Fatalf("a record moved to another name: %v, want ErrDeviceDecrypt", err)
	}
	if _, err := NewRemote(RemoteConfig{URL: r.URL}, st, kek); !errors.Is(err, manager.ErrInvalidInput) {
		t.Fatalf("no unit: %v", err)
	}
}
