//go:build cgo && !nopkcs11

package wscd_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// rewrapSECDSAAll runs a re-wrap to the end in batches and returns the
// SECDSA keys re-wrapped and the kids refused.
func rewrapSECDSAAll(t *testing.T, k *wscd.Keys, batch int) (n int, refused []string) {
	t.Helper()
	cursor := ""
	for calls := 0; ; calls++ {
		r, err := k.Rewrap(context.Background(), cursor, batch)
		if err != nil {
			t.Fatal(err)
		}
		if r.Rewrapped+r.SECDSA+r.Lost+r.Refused > batch {
			t.Fatalf("batch of %d did %+v", batch, r)
		}
		n, refused = n+r.SECDSA, append(refused, r.RefusedKIDs...)
		if r.Done {
			return n, refused
		}
		if r.Cursor <= cursor || calls > 100 {
			t.Fatalf("cursor %q after %q", r.Cursor, cursor)
		}
		cursor = r.Cursor
	}
}

// TestRewrapSECDSA, on both stores: the SECDSA aU keys of units activated
// under one wrapping key, bound and of an activation in progress, are
// re-wrapped under a new one in batches that span the phases, while
// instructions run through an instance on each label. A binding whose row
// fails its MAC is refused and left as it is. Each blob keeps its version
// byte (derive-only); afterwards the old wrapping key is unused and
// deleted, and an instance with only the new key runs every unit's
// instructions and finishes the activation in progress.
func TestRewrapSECDSA(t *testing.T) {
	for _, b := range testenv.StoreBackends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.DSN(t)
			oldLabel, newLabel := wrapLabel(t), wrapLabel(t)
			oldDev := wrappedUnder(t, oldLabel)
			ast := openStore(t, dsn)
			a := fixture{svc: servicesOn(t, oldDev, ast), st: ast, dev: oldDev}
			sa := newSECDSA(t, a, ast, 5)
			const n = 7
			var wallets []*wallet
			for i := range n {
				w := newWallet(t, newUnit(t, a, fmt.Sprintf("srw%d", i)))
				activate(t, sa, w, "1234")
				wallets = append(wallets, w)
			}
			pw := wallets[n-1]
			finish := pendingAU(t, sa, pw, "5678")
			before := map[string][]byte{}
			for _, w := range wallets {
				bd, p, err := ast.SECDSAKeys(ctx, w.unit)
				if err != nil || len(bd.Wrapped) == 0 {
					t.Fatalf("%s: %+v, %v", w.unit, bd, err)
				}
				before[bd.KID] = bd.Wrapped
				if p.KID != "" {
					before[p.KID] = p.Wrapped
				}
			}

			bst := openStore(t, dsn)
			newDev := wrappedUnder(t, newLabel)
			bf := fixture{svc: servicesOn(t, newDev, bst), st: bst, dev: newDev}
			sb := newSECDSA(t, bf, bst, 5)

			// A binding whose row was changed in the store: refused.
			tw := wallets[0]
			tb, err := ast.GetSECDSA(ctx, tw.unit)
			if err != nil {
				t.Fatal(err)
			}
			bad := tb
			bad.MAC = bytes.Repeat([]byte{7}, len(tb.MAC))
			if _, _, err := ast.PutSECDSA(ctx, bad); err != nil {
				t.Fatal(err)
			}
			if got, refused := rewrapSECDSAAll(t, bf.svc.Keys, 3); got != n || len(refused) != 1 || refused[0] != tb.KID {
				t.Fatalf("with a changed row: %d re-wrapped, refused %v; want %d and %s", got, refused, n, tb.KID)
			}
			if now, _ := ast.GetSECDSA(ctx, tw.unit); !bytes.Equal(now.Wrapped, tb.Wrapped) || !bytes.Equal(now.MAC, bad.MAC) {
				t.Fatal("a row failing its MAC was re-wrapped")
			}
			if _, _, err := ast.PutSECDSA(ctx, tb); err != nil {
				t.Fatal(err)
			}

			// The rest while instructions run on both instances (the
			// first is on the old label).
			var (
				wg   sync.WaitGroup
				stop = make(chan struct{})
				done atomic.Int64
				errs = make(chan error, 2)
			)
			for i, s := range []*wscd.SECDSA{sa, sb} {
				w := wallets[1+i]
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := s.Authenticate(ctx, w.unit, w.dev.Public(), w.instruct(t, "1234", "x").Marshal()); err != nil {
							errs <- fmt.Errorf("instruction of %s during the re-wrap: %w", w.unit, err)
							return
						}
						done.Add(1)
					}
				}()
			}
			got, refused := rewrapSECDSAAll(t, bf.svc.Keys, 2)
			close(stop)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if got != 1 || len(refused) != 0 {
				t.Fatalf("second run: %d re-wrapped, refused %v", got, refused)
			}
			if again, _ := rewrapSECDSAAll(t, bf.svc.Keys, 2); again != 0 {
				t.Fatalf("third run re-wrapped %d", again)
			}
			for _, w := range wallets {
				bd, p, _ := bst.SECDSAKeys(ctx, w.unit)
				for _, k := range []store.SECDSAUnit{bd, {KID: p.KID, Wrapped: p.Wrapped}} {
					if k.KID == "" {
						continue
					}
					old := before[k.KID]
					if bytes.Equal(k.Wrapped, old) || k.Wrapped[0] != old[0] {
						t.Fatalf("aU %s: version %d → %d, changed %v", k.KID, old[0], k.Wrapped[0], !bytes.Equal(k.Wrapped, old))
					}
				}
			}

			uses, err := bf.svc.Keys.WrappingKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if u := useOf(uses, oldLabel); !u.Unused() {
				t.Fatalf("old wrapping key after the re-wrap: %+v", u)
			}
			if u := useOf(uses, newLabel); u.Keys != n+1 {
				t.Fatalf("new wrapping key after the re-wrap: %+v, want %d keys", u, n+1)
			}
			if deleted, err := bf.svc.Keys.DeleteUnusedWrappingKeys(ctx); err != nil || len(deleted) != 1 || deleted[0].Label != oldLabel {
				t.Fatalf("deleted %+v, %v", deleted, err)
			}

			fdev := wrappedUnder(t, newLabel)
			fst := openStore(t, dsn)
			fresh := newSECDSA(t, fixture{svc: servicesOn(t, fdev, fst), st: fst, dev: fdev}, fst, 5)
			for _, w := range wallets[:n-1] {
				if _, err := fresh.Authenticate(ctx, w.unit, w.dev.Public(), w.instruct(t, "1234", "after").Marshal()); err != nil {
					t.Fatalf("%s after the old wrapping key is gone: %v", w.unit, err)
				}
			}
			finish(fresh)
			if _, err := fresh.Authenticate(ctx, pw.unit, pw.dev.Public(), pw.instruct(t, "5678", "after").Marshal()); err != nil {
				t.Fatalf("the activation in progress, finished after the old wrapping key is gone: %v", err)
			}
		})
	}
}
