package secdsakey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/wsca/wsca/ecp256"
	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
)

// TestResultChecks: what the server answers is checked before use: a
// generated key's kid is its public key's, a signature verifies under
// the key and for the digest, a stored key file's kid is its key's.
func TestResultChecks(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := k.PublicKey.Bytes()
	kid, _ := ecp256.KID(&k.PublicKey)
	otherKID, _ := ecp256.KID(&other.PublicKey)
	for _, tc := range []struct {
		name string
		res  r2ps.SECDSAResult
		ok   bool
	}{
		{"genuine", r2ps.SECDSAResult{KID: kid, PublicKey: pub}, true},
		{"another kid", r2ps.SECDSAResult{KID: otherKID, PublicKey: pub}, false},
		{"no key", r2ps.SECDSAResult{KID: kid}, false},
	} {
		if _, err := keyFromResult(tc.res); (err == nil) != tc.ok {
			t.Errorf("keyFromResult %s: %v", tc.name, err)
		}
		if _, err := fromFile(keyFile{KID: tc.res.KID, Public: tc.res.PublicKey}); (err == nil) != tc.ok || (!tc.ok && !errors.Is(err, manager.ErrCorruptBinding)) {
			t.Errorf("fromFile %s: %v", tc.name, err)
		}
	}
	d := sha256.Sum256([]byte("m"))
	sig, _ := ecdsa.SignASN1(rand.Reader, k, d[:])
	otherSig, _ := ecdsa.SignASN1(rand.Reader, other, d[:])
	e := sha256.Sum256([]byte("e"))
	for _, tc := range []struct {
		name   string
		digest []byte
		sig    []byte
		ok     bool
	}{
		{"genuine", d[:], sig, true},
		{"another key's", d[:], otherSig, false},
		{"another digest", e[:], sig, false},
		{"not DER", d[:], []byte{1, 2}, false},
	} {
		raw, err := sigFromResult(&k.PublicKey, tc.digest, r2ps.SECDSAResult{Signature: tc.sig})
		if (err == nil) != tc.ok || (tc.ok && len(raw) != 64) {
			t.Errorf("sigFromResult %s: %v", tc.name, err)
		}
	}
}

// TestInstructionError: the server's refusals as the manager reads them.
func TestInstructionError(t *testing.T) {
	for _, tc := range []struct {
		code string
		want error
	}{
		{r2ps.CodeUnauthorized, manager.ErrAuthRequired},
		{r2ps.CodeAccessDenied, ErrLocked},
	} {
		err := instructionError(&client.Error{Code: tc.code, Status: 200})
		if !errors.Is(err, tc.want) || !client.IsCode(err, tc.code) {
			t.Errorf("%s: %v", tc.code, err)
		}
	}
	if err := instructionError(&client.Error{Code: r2ps.CodeServerError, Status: 500}); errors.Is(err, manager.ErrAuthRequired) || errors.Is(err, ErrLocked) {
		t.Errorf("server error: %v", err)
	}
}

// TestSerialNumbers: strictly increasing, at least the clock in
// microseconds, above the recorded one even when the clock is behind.
func TestSerialNumbers(t *testing.T) {
	now := time.UnixMicro(1000)
	p := &Plugin{cfg: Config{Dir: t.TempDir(), Now: func() time.Time { return now }}}
	want := []uint64{1000, 1001, 1002}
	for _, w := range want {
		if sn, err := p.nextSN(); err != nil || sn != w {
			t.Fatalf("nextSN = %d, %v; want %d", sn, err, w)
		}
	}
	now = time.UnixMicro(5000)
	if sn, _ := p.nextSN(); sn != 5000 {
		t.Fatalf("after the clock moved: %d", sn)
	}
	now = time.Unix(0, 0)
	if sn, _ := p.nextSN(); sn != 5001 {
		t.Fatalf("with the clock behind: %d", sn)
	}
}
