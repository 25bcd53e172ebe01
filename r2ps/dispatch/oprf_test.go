package dispatch_test

import (
	"slices"
	"testing"

	"github.com/wsca/wsca/device"
	wscastack "github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/store"
)

// oprfKIDs returns the kids of a unit's HSM OPRF keys the store names.
func oprfKIDs(t *testing.T, st *store.Store, unit string) []device.KID {
	t.Helper()
	keys, err := st.OPRFKeys(t.Context(), unit)
	if err != nil {
		t.Fatal(err)
	}
	var kids []device.KID
	for _, k := range keys {
		pub, err := device.PublicKeyFromBytes(k.Public)
		if err != nil {
			t.Fatal(err)
		}
		kid, _ := device.KIDOf(pub)
		kids = append(kids, kid)
	}
	return kids
}

// deviceKIDs returns the kids of the unit's token objects.
func deviceKIDs(t *testing.T, dev device.Device, unit string) []device.KID {
	t.Helper()
	keys, err := dev.List(t.Context(), device.Owner(unit))
	if err != nil {
		t.Fatal(err)
	}
	var kids []device.KID
	for _, k := range keys {
		kids = append(kids, k.KID)
	}
	return kids
}

// TestOPRFKeyLifecycle: through R2PS with OPRF keys in the HSM, an
// enrolment leaves exactly the record's key on the device, a PIN change
// (2fa_update) leaves only the new one, and destroying the unit leaves
// none.
func TestOPRFKeyLifecycle(t *testing.T) {
	dev := testdevice.PKCS11(t)
	r := stacktest.Start(t, testenv.SQLite(t), dev, func(o *wscastack.Options) { o.OPRFInHSM = true })
	ctx := t.Context()
	c, unit := r.EnrolledClient(t, "135790")
	first := oprfKIDs(t, r.Store, unit)
	if len(first) != 1 || !slices.Equal(deviceKIDs(t, dev, unit), first) {
		t.Fatalf("after enrolment: store names %v, device holds %v", first, deviceKIDs(t, dev, unit))
	}
	up, err := c.Login(ctx, []byte("135790"), client.LoginOptions{Task: r2ps.Task2FAUpdate})
	if err != nil {
		t.Fatal(err)
	}
	if err := up.ChangePIN(ctx, []byte("246802")); err != nil {
		t.Fatal(err)
	}
	second := oprfKIDs(t, r.Store, unit)
	if len(second) != 1 || second[0] == first[0] || !slices.Equal(deviceKIDs(t, dev, unit), second) {
		t.Fatalf("after the PIN change: store names %v, device holds %v (first %v)", second, deviceKIDs(t, dev, unit), first)
	}
	if _, err := c.Login(ctx, []byte("246802"), client.LoginOptions{}); err != nil {
		t.Fatalf("login with the new PIN: %v", err)
	}
	if err := r.Services.Units.Destroy(ctx, unit); err != nil {
		t.Fatal(err)
	}
	if left := deviceKIDs(t, dev, unit); len(left) != 0 {
		t.Fatalf("after destruction the device holds %v", left)
	}
}
