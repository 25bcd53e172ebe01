package dispatch_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/device/soft"
	wscastack "github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/r2ps/client/httptransport"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
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

// TestSoftwareOPRFRefused: a unit enrolled with a software OPRF key logs
// in on an instance with OPRF keys in the HSM, and is refused
// ILLEGAL_STATE, nothing counted, by one that refuses software keys.
func TestSoftwareOPRFRefused(t *testing.T) {
	dsn := testenv.SQLite(t)
	dev := testdevice.Soft(t)
	old := stacktest.Start(t, dsn, dev, nil)
	c, unit := old.EnrolledClient(t, "112233")
	ctx := t.Context()
	connect := func(r *stacktest.Running) *client.Client {
		cfg := c.Config()
		cfg.URL = r.URL
		nc, err := client.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return nc
	}
	accepting := stacktest.Start(t, dsn, dev, func(o *wscastack.Options) { o.OPRFInHSM = true })
	if _, err := connect(accepting).Login(ctx, []byte("112233"), client.LoginOptions{}); err != nil {
		t.Fatalf("software record on an HSM-OPRF instance: %v", err)
	}
	refusing := stacktest.Start(t, dsn, dev, func(o *wscastack.Options) { o.OPRFInHSM, o.RefuseSoftwareOPRF = true, true })
	_, err := connect(refusing).Login(ctx, []byte("112233"), client.LoginOptions{})
	var e *client.Error
	if !errors.As(err, &e) || e.Code != r2ps.CodeIllegalState {
		t.Fatalf("software record on a refusing instance: %v, want ILLEGAL_STATE", err)
	}
	if a, err := refusing.Store.GetAttempts(ctx, unit, "hsm"); err != nil || a.Failures != 0 {
		t.Fatalf("attempts %+v, %v", a, err)
	}
}

// outageDevice is the soft keystore whose ECDH with the keys of one owner
// fails as an unreachable HSM would.
type outageDevice struct {
	*soft.Device
	owner atomic.Value // device.Owner
}

func (d *outageDevice) ECDH(ctx context.Context, ref device.Ref, peer *ecdh.PublicKey) ([]byte, error) {
	if o, _ := d.owner.Load().(device.Owner); o != "" && o == ref.Owner {
		return nil, device.ErrUnavailable
	}
	return d.Device.ECDH(ctx, ref, peer)
}

// TestOPRFDeviceOutage: a login whose OPRF evaluation meets an unavailable
// device is answered TRY_LATER, not SERVER_ERROR.
func TestOPRFDeviceOutage(t *testing.T) {
	dev := &outageDevice{Device: testdevice.Soft(t).(*soft.Device)}
	r := stacktest.Start(t, testenv.SQLite(t), dev, func(o *wscastack.Options) { o.OPRFInHSM = true })
	c, unit := r.EnrolledClient(t, "135790")
	dev.owner.Store(device.Owner(unit))
	_, err := c.Login(t.Context(), []byte("135790"), client.LoginOptions{})
	var e *client.Error
	if !errors.As(err, &e) || e.Code != r2ps.CodeTryLater {
		t.Fatalf("login during an outage: %v, want TRY_LATER", err)
	}
	dev.owner.Store(device.Owner(""))
	if _, err := c.Login(t.Context(), []byte("135790"), client.LoginOptions{}); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}

// TestOPRFKeyNotStored: a registration whose finalize takes the pending
// registration but stores no record (here a wrong activation code, which
// anyone who knows a unit waiting for enrolment can send) leaves no HSM
// OPRF key on the device that nothing names.
func TestOPRFKeyNotStored(t *testing.T) {
	dev := testdevice.PKCS11(t)
	r := stacktest.Start(t, testenv.SQLite(t), dev, func(o *wscastack.Options) { o.OPRFInHSM = true })
	ctx := t.Context()
	unit := wscd.NewUnitID()
	if err := r.Services.Units.Create(ctx, unit); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Services.Units.IssueActivationCode(ctx, unit, store.PurposeActivation, 0); err != nil {
		t.Fatal(err)
	}
	keys, err := client.FetchServerKeys(ctx, httptransport.New(nil), r.URL)
	if err != nil {
		t.Fatal(err)
	}
	csk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cak, _ := ecdh.P256().GenerateKey(rand.Reader)
	c, err := client.New(client.Config{URL: r.URL, Transport: httptransport.New(nil), Unit: unit, Context: "hsm", SigningKey: csk, AgreementKey: cak, Server: keys})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		var e *client.Error
		if err := c.Enrol(ctx, "WRONG-CODE-0000", []byte("135790")); !errors.As(err, &e) || e.Code != r2ps.CodeUnauthorized {
			t.Fatalf("enrolment with a wrong code: %v, want UNAUTHORIZED", err)
		}
	}
	if left := deviceKIDs(t, dev, unit); len(left) != 0 {
		t.Fatalf("after failed enrolments the device holds %v; the store names %v", left, oprfKIDs(t, r.Store, unit))
	}
}
