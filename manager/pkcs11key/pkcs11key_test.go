//go:build cgo

package pkcs11key_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/pkcs11key"
	"github.com/wsca/wsca/manager/plugintest"
)

type pinHost struct {
	pin   string
	asked int
}

func (h *pinHost) RequestPIN(_ context.Context, r manager.PINRequest) (*manager.Secret, error) {
	h.asked++
	if r.Plugin != "pkcs11" || r.Reason != manager.ReasonUnlock {
		return nil, errors.New("unexpected PIN request")
	}
	return manager.NewSecret([]byte(h.pin)), nil
}

func (h *pinHost) RequestWebAuthnAssertion(context.Context, manager.WebAuthnRequest) ([]byte, error) {
	return nil, manager.ErrUnsupported
}

// token returns a plugin on the test token in a namespace of its own.
func token(t testing.TB, pin string) *pkcs11key.Plugin {
	t.Helper()
	testenv.PKCS11URI(t)
	module, label := os.Getenv("WSCA_TEST_PKCS11_MODULE"), os.Getenv("WSCA_TEST_PKCS11_TOKEN")
	ns := make([]byte, 6)
	_, _ = rand.Read(ns)
	p, err := pkcs11key.New(pkcs11key.Config{Module: module, TokenLabel: label, PIN: pin, Namespace: "t-" + hex.EncodeToString(ns)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if keys, err := p.List(context.Background(), manager.Env{}); err == nil {
			for _, k := range keys {
				_, _ = p.Delete(context.Background(), k.Handle, manager.Env{})
			}
		}
		p.Close()
	})
	return p
}

func TestConformance(t *testing.T) {
	pin := os.Getenv("WSCA_TEST_PKCS11_PIN")
	plugintest.Run(t, manager.Env{}, func(t *testing.T) manager.Plugin { return token(t, pin) })
	plugintest.RunBindings(t, manager.Env{}, func(t *testing.T) manager.Plugin { return token(t, pin) })
}

func TestPINFromTheHost(t *testing.T) {
	h := &pinHost{pin: os.Getenv("WSCA_TEST_PKCS11_PIN")}
	p := token(t, "")
	env := manager.Env{Auth: h}
	k, a, err := p.Generate(context.Background(), "l", env)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Sign(context.Background(), k.Handle, make([]byte, 32), env); err != nil {
		t.Fatal(err)
	}
	if h.asked != 1 {
		t.Fatalf("PIN asked %d times, want once per login", h.asked)
	}
	if len(a) != 2 || a[0] != "hwk" || a[1] != "pin" {
		t.Fatalf("amr %v", a)
	}
	if props := p.NewKeyProperties(); props.Storage != manager.StorageHardware || props.KeyStorageAttackPotential != "" {
		t.Fatalf("properties %+v: an undeclared token must claim nothing", props)
	}

}

// A token's login is shared by every session of a process, so the refusals
// run in a fresh process that has not logged in.
func TestPINRefusals(t *testing.T) {
	if os.Getenv("PKCS11KEY_FRESH_PROCESS") == "" {
		testenv.PKCS11URI(t)
		cmd := exec.Command(os.Args[0], "-test.run=^TestPINRefusals$", "-test.count=1")
		cmd.Env = append(os.Environ(), "PKCS11KEY_FRESH_PROCESS=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return
	}
	wrong := token(t, "")
	if _, _, err := wrong.Generate(context.Background(), "l", manager.Env{Auth: &pinHost{pin: "000000-wrong"}}); !errors.Is(err, manager.ErrAuthRequired) {
		t.Fatalf("wrong token PIN: %v, want ErrAuthRequired", err)
	}
	if _, _, err := token(t, "").Generate(context.Background(), "l", manager.Env{}); !errors.Is(err, manager.ErrAuthRequired) {
		t.Fatalf("no PIN callback: %v, want ErrAuthRequired", err)
	}
}

// Keys in another namespace (another application on the token) are never
// seen nor usable.
func TestNamespaces(t *testing.T) {
	pin := os.Getenv("WSCA_TEST_PKCS11_PIN")
	a, b := token(t, pin), token(t, pin)
	k, _, err := a.Generate(context.Background(), "x", manager.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := b.List(context.Background(), manager.Env{}); err != nil || len(keys) != 0 {
		t.Fatalf("b sees %d keys (%v)", len(keys), err)
	}
	if _, _, err := b.Sign(context.Background(), k.Handle, make([]byte, 32), manager.Env{}); !errors.Is(err, manager.ErrKeyNotFound) {
		t.Fatalf("b signs with a's key: %v", err)
	}
}
