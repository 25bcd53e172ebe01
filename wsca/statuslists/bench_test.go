package statuslists

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	mathrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the bulk load
	_ "modernc.org/sqlite"             // the "sqlite" driver, for the bulk load

	"github.com/wsca/wsca/attest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/statuslist"
	"github.com/wsca/wsca/statuslist/statuslisttest"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// benchSize and benchRevoked: a 1 000 000-entry list, 1 % revoked.
const (
	benchSize    = 1_000_000
	benchRevoked = benchSize / 100
)

// revokedIndices returns benchRevoked distinct indices, fixed by a seed.
func revokedIndices() []int {
	r := mathrand.New(mathrand.NewPCG(1, 2))
	return r.Perm(benchSize)[:benchRevoked]
}

// BenchmarkEncodedSize reports the size of the compressed list and of its
// two tokens.
func BenchmarkEncodedSize(b *testing.B) {
	l, err := statuslist.New(Bits, benchSize)
	if err != nil {
		b.Fatal(err)
	}
	for _, i := range revokedIndices() {
		l.Set(i, statuslist.Invalid)
	}
	pki := statuslisttest.NewPKI(b)
	var lst, jwt, cwt []byte
	for b.Loop() {
		if lst, err = l.Encode(); err != nil {
			b.Fatal(err)
		}
	}
	tok := &statuslist.Token{Subject: "https://wsca.example/statuslists/x", IssuedAt: time.Now(), Expiry: time.Now().Add(time.Hour), TTL: time.Minute, Bits: Bits, Lst: lst}
	opts := statuslist.SignOptions{Chain: pki.Chain}
	if jwt, err = statuslist.SignJWT(tok, pki.Key, opts); err != nil {
		b.Fatal(err)
	}
	if cwt, err = statuslist.SignCWT(tok, pki.Key, opts); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(lst)), "lst-bytes")
	b.ReportMetric(float64(len(jwt)), "jwt-bytes")
	b.ReportMetric(float64(len(cwt)), "cwt-bytes")
}

// BenchmarkFlipRepublish: one entry of a 1 000 000-entry list with 1 %
// revoked is suspended or resumed through the store, and the list is
// republished (changes read from the store, one compression, a JWT and a
// CWT signed, both stored). Interleaved with the floor, one zlib
// compression of that list plus one ECDSA P-256 signature, it reports the
// median of each and x-floor = republish ÷ floor.
//
// The signer is a software key, or (softhsm) a SoftHSM key through the
// device layer, in the publisher and in the floor alike.
func BenchmarkFlipRepublish(b *testing.B) {
	for _, be := range testenv.StoreBackends() {
		for _, signer := range []string{"soft", "softhsm"} {
			b.Run(be.Name+"/"+signer, func(b *testing.B) { benchFlip(b, be.DSN(b), signer == "softhsm") })
		}
	}
}

// hsmSigner is a SoftHSM key as a crypto.Signer, with a chain for it.
func hsmSigner(b *testing.B, st *store.Store) (crypto.Signer, []*x509.Certificate) {
	b.Helper()
	w, err := wscd.New(wscd.Config{Device: testdevice.PKCS11(b), Store: st})
	if err != nil {
		b.Fatal(err)
	}
	k, err := w.ServerKeys.Key(b.Context(), "statuslist-bench")
	if err != nil {
		b.Fatal(err)
	}
	ca, err := attest.NewDevCA("bench", time.Now().Add(-time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	chain, err := ca.Issue(k.Public, "bench", time.Now().Add(-time.Hour), 24*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	return w.ServerKeys.Signer(b.Context(), k), chain
}

func benchFlip(b *testing.B, dsn string, hsm bool) {
	ctx := b.Context()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	pki := statuslisttest.NewPKI(b)
	var signer crypto.Signer = pki.Key
	chain := pki.Chain
	if hsm {
		signer, chain = hsmSigner(b, st)
	}
	cfg := Config{
		BaseURI: "https://wsca.example", ShardSize: benchSize, Pool: 1,
		Lifetime: 24 * time.Hour, TTL: 5 * time.Minute, Signer: signer, Chain: chain,
		IndexKey: make([]byte, 32),
	}
	p, err := New(st, cfg)
	if err != nil {
		b.Fatal(err)
	}
	createUnits(b, st, "flipper")
	ref, err := p.Allocate(ctx, "flipper", store.StatusKindWIA, "")
	if err != nil {
		b.Fatal(err)
	}
	listID := strings.TrimPrefix(ref.URI, "https://wsca.example/statuslists/")
	bulkRevoke(b, dsn, listID, int(ref.Index))
	if err := p.Publish(ctx, listID); err != nil { // the full build
		b.Fatal(err)
	}

	// The floor's input: the same list, packed.
	l, _ := statuslist.New(Bits, benchSize)
	for _, i := range revokedIndices() {
		l.Set(i, statuslist.Invalid)
	}
	packed := l.Bytes()
	floor := func() error {
		lst, err := statuslist.Compress(packed)
		if err != nil {
			return err
		}
		h := sha256.Sum256(lst)
		_, err = signer.Sign(rand.Reader, h[:], crypto.SHA256)
		return err
	}
	n := 0
	flip := func() error {
		s := store.StatusSuspended
		if n%2 == 1 {
			s = store.StatusValid
		}
		n++
		if _, err := st.SetUnitStatuses(ctx, "flipper", s, time.Now()); err != nil {
			return err
		}
		return p.Publish(ctx, listID)
	}
	var tFloor, tFlip []time.Duration
	for i := 0; b.Loop(); i++ {
		for j := range 2 {
			f, t := floor, &tFloor
			if (i+j)%2 == 1 {
				f, t = flip, &tFlip
			}
			start := time.Now()
			if err := f(); err != nil {
				b.Fatal(err)
			}
			*t = append(*t, time.Since(start))
		}
	}
	mFloor, mFlip := testenv.Median(tFloor), testenv.Median(tFlip)
	b.ReportMetric(float64(mFloor.Nanoseconds()), "floor-p50-ns/op")
	b.ReportMetric(float64(mFlip.Nanoseconds()), "republish-p50-ns/op")
	b.ReportMetric(float64(mFlip)/float64(mFloor), "x-floor")
}

// bulkRevoke inserts the revoked entries in one transaction, straight into
// the tables (allocating a million entries one by one would take long),
// skipping the flipper's index.
func bulkRevoke(b *testing.B, dsn, listID string, skip int) {
	b.Helper()
	ctx := context.Background()
	db := testenv.RawDB(b, dsn)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx,
		`INSERT INTO status_entries (list_id, idx, unit_id, kind, kid, status, seq, updated_at)
		 VALUES ($1, $2, $3, 'wia', NULL, 1, 1, 0)`)
	if err != nil {
		b.Fatal(err)
	}
	for n, i := range revokedIndices() {
		if i == skip {
			continue
		}
		if _, err := stmt.ExecContext(ctx, listID, i, fmt.Sprintf("bulk-%d", n)); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE status_lists SET version = 1, next_counter = $2 WHERE id = $1`, listID, benchRevoked+1); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}
