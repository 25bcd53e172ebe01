package store_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
)

// TestR2PSState runs the enrolment, PIN and session tables through the
// same suite on every backend.
func TestR2PSState(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, dsn string)
	}{
		{"Enrol", testEnrol},
		{"AttemptsConcurrent", testAttemptsConcurrent},
		{"AttemptsDelayAndClear", testAttemptsDelayAndClear},
		{"Sessions", testSessions},
		{"Nonces", testNonces},
		{"ServerKeysAndSecrets", testServerKeysAndSecrets},
		{"PendingRegistrations", testPendingRegistrations},
		{"Purge", testPurge},
		{"PINChangeEndsLogins", testPINChangeEndsLogins},
		{"AttemptWaits", testAttemptWaits},
		{"KeyQuotaAndContext", testKeyQuotaAndContext},
		{"JoinedReads", testJoinedReads},
		{"UseNonceForKey", testUseNonceForKey},
		{"UseNonceInSession", testUseNonceInSession},
	}
	for _, b := range testenv.StoreBackends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, b.DSN(t)) })
			}
		})
	}
}

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func enrolment(t testing.TB, unit, code string, now time.Time) store.Enrolment {
	return store.Enrolment{
		CodeHash: hash(code), UnitID: unit, Context: "hsm",
		SigningKey:   store.ClientKey{KID: "csk-" + unit + code, UnitID: unit, Usage: store.UsageSign, PublicKey: point(t), Profile: "strict", MAC: []byte("m")},
		AgreementKey: store.ClientKey{KID: "cak-" + unit + code, UnitID: unit, Usage: store.UsageAgree, PublicKey: point(t), Profile: "strict", MAC: []byte("m")},
		Record:       store.PINRecord{Record: []byte("record-" + code), CredNonce: []byte("nonce-" + code), MAC: []byte("m")},
		Now:          now,
	}
}

func testEnrol(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	mustCreateUnit(t, s, "u1")
	mustCreateUnit(t, s, "u2")
	put := func(unit, code string, p store.CodePurpose, ttl time.Duration) {
		t.Helper()
		if err := s.PutActivationCode(ctx, store.ActivationCode{CodeHash: hash(code), UnitID: unit, Purpose: p, CreatedAt: at(0), ExpiresAt: at(ttl)}); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, "code for a missing unit", s.PutActivationCode(ctx, store.ActivationCode{CodeHash: hash("x"), UnitID: "nope", Purpose: store.PurposeActivation, CreatedAt: at(0), ExpiresAt: at(time.Hour)}), store.ErrUnitNotFound)

	put("u1", "code-a", store.PurposeActivation, time.Hour)
	// Another unit cannot use u1's code, and trying does not spend it.
	_, err := s.Enrol(ctx, enrolment(t, "u2", "code-a", at(time.Minute)))
	wantErr(t, "code of another unit", err, store.ErrNotFound)
	p, err := s.Enrol(ctx, enrolment(t, "u1", "code-a", at(time.Minute)))
	if err != nil || p != store.PurposeActivation {
		t.Fatalf("Enrol = %q, %v", p, err)
	}
	if rec, err := s.GetPINRecord(ctx, "u1", "hsm"); err != nil || string(rec.Record) != "record-code-a" || string(rec.CredNonce) != "nonce-code-a" {
		t.Fatalf("record %q %v", rec, err)
	}
	if k, err := s.GetClientKey(ctx, "csk-u1code-a"); err != nil || k.UnitID != "u1" || k.Usage != store.UsageSign {
		t.Fatalf("client key %+v %v", k, err)
	}
	if k, err := s.GetUnitClientKey(ctx, "u1", store.UsageAgree); err != nil || k.KID != "cak-u1code-a" {
		t.Fatalf("agreement key %+v %v", k, err)
	}
	bad := enrolment(t, "u1", "code-a", at(time.Minute))
	bad.AgreementKey.Usage = store.UsageSign
	_, err = s.Enrol(ctx, bad)
	wantErr(t, "agreement key with the signing usage", err, store.ErrInvalid)
	// Single use.
	_, err = s.Enrol(ctx, enrolment(t, "u1", "code-a", at(time.Minute)))
	wantErr(t, "second use", err, store.ErrNotFound)

	// A new code replaces an outstanding one; an expired code is spent.
	put("u1", "code-b", store.PurposePINReset, time.Hour)
	put("u1", "code-c", store.PurposePINReset, time.Minute)
	_, err = s.Enrol(ctx, enrolment(t, "u1", "code-b", at(2*time.Minute)))
	wantErr(t, "replaced code", err, store.ErrNotFound)
	_, err = s.Enrol(ctx, enrolment(t, "u1", "code-c", at(2*time.Minute)))
	wantErr(t, "expired code", err, store.ErrNotFound)
	if n := countRows(t, s, "activation_codes"); n != 0 {
		t.Fatalf("%d codes left", n)
	}

	// A PIN reset replaces the record and the client key, clears the
	// counter and ends the unit's sessions.
	s.TakeAttempt(ctx, "u1", "hsm", 5, at(0))
	mustSession(t, s, "u1", "sess-1")
	put("u1", "code-d", store.PurposePINReset, time.Hour)
	if p, err := s.Enrol(ctx, enrolment(t, "u1", "code-d", at(time.Minute))); err != nil || p != store.PurposePINReset {
		t.Fatalf("reset = %q %v", p, err)
	}
	if a, _ := s.GetAttempts(ctx, "u1", "hsm"); a.Failures != 0 {
		t.Fatalf("attempts after reset: %+v", a)
	}
	if _, err := s.GetSession(ctx, hash("sess-1"), at(0)); err == nil {
		t.Fatal("session survived a PIN reset")
	}
	if _, err := s.GetClientKey(ctx, "csk-u1code-a"); err == nil {
		t.Fatal("old client key survived a PIN reset")
	}
	if err := s.ReplacePINRecord(ctx, "u1", "hsm", store.PINRecord{Record: []byte("changed"), CredNonce: []byte("n2"), MAC: []byte("m")}, at(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if rec, _ := s.GetPINRecord(ctx, "u1", "hsm"); string(rec.CredNonce) != "n2" {
		t.Fatalf("replaced record %q", rec)
	}
	wantErr(t, "replace missing record", s.ReplacePINRecord(ctx, "u2", "hsm", store.PINRecord{Record: []byte("x"), CredNonce: []byte("n"), MAC: []byte("m")}, at(0)), store.ErrNotFound)
}

func mustSession(t testing.TB, s *store.Store, unit, id string) {
	t.Helper()
	if err := s.CreateSession(t.Context(), store.Session{IDHash: hash(id), UnitID: unit, Context: "hsm", State: store.SessionPending,
		Secret: []byte("sealed"), UsesLeft: store.Unlimited, CreatedAt: at(0), ExpiresAt: at(5 * time.Minute),
		RecordNonce: []byte("nonce-" + unit + "-rec")}); err != nil {
		t.Fatal(err)
	}
}

// mustRecord creates unit and enrols it in "hsm" with the PIN record whose
// credential nonce mustSession's sessions were started against.
func mustRecord(t testing.TB, s *store.Store, unit string) {
	t.Helper()
	mustCreateUnit(t, s, unit)
	code := unit + "-rec"
	if err := s.PutActivationCode(t.Context(), store.ActivationCode{CodeHash: hash(code), UnitID: unit, Purpose: store.PurposeActivation, CreatedAt: at(0), ExpiresAt: at(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enrol(t.Context(), enrolment(t, unit, code, at(0))); err != nil {
		t.Fatal(err)
	}
}

// testPINChangeEndsLogins: a PIN change ends every session of the unit, and
// a login started against the old record cannot be finished afterwards,
// even if its pending session was created after the change committed.
func testPINChangeEndsLogins(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	mustRecord(t, s, "u")
	mustSession(t, s, "u", "verified")
	if err := s.VerifySession(ctx, hash("verified"), []byte("k"), at(time.Hour), at(0)); err != nil {
		t.Fatal(err)
	}
	mustSession(t, s, "u", "pending")
	if err := s.ReplacePINRecord(ctx, "u", "hsm", store.PINRecord{Record: []byte("new"), CredNonce: []byte("new-nonce"), MAC: []byte("m")}, at(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"verified", "pending"} {
		if _, err := s.GetSession(ctx, hash(id), at(time.Minute)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session %s survived a PIN change: %v", id, err)
		}
	}
	// The race: LoginStart read the old record, the change committed, then
	// its pending session was written.
	mustSession(t, s, "u", "late")
	wantErr(t, "verify a login against the old record", s.VerifySession(ctx, hash("late"), []byte("k"), at(time.Hour), at(time.Minute)), store.ErrNotFound)
}

// testAttemptWaits: the wait a failure calls for is set by the statement
// that admits it, so no attempt slips in between.
func testAttemptWaits(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	waits := []store.AttemptWait{{After: 2, Wait: time.Minute}, {After: 3, Wait: time.Hour}}
	take := func(now time.Time) (store.Attempts, bool) {
		t.Helper()
		a, ok, err := s.TakeAttempt(ctx, "u", "hsm", 5, now, waits...)
		if err != nil {
			t.Fatal(err)
		}
		return a, ok
	}
	if a, ok := take(at(0)); !ok || !a.NotBefore.IsZero() {
		t.Fatalf("first: %v %+v", ok, a)
	}
	if a, ok := take(at(0)); !ok || !a.NotBefore.Equal(at(time.Minute)) {
		t.Fatalf("second sets the 1m wait itself: %v %+v", ok, a)
	}
	if a, ok := take(at(time.Second)); ok || a.Failures != 2 {
		t.Fatalf("attempt within the wait admitted: %+v", a)
	}
	if a, ok := take(at(time.Minute)); !ok || !a.NotBefore.Equal(at(time.Minute+time.Hour)) {
		t.Fatalf("third sets the 1h wait: %v %+v", ok, a)
	}
	_, _, err := s.TakeAttempt(ctx, "u", "hsm", 5, at(0), store.AttemptWait{After: 2}, store.AttemptWait{After: 1, Wait: time.Second})
	wantErr(t, "unordered waits", err, store.ErrInvalid)
}

// testKeyQuotaAndContext: keys remember their context; a unit holds at
// most the quota.
func testKeyQuotaAndContext(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	mustCreateUnit(t, s, "u")
	for i, kid := range []string{"k1", "k2", "k3"} {
		k := newKey(t, "u", kid, at(0))
		k.Context = "signing"
		err := s.InsertKeyLimited(ctx, k, 2)
		if i < 2 && err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			wantErr(t, "third key over a quota of 2", err, store.ErrQuota)
		}
	}
	a, err := s.GetKeyAccess(ctx, "k1")
	if err != nil || a.Context != "signing" {
		t.Fatalf("access %+v %v", a, err)
	}
	if list, _ := s.ListKeys(ctx, "u"); len(list) != 2 || list[0].Context != "signing" {
		t.Fatalf("list %+v", list)
	}
}

// testAttemptsConcurrent: 20 concurrent attempts against a limit of 5 admit
// exactly 5, count exactly 5, and lock the counter.
func testAttemptsConcurrent(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	const n, max = 20, 5
	var wg sync.WaitGroup
	admitted := make(chan bool, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, ok, err := s.TakeAttempt(ctx, "u", "hsm", max, at(0))
			if err != nil {
				t.Error(err)
			}
			admitted <- ok
		}()
	}
	wg.Wait()
	close(admitted)
	got := 0
	for ok := range admitted {
		if ok {
			got++
		}
	}
	a, err := s.GetAttempts(ctx, "u", "hsm")
	if err != nil || got != max || a.Failures != max || !a.Locked {
		t.Fatalf("admitted %d, counter %+v, %v", got, a, err)
	}
	// A clear (a correct PIN of an admitted attempt, or the operator)
	// lifts the lock.
	s.ClearAttempts(ctx, "u", "hsm", at(0))
	if a, _ := s.GetAttempts(ctx, "u", "hsm"); a.Locked || a.Failures != 0 {
		t.Fatalf("after clear: %+v", a)
	}
	if _, ok, _ := s.TakeAttempt(ctx, "u", "hsm", max, at(0)); !ok {
		t.Fatal("cleared counter refuses")
	}
}

func testAttemptsDelayAndClear(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	if _, ok, _ := s.TakeAttempt(ctx, "u", "hsm", 5, at(0)); !ok {
		t.Fatal("first attempt refused")
	}
	if err := s.DelayAttempts(ctx, "u", "hsm", at(time.Minute), at(0)); err != nil {
		t.Fatal(err)
	}
	if a, ok, _ := s.TakeAttempt(ctx, "u", "hsm", 5, at(30*time.Second)); ok || a.Failures != 1 || !a.NotBefore.Equal(at(time.Minute)) {
		t.Fatalf("attempt during the delay: %v %+v", ok, a)
	}
	if a, ok, _ := s.TakeAttempt(ctx, "u", "hsm", 5, at(time.Minute)); !ok || a.Failures != 2 {
		t.Fatalf("attempt after the delay: %v %+v", ok, a)
	}
	s.ClearAttempts(ctx, "u", "hsm", at(time.Minute))
	if a, _ := s.GetAttempts(ctx, "u", "hsm"); a.Failures != 0 || !a.NotBefore.IsZero() {
		t.Fatalf("after success: %+v", a)
	}
}

func testSessions(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	mustRecord(t, s, "u")
	mustSession(t, s, "u", "s1")
	wantErr(t, "duplicate", s.CreateSession(ctx, store.Session{IDHash: hash("s1"), UnitID: "u", Context: "hsm", State: store.SessionPending,
		Secret: []byte("x"), UsesLeft: store.Unlimited, CreatedAt: at(0), ExpiresAt: at(time.Minute)}), store.ErrExists)
	wantErr(t, "use before verify", s.UseSession(ctx, hash("s1"), at(0)), store.ErrNotFound)
	if err := s.VerifySession(ctx, hash("s1"), []byte("key"), at(10*time.Minute), at(time.Minute)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "verify twice", s.VerifySession(ctx, hash("s1"), []byte("key"), at(10*time.Minute), at(time.Minute)), store.ErrNotFound)
	se, err := s.GetSession(ctx, hash("s1"), at(2*time.Minute))
	if err != nil || se.State != store.SessionVerified || string(se.Secret) != "key" || se.UnitID != "u" {
		t.Fatalf("%+v %v", se, err)
	}
	if err := s.UseSession(ctx, hash("s1"), at(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetSession(ctx, hash("s1"), at(10*time.Minute))
	wantErr(t, "expired", err, store.ErrNotFound)

	// A session bound to one use allows one.
	if err := s.CreateSession(ctx, store.Session{IDHash: hash("s2"), UnitID: "u", Context: "hsm", State: store.SessionVerified,
		Secret: []byte("x"), Task: "2fa_update", UsesLeft: 1, CreatedAt: at(0), ExpiresAt: at(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.UseSession(ctx, hash("s2"), at(0)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "second use", s.UseSession(ctx, hash("s2"), at(0)), store.ErrNotFound)
	s.DeleteUnitSessions(ctx, "u")
	if n := countRows(t, s, "sessions"); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
}

func testNonces(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	if err := s.UseNonce(ctx, hash("n1"), at(time.Minute)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "replay", s.UseNonce(ctx, hash("n1"), at(time.Minute)), store.ErrExists)
	// Concurrent replays: exactly one wins.
	var wg sync.WaitGroup
	wins := make(chan bool, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wins <- s.UseNonce(ctx, hash("n2"), at(time.Minute)) == nil
		}()
	}
	wg.Wait()
	close(wins)
	n := 0
	for w := range wins {
		if w {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d concurrent uses of one nonce succeeded", n)
	}
}

func testServerKeysAndSecrets(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	k := store.ServerKey{Purpose: "response-signing", KID: "k1", PublicKey: point(t), CreatedAt: at(0)}
	if err := s.PutServerKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "second key", s.PutServerKey(ctx, store.ServerKey{Purpose: "response-signing", KID: "k2", PublicKey: point(t), CreatedAt: at(0)}), store.ErrExists)
	if got, err := s.GetServerKey(ctx, "response-signing"); err != nil || got.KID != "k1" {
		t.Fatalf("%+v %v", got, err)
	}
	if err := s.PutServerSecret(ctx, "opaque", []byte("sealed"), at(0)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "second secret", s.PutServerSecret(ctx, "opaque", []byte("other"), at(0)), store.ErrExists)
	if v, err := s.GetServerSecret(ctx, "opaque"); err != nil || string(v) != "sealed" {
		t.Fatalf("%q %v", v, err)
	}
	_, err := s.GetServerSecret(ctx, "missing")
	wantErr(t, "missing secret", err, store.ErrNotFound)
}

func testPurge(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	mustCreateUnit(t, s, "u")
	mustSession(t, s, "u", "old")
	s.PutPendingRegistration(ctx, store.PendingRegistration{UnitID: "u", Context: "hsm", Requester: "r", CredNonce: []byte("n"), ExpiresAt: at(time.Minute)}, 4)
	s.UseNonce(ctx, hash("n"), at(time.Minute))
	s.PutActivationCode(ctx, store.ActivationCode{CodeHash: hash("c"), UnitID: "u", Purpose: store.PurposeActivation, CreatedAt: at(0), ExpiresAt: at(time.Minute)})
	s.TakeAttempt(ctx, "u", "cleared", 5, at(0))
	s.ClearAttempts(ctx, "u", "cleared", at(0))
	s.TakeAttempt(ctx, "u", "failing", 5, at(0)) // kept: one failure counted
	n, err := s.Purge(ctx, at(10*time.Minute))
	if err != nil || n != 5 {
		t.Fatalf("purged %d, %v", n, err)
	}
}

func testPendingRegistrations(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	put := func(requester, nonce string, ttl time.Duration) {
		t.Helper()
		if err := s.PutPendingRegistration(ctx, store.PendingRegistration{UnitID: "u", Context: "hsm",
			Requester: requester, CredNonce: []byte(nonce), ExpiresAt: at(ttl)}, 2); err != nil {
			t.Fatal(err)
		}
	}
	put("csk-a", "n1", time.Minute)
	put("csk-b", "n2", time.Minute)
	put("csk-a", "n3", time.Minute) // a new evaluate replaces the requester's own
	if n, err := s.TakePendingRegistration(ctx, "u", "hsm", "csk-a", at(0)); err != nil || string(n.CredNonce) != "n3" {
		t.Fatalf("take a: %q %v", n, err)
	}
	_, err := s.TakePendingRegistration(ctx, "u", "hsm", "csk-a", at(0))
	wantErr(t, "second take", err, store.ErrNotFound)
	if n, err := s.TakePendingRegistration(ctx, "u", "hsm", "csk-b", at(0)); err != nil || string(n.CredNonce) != "n2" {
		t.Fatalf("take b: %q %v", n, err)
	}
	put("csk-c", "n4", time.Minute)
	_, err = s.TakePendingRegistration(ctx, "u", "hsm", "csk-c", at(time.Minute))
	wantErr(t, "expired", err, store.ErrNotFound)

	// At most two per unit and context: a third evicts the oldest.
	put("csk-d", "n5", time.Minute)
	put("csk-e", "n6", 2*time.Minute)
	put("csk-f", "n7", 3*time.Minute)
	_, err = s.TakePendingRegistration(ctx, "u", "hsm", "csk-d", at(0))
	wantErr(t, "evicted", err, store.ErrNotFound)
	for _, r := range []string{"csk-e", "csk-f"} {
		if _, err := s.TakePendingRegistration(ctx, "u", "hsm", r, at(0)); err != nil {
			t.Fatalf("take %s: %v", r, err)
		}
	}

	// The limit holds over all the unit's contexts.
	for i, c := range []string{"c1", "c2", "c3"} {
		if err := s.PutPendingRegistration(ctx, store.PendingRegistration{UnitID: "u", Context: c,
			Requester: "csk-x", CredNonce: []byte("n"), ExpiresAt: at(time.Duration(i+1) * time.Minute)}, 2); err != nil {
			t.Fatal(err)
		}
	}
	_, err = s.TakePendingRegistration(ctx, "u", "c1", "csk-x", at(0))
	wantErr(t, "oldest context evicted", err, store.ErrNotFound)
}

// testJoinedReads: the one-statement reads of the hot path return what the
// separate reads would.
func testJoinedReads(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	mustRecord(t, s, "u")
	ck, err := s.GetClientKey(ctx, "csk-uu-rec")
	if err != nil || ck.UnitState != store.UnitActive || ck.Agreement == nil || ck.Agreement.KID != "cak-uu-rec" ||
		ck.Agreement.Usage != store.UsageAgree || len(ck.Agreement.PublicKey) != store.PublicKeySize {
		t.Fatalf("GetClientKey: %+v %v", ck, err)
	}
	if a, err := s.GetClientKey(ctx, "cak-uu-rec"); err != nil || a.Agreement != nil {
		t.Fatalf("an agreement key carries no agreement key: %+v %v", a, err)
	}
	mustSession(t, s, "u", "s")
	sa, err := s.GetSessionAuth(ctx, hash("s"), at(0))
	if err != nil || sa.UnitID != "u" || sa.UnitState != store.UnitActive || sa.SigningKey.KID != "csk-uu-rec" ||
		sa.SigningKey.Profile != "strict" || string(sa.SigningKey.MAC) != "m" {
		t.Fatalf("GetSessionAuth: %+v %v", sa, err)
	}
	_, err = s.GetSessionAuth(ctx, hash("s"), at(time.Hour))
	wantErr(t, "expired", err, store.ErrNotFound)
}

// testUseNonceForKey: the replay check and the key's access record in one
// call; the nonce is spent whether the key exists or not.
func testUseNonceForKey(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	mustCreateUnit(t, s, "u")
	k := newKey(t, "u", "0123456789abcdef0123456789abcdef", at(0))
	k.Context = "hsm"
	mustInsertKey(t, s, k)
	a, err := s.UseNonceForKey(ctx, hash("n1"), at(time.Minute), k.KID)
	if err != nil || a.UnitID != "u" || a.Context != "hsm" || a.KeyState != store.KeyActive || a.UnitState != store.UnitActive {
		t.Fatalf("first use: %+v %v", a, err)
	}
	_, err = s.UseNonceForKey(ctx, hash("n1"), at(time.Minute), k.KID)
	wantErr(t, "replay", err, store.ErrExists)
	_, err = s.UseNonceForKey(ctx, hash("n2"), at(time.Minute), "ffffffffffffffffffffffffffffffff")
	wantErr(t, "missing key", err, store.ErrNotFound)
	wantErr(t, "nonce of the missing key spent", s.UseNonce(ctx, hash("n2"), at(time.Minute)), store.ErrExists)
}

// testUseNonceInSession: a nonce is spent only in a valid session (each
// condition of validity refuses alone, spending nothing), and the read
// brings the session's task, uses and expiry, its unit's state and the
// named key's access record.
func testUseNonceInSession(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	mustRecord(t, s, "u")
	k := newKey(t, "u", "0123456789abcdef0123456789abcdef", at(0))
	k.Context = "hsm"
	mustInsertKey(t, s, k)
	mustSession(t, s, "u", "s")
	n := 0
	nonce := func() []byte { n++; return hash(fmt.Sprint("n", n)) }
	refused := func(what string, id string, now time.Time) {
		t.Helper()
		before := countRows(t, s, "nonces")
		_, err := s.UseNonceInSession(ctx, nonce(), at(time.Hour), hash(id), now, k.KID)
		wantErr(t, what, err, store.ErrNotFound)
		if after := countRows(t, s, "nonces"); after != before {
			t.Fatalf("%s: a nonce was spent", what)
		}
	}
	refused("pending session", "s", at(0))
	if err := s.VerifySession(ctx, hash("s"), []byte("k"), at(10*time.Minute), at(0)); err != nil {
		t.Fatal(err)
	}
	n1 := nonce()
	u, err := s.UseNonceInSession(ctx, n1, at(time.Hour), hash("s"), at(0), k.KID)
	if err != nil || u.Task != "" || u.UsesLeft != store.Unlimited || !u.ExpiresAt.Equal(at(10*time.Minute)) || u.UnitState != store.UnitActive ||
		!u.KeyFound || u.Key.UnitID != "u" || u.Key.Context != "hsm" || u.Key.KeyState != store.KeyActive || u.Key.UnitState != store.UnitActive {
		t.Fatalf("valid session: %+v %v", u, err)
	}
	_, err = s.UseNonceInSession(ctx, n1, at(time.Hour), hash("s"), at(0), k.KID)
	wantErr(t, "replay", err, store.ErrExists)
	if u, err := s.UseNonceInSession(ctx, nonce(), at(time.Hour), hash("s"), at(0), ""); err != nil || u.KeyFound || !reflect.DeepEqual(u.Key, store.KeyAccess{}) {
		t.Fatalf("no key named: %+v %v", u, err)
	}
	if u, err := s.UseNonceInSession(ctx, nonce(), at(time.Hour), hash("s"), at(0), "ffffffffffffffffffffffffffffffff"); err != nil || u.KeyFound {
		t.Fatalf("missing key: %+v %v", u, err)
	}
	refused("unknown session", "other", at(0))
	refused("expired session", "s", at(10*time.Minute))

	// A unit that is not active is reported, not refused (the caller
	// answers inside the envelope).
	if err := s.SetUnitState(ctx, "u", store.UnitSuspended, at(0)); err != nil {
		t.Fatal(err)
	}
	if u, err := s.UseNonceInSession(ctx, nonce(), at(time.Hour), hash("s"), at(0), k.KID); err != nil || u.UnitState != store.UnitSuspended || u.Key.UnitState != store.UnitSuspended {
		t.Fatalf("suspended unit: %+v %v", u, err)
	}
	if err := s.SetUnitState(ctx, "u", store.UnitActive, at(0)); err != nil {
		t.Fatal(err)
	}

	// Used up.
	if err := s.CreateSession(ctx, store.Session{IDHash: hash("once"), UnitID: "u", Context: "hsm", State: store.SessionVerified,
		Secret: []byte("x"), Task: "2fa_update", UsesLeft: 1, CreatedAt: at(0), ExpiresAt: at(time.Minute), RecordNonce: []byte("nonce-u-rec")}); err != nil {
		t.Fatal(err)
	}
	if u, err := s.UseNonceInSession(ctx, nonce(), at(time.Hour), hash("once"), at(0), ""); err != nil || u.Task != "2fa_update" || u.UsesLeft != 1 {
		t.Fatalf("one use left: %+v %v", u, err)
	}
	if err := s.UseSession(ctx, hash("once"), at(0)); err != nil {
		t.Fatal(err)
	}
	refused("used up", "once", at(0))

	// A session row put back after its unit's PIN record changed (a
	// database restored in part) is not valid.
	if _, err := store.RawDB(s).ExecContext(ctx, `UPDATE pin_records SET cred_nonce = $1 WHERE unit_id = 'u'`, []byte("changed")); err != nil {
		t.Fatal(err)
	}
	refused("PIN record changed", "s", at(0))
	if _, err := store.RawDB(s).ExecContext(ctx, `UPDATE pin_records SET cred_nonce = $1 WHERE unit_id = 'u'`, []byte("nonce-u-rec")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UseNonceInSession(ctx, nonce(), at(time.Hour), hash("s"), at(0), ""); err != nil {
		t.Fatalf("record restored: %v", err)
	}
	if err := s.DeleteSession(ctx, hash("s")); err != nil {
		t.Fatal(err)
	}
	refused("ended session", "s", at(0))
}
