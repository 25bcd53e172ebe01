//go:build cgo && !nopkcs11

package pkcs11

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/device/devicetest"
)

// TestWrappedDeriveOnly: a derive-only key in wrapped storage has a
// version-2 blob; Sign refuses it before any device call; and the object
// its blob unwraps into has no CKA_SIGN, so the token refuses a signature
// even past that check.
func TestWrappedDeriveOnly(t *testing.T) {
	ctx := context.Background()
	d := openWith(t, wrappedConfig(t, "", 0))
	owner := devicetest.NewOwner(t, "wderive")
	k, err := d.GenerateDeriveOnly(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Wrapped) == 0 || k.Wrapped[0] != blobVersionDeriveOnly {
		t.Fatalf("derive-only blob %x", k.Wrapped[:1])
	}
	digest := sha256.Sum256([]byte("x"))
	before := d.Calls()
	if _, err := d.Sign(ctx, k.Ref(), digest[:]); !errors.Is(err, device.ErrKeyUsage) {
		t.Fatalf("Sign = %v, want ErrKeyUsage", err)
	}
	if got := device.CallsDelta(before, d.Calls()); len(got) != 0 {
		t.Fatalf("refused Sign made calls %v", got)
	}
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	if _, err := d.ECDH(ctx, k.Ref(), peer.PublicKey()); err != nil {
		t.Fatal(err)
	}
	err = d.withKey(ctx, k.Ref(), func(s p11.SessionHandle, h p11.ObjectHandle) error {
		if err := d.lib.SignInit(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_ECDSA, nil)}, h); err != nil {
			return err
		}
		_, err := d.lib.Sign(s, digest[:])
		return err
	})
	if !isCode(err, p11.CKR_KEY_FUNCTION_NOT_PERMITTED) {
		t.Fatalf("C_Sign on the unwrapped derive-only object = %v, want CKR_KEY_FUNCTION_NOT_PERMITTED", err)
	}
}
