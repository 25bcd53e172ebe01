package client_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
)

// TestWSCATypes runs the WSCA service types end to end: pseudonym slots
// (isolated per unit), unit information with the configured assurance
// only, the amr of every answer, suspension and revocation by the holder,
// and what every later request of the unit gets.
func TestWSCATypes(t *testing.T) {
	forEach(t, func(t *testing.T, w *world) {
		ctx := t.Context()
		alice, aliceUnit := w.enrolled(t, "alice", "123456")
		bob, bobUnit := w.enrolled(t, "bob", "654321")
		as, err := alice.Login(ctx, []byte("123456"), client.LoginOptions{})
		if err != nil {
			t.Fatal(err)
		}
		bs, err := bob.Login(ctx, []byte("654321"), client.LoginOptions{})
		if err != nil {
			t.Fatal(err)
		}

		if created, err := as.PutPseudonym(ctx, "rp.example", []byte("alice-at-rp")); err != nil || !created {
			t.Fatalf("put = %v, %v", created, err)
		}
		if created, err := as.PutPseudonym(ctx, "rp.example", []byte("alice-at-rp-2")); err != nil || created {
			t.Fatalf("replace = %v, %v", created, err)
		}
		if v, err := as.Pseudonym(ctx, "rp.example"); err != nil || !bytes.Equal(v, []byte("alice-at-rp-2")) {
			t.Fatalf("get = %q, %v", v, err)
		}
		_, err = bs.Pseudonym(ctx, "rp.example")
		wantCode(t, "bob reads alice's slot", err, r2ps.CodeIllegalRequestData)
		if slots, err := bs.Pseudonyms(ctx); err != nil || len(slots) != 0 {
			t.Fatalf("bob's slots = %v, %v", slots, err)
		}
		_, err = as.PutPseudonym(ctx, "a/b", []byte("x"))
		wantCode(t, "bad slot name", err, r2ps.CodeIllegalRequestData)
		if slots, err := as.Pseudonyms(ctx); err != nil || len(slots) != 1 || slots[0].Slot != "rp.example" {
			t.Fatalf("alice's slots = %v, %v", slots, err)
		}
		if err := as.DeletePseudonym(ctx, "rp.example"); err != nil {
			t.Fatal(err)
		}
		_, err = as.Pseudonym(ctx, "rp.example")
		wantCode(t, "deleted slot", err, r2ps.CodeIllegalRequestData)

		if _, err := as.Generate(ctx); err != nil {
			t.Fatal(err)
		}
		info, err := as.UnitInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Unit != aliceUnit || info.State != "active" || info.Keys != 1 || info.ActivatedAt == 0 || info.CreatedAt == 0 {
			t.Fatalf("info = %+v", info)
		}
		// SoftHSM, as configured in the tests, claims no certified level.
		c := info.Capabilities
		if c.DeviceAssurance == string(device.AssuranceHigh) || len(c.KeyStorage) != 0 || len(c.UserAuthentication) != 0 || c.KeysExportable {
			t.Fatalf("capabilities claim more than configured: %+v", c)
		}
		if !slices.Contains(c.Types, r2ps.TypeSignECDSA) || !slices.Contains(c.Types, r2ps.TypeUnitInfo) {
			t.Fatalf("types = %v", c.Types)
		}
		if !slices.Equal(info.AMR, []string{r2ps.AMRPossession, r2ps.AMRPIN}) {
			t.Fatalf("amr = %v", info.AMR)
		}

		err = as.RevokeUnit(ctx, bobUnit, "not mine")
		wantCode(t, "revoke naming another unit", err, r2ps.CodeIllegalRequestData)

		// The holder suspends, and lifts its own suspension with the PIN in
		// the one session a suspended unit can open.
		_, err = bob.Login(ctx, []byte("654321"), client.LoginOptions{Task: r2ps.TaskUnsuspend})
		wantCode(t, "an unsuspend session of an active unit", err, r2ps.CodeAccessDenied)
		if err := bs.SuspendUnit(ctx); err != nil {
			t.Fatal(err)
		}
		_, err = bob.Login(ctx, []byte("654321"), client.LoginOptions{})
		wantCode(t, "login of a suspended unit", err, r2ps.CodeAccessDenied)
		us, err := bob.Login(ctx, []byte("654321"), client.LoginOptions{Task: r2ps.TaskUnsuspend})
		if err != nil {
			t.Fatalf("unsuspend session: %v", err)
		}
		_, err = us.UnitInfo(ctx)
		wantCode(t, "another type in the unsuspend session", err, r2ps.CodeAccessDenied)
		if err := us.UnsuspendUnit(ctx); err != nil {
			t.Fatalf("unsuspend by the holder: %v", err)
		}
		err = us.UnsuspendUnit(ctx)
		wantCode(t, "the unsuspend session after use", err, r2ps.CodeUnauthorized)
		if _, err = bob.Login(ctx, []byte("654321"), client.LoginOptions{}); err != nil {
			t.Fatalf("login after the holder unsuspended: %v", err)
		}
		// An operator's suspension is the operator's to lift.
		if err := w.svc.Units.SetState(ctx, bobUnit, "suspended"); err != nil {
			t.Fatal(err)
		}
		us, err = bob.Login(ctx, []byte("654321"), client.LoginOptions{Task: r2ps.TaskUnsuspend})
		if err != nil {
			t.Fatalf("unsuspend session after the operator's suspension: %v", err)
		}
		err = us.UnsuspendUnit(ctx)
		wantCode(t, "the holder lifting the operator's suspension", err, r2ps.CodeAccessDenied)
		if err := w.svc.Units.SetState(ctx, bobUnit, "active"); err != nil {
			t.Fatal(err)
		}
		bs, err = bob.Login(ctx, []byte("654321"), client.LoginOptions{})
		if err != nil {
			t.Fatalf("login after the operator resumed: %v", err)
		}

		if err := as.RevokeUnit(ctx, aliceUnit, "phone lost"); err != nil {
			t.Fatal(err)
		}
		_, err = as.UnitInfo(ctx)
		wantCode(t, "the revoking session", err, r2ps.CodeUnauthorized)
		_, err = alice.Login(ctx, []byte("123456"), client.LoginOptions{})
		wantCode(t, "login of a revoked unit", err, r2ps.CodeAccessDenied)
		if err := w.svc.Units.SetState(ctx, aliceUnit, "active"); err == nil {
			t.Fatal("a revoked unit was resumed")
		}
		if _, err := bs.UnitInfo(ctx); err != nil {
			t.Fatalf("bob after alice's revocation: %v", err)
		}
	})
}
