package dispatch_test

import (
	"bytes"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wsca/wsca/evidence/event"
	"github.com/wsca/wsca/evidence/logverify"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/secdsa"
	"github.com/wsca/wsca/wscd"
)

// TestSECDSARecordInEvidenceLog: a transaction record made over R2PS is
// in the evidence log (its hash, as a secdsa_record event of its unit),
// and so is the activation (an enrolled event in the secdsa context);
// after Sync both leaves' inclusion in the signed checkpoint verifies
// with tlog, over the store's hashes. So are the wrong PINs and the lock
// that follow (pin_failure with the count, pin_locked; context secdsa).
func TestSECDSARecordInEvidenceLog(t *testing.T) {
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.Soft(t), nil)
	ctx := t.Context()
	c, unit := r.EnrolledClient(t, "123456")
	binder, _ := secdsa.NewSoftwarePINBinder(bytes.Repeat([]byte{7}, 32))
	sk := client.SECDSAKeys{Binder: binder}
	b, err := c.SECDSAActivate(ctx, sk, []byte("1234"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.SECDSAInstruction(ctx, b, sk, []byte("1234"), 1, r2ps.SECDSAOp{Op: r2ps.SECDSAOpGenerate}, []byte("Authorize 1.000 Euro to NL02INGB0123456789"))
	if err != nil {
		t.Fatal(err)
	}

	// Wrong PINs until the lock: each counted failure and the lock are
	// events of the unit in the secdsa context.
	for sn := uint64(2); ; sn++ {
		_, err := c.SECDSAInstruction(ctx, b, sk, []byte("0000"), sn, r2ps.SECDSAOp{Op: r2ps.SECDSAOpGenerate}, nil)
		if client.IsCode(err, r2ps.CodeAccessDenied) {
			break
		}
		if !client.IsCode(err, r2ps.CodeUnauthorized) || sn > 20 {
			t.Fatalf("wrong PIN %d: %v", sn, err)
		}
	}

	stored, err := r.Evidence.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := r.Evidence.VerifierKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v, err := logverify.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := logverify.OpenCheckpoint(stored.Note, v)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]int64{}
	for i := range cp.Size {
		leaf, err := r.Store.GetEvidenceLeaf(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		e, err := event.Parse(leaf)
		if err != nil || e.Unit != unit {
			continue
		}
		var what string
		switch {
		case e.Type == event.SECDSARecord && e.Context == wscd.SECDSAContext && bytes.Equal(e.Data, out.Record.Hash()):
			what = "record"
		case e.Type == event.Enrolled && e.Context == wscd.SECDSAContext:
			what = "activation"
		case e.Type == event.PINFailure && e.Context == wscd.SECDSAContext:
			what = "pin_failure " + string(e.Data)
		case e.Type == event.PINLocked && e.Context == wscd.SECDSAContext:
			what = "pin_locked"
		default:
			continue
		}
		proof, err := tlog.ProveRecord(cp.Size, i, r.Store.EvidenceHashes(ctx))
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(proof, cp.Size, tlog.Hash(cp.Root), i, tlog.RecordHash(leaf)); err != nil {
			t.Fatalf("%s at %d: %v", what, i, err)
		}
		found[what] = i
	}
	if _, ok := found["record"]; !ok {
		t.Fatalf("the transaction record is not in the log (%d entries)", cp.Size)
	}
	if _, ok := found["activation"]; !ok {
		t.Fatalf("the activation is not in the log (%d entries)", cp.Size)
	}
	max := r.SECDSA.MaxFailures()
	for n := 1; n <= max; n++ {
		if _, ok := found["pin_failure "+fmt.Sprint(n)]; !ok {
			t.Fatalf("failure %d of %d is not in the log: %v", n, max, found)
		}
	}
	if _, ok := found["pin_locked"]; !ok {
		t.Fatalf("the lock is not in the log: %v", found)
	}
}
