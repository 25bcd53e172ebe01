package wscd_test

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/evidence/event"
	"github.com/wsca/wsca/secdsa"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// events records evidence events.
type events struct {
	mu  sync.Mutex
	got []event.Event
}

func (r *events) Record(_ context.Context, e event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, e)
}

// destroyed returns the kids of key_destroyed events with their detail.
func (r *events) destroyed() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{}
	for _, e := range r.got {
		if e.Type == event.KeyDestroyed {
			out[e.Kid] = string(e.Data)
		}
	}
	return out
}

func (r *events) has(f func(event.Event) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.got, f)
}

// pendingAU starts a second activation of w's unit (a PIN change's) and
// leaves it unfinished: the unit then has a bound and a pending aU.
// finish completes it on a service (w's certificate is then the new one).
func pendingAU(t *testing.T, s *wscd.SECDSA, w *wallet, pin string) (finish func(*wscd.SECDSA)) {
	t.Helper()
	ctx := context.Background()
	nonce, err := s.Nonce(ctx, w.unit)
	if err != nil {
		t.Fatal(err)
	}
	req, state, err := secdsa.BeginActivation(rand.Reader, w.binder, w.dev, []byte(pin), []byte(w.unit), nonce)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Activate(ctx, w.unit, w.dev.Public(), req.Marshal()); !errors.Is(err, wscd.ErrSECDSAActivated) {
		t.Fatalf("activate over a binding = %v", err)
	}
	a, err := s.Authenticate(ctx, w.unit, w.dev.Public(), w.instruct(t, "1234", `{"op":"pin_change"}`).Marshal())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.PINChange(ctx, a, w.dev.Public(), req.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return func(s *wscd.SECDSA) {
		t.Helper()
		yp, err := state.Finish(resp)
		if err != nil {
			t.Fatal(err)
		}
		ic, err := s.Finish(ctx, w.unit, w.dev.Public(), yp)
		if err != nil {
			t.Fatal(err)
		}
		if err := state.Accept(ic, s.ProviderKey()); err != nil {
			t.Fatal(err)
		}
		w.ic = ic
	}
}

// aUKeys returns the unit's bound and pending aU refs from the store.
func aUKeys(t *testing.T, st *store.Store, unit string) (bound, pending device.Ref) {
	t.Helper()
	b, p, err := st.SECDSAKeys(context.Background(), unit)
	if err != nil {
		t.Fatal(err)
	}
	ref := func(kid string, wrapped []byte) device.Ref {
		if kid == "" {
			return device.Ref{}
		}
		k, err := device.ParseKID(kid)
		if err != nil {
			t.Fatal(err)
		}
		return device.Ref{Owner: device.Owner(unit), KID: k, Wrapped: wrapped}
	}
	return ref(b.KID, b.Wrapped), ref(p.KID, p.Wrapped)
}

// wantGone checks that no aU is left of refs: no token object on the
// device (wrapped storage never made one) and no row or blob in the
// store; and that each destruction is in the evidence, saying how.
func wantGone(t *testing.T, f fixture, ev *events, unit string, refs ...device.Ref) {
	t.Helper()
	ctx := context.Background()
	if b, p := aUKeys(t, f.st, unit); b.KID != "" || p.KID != "" {
		t.Fatalf("aU rows left: %+v %+v", b, p)
	}
	how := event.DestroyedTokenObject
	if f.dev.Info().Storage == device.StorageWrapped {
		how = event.DestroyedBlobErased
	}
	got := ev.destroyed()
	for _, ref := range refs {
		if _, err := f.dev.PublicKey(ctx, device.Ref{Owner: ref.Owner, KID: ref.KID}); !errors.Is(err, device.ErrKeyNotFound) {
			t.Fatalf("aU %s on the device after its destruction: %v", ref.KID, err)
		}
		if got[string(ref.KID)] != how {
			t.Fatalf("evidence of aU %s: %q, want %q (all: %v)", ref.KID, got[string(ref.KID)], how, got)
		}
	}
}

// TestSECDSAUnitDestroy: destroying a unit destroys its SECDSA aU keys,
// bound and of an activation in progress, on every device × store, with
// their evidence; the unit's instructions are refused afterwards.
func TestSECDSAUnitDestroy(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		ev := &events{}
		f.svc.Units.SetEvidence(ev)
		s := newSECDSA(t, f, f.st, 5)
		w := newWallet(t, newUnit(t, f, "sdestroy"))
		activate(t, s, w, "1234")
		pendingAU(t, s, w, "5678")
		bound, pending := aUKeys(t, f.st, w.unit)
		if bound.KID == "" || pending.KID == "" || bound.KID == pending.KID {
			t.Fatalf("before: bound %+v, pending %+v", bound, pending)
		}
		other := newWallet(t, newUnit(t, f, "sother"))
		activate(t, s, other, "1234")
		if err := f.svc.Units.Destroy(ctx, w.unit); err != nil {
			t.Fatal(err)
		}
		wantGone(t, f, ev, w.unit, bound, pending)
		if _, err := s.Authenticate(ctx, w.unit, w.dev.Public(), w.instruct(t, "1234", "x").Marshal()); !errors.Is(err, wscd.ErrUnitNotActive) {
			t.Fatalf("instruction of a destroyed unit = %v", err)
		}
		if err := f.svc.Units.Destroy(ctx, w.unit); err != nil {
			t.Fatalf("second destroy: %v", err)
		}
		if _, err := s.Authenticate(ctx, other.unit, other.dev.Public(), other.instruct(t, "1234", "x").Marshal()); err != nil {
			t.Fatalf("another unit after the destroy: %v", err)
		}
	})
}

// TestSECDSAOperatorReset: the operator's reset of a locked unit destroys
// its aU keys (bound and pending) with their evidence and an unlock
// event; the unit then activates again and works, while an instruction
// captured before the reset stays refused as a replay (the last serial
// number is kept), and so does a new one that reuses a spent serial
// number. A unit without a binding, and a revoked one, are refused.
func TestSECDSAOperatorReset(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		ev := &events{}
		f.svc.Units.SetEvidence(ev)
		const max = 2
		s := newSECDSA(t, f, f.st, max)
		w := newWallet(t, newUnit(t, f, "sreset"))
		if err := f.svc.Units.ResetSECDSA(ctx, w.unit); !errors.Is(err, wscd.ErrSECDSANotActivated) {
			t.Fatalf("reset before any activation = %v", err)
		}
		activate(t, s, w, "1234")
		captured := w.instruct(t, "1234", `{"op":"p256_generate"}`).Marshal()
		if _, err := s.Authenticate(ctx, w.unit, w.dev.Public(), captured); err != nil {
			t.Fatal(err)
		}
		spent := w.sn
		pendingAU(t, s, w, "5678")
		for range max {
			if _, err := s.Authenticate(ctx, w.unit, w.dev.Public(), w.instruct(t, "0000", "x").Marshal()); !errors.Is(err, wscd.ErrSECDSAAuth) {
				t.Fatal(err)
			}
		}
		if _, err := s.Authenticate(ctx, w.unit, w.dev.Public(), w.instruct(t, "1234", "x").Marshal()); !errors.Is(err, wscd.ErrSECDSALocked) {
			t.Fatalf("locked: %v", err)
		}
		lastSN := w.sn
		bound, pending := aUKeys(t, f.st, w.unit)
		if err := f.svc.Units.ResetSECDSA(ctx, w.unit); err != nil {
			t.Fatal(err)
		}
		wantGone(t, f, ev, w.unit, bound, pending)
		if !ev.has(func(e event.Event) bool {
			return e.Type == event.PINUnlocked && e.Unit == w.unit && e.Context == wscd.SECDSAContext && e.Actor == string(store.ByOperator)
		}) {
			t.Fatal("no unlock event for the reset")
		}
		if err := f.svc.Units.ResetSECDSA(ctx, w.unit); !errors.Is(err, wscd.ErrSECDSANotActivated) {
			t.Fatalf("second reset = %v", err)
		}
		if _, err := s.Authenticate(ctx, w.unit, w.dev.Public(), w.instruct(t, "1234", "x").Marshal()); !errors.Is(err, wscd.ErrSECDSANotActivated) {
			t.Fatalf("instruction after the reset = %v", err)
		}

		activate(t, s, w, "4321")
		before := f.dev.Calls()
		if _, err := s.Authenticate(ctx, w.unit, w.dev.Public(), captured); !errors.Is(err, wscd.ErrSECDSARefused) || !errors.Is(err, secdsa.ErrReplay) {
			t.Fatalf("captured instruction after the reset = %v", err)
		}
		w.sn = spent - 1 // the next instruction, under the new certificate, reuses SN spent before the reset
		if _, err := s.Authenticate(ctx, w.unit, w.dev.Public(), w.instruct(t, "4321", "x").Marshal()); !errors.Is(err, secdsa.ErrReplay) {
			t.Fatalf("SN spent before the reset = %v", err)
		}
		if dv, _ := privateOps(device.CallsDelta(before, f.dev.Calls())); dv != 0 {
			t.Fatal("a replay reached the device")
		}
		w.sn = lastSN
		if _, err := s.Authenticate(ctx, w.unit, w.dev.Public(), w.instruct(t, "4321", "x").Marshal()); err != nil {
			t.Fatalf("after the reset and re-activation: %v", err)
		}
		if b, _ := f.st.GetSECDSA(ctx, w.unit); b.Failures != 0 || b.Locked {
			t.Fatalf("counters after the reset: %+v", b)
		}

		if err := f.svc.Units.SetState(ctx, w.unit, store.UnitRevoked); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.Units.ResetSECDSA(ctx, w.unit); !errors.Is(err, wscd.ErrUnitRevoked) {
			t.Fatalf("reset of a revoked unit = %v", err)
		}
	})
}
