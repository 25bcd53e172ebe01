package wsca_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/statuslist"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wsca"
	"github.com/wsca/wsca/wsca/statuslists"
	"github.com/wsca/wsca/wscd"
)

// hookedStatuses is a StatusAllocator that runs during an allocation,
// once the entry is taken: what another request (an operator's
// revocation, the holder's suspension) may do between the dispatcher's
// check of the unit and the attestation's signature.
type hookedStatuses struct {
	wsca.StatusAllocator
	during func(ctx context.Context, unit string)
}

func (h hookedStatuses) Allocate(ctx context.Context, unit string, kind store.StatusKind, kid string, attested ...string) (statuslist.Reference, error) {
	r, err := h.StatusAllocator.Allocate(ctx, unit, kind, kid, attested...)
	if err == nil && h.during != nil {
		h.during(ctx, unit)
	}
	return r, err
}

// attestRig is the attestation service over a fresh store of one backend
// and the soft device, with one unit holding one key.
type attestRig struct {
	st   *store.Store
	w    *wscd.Services
	pub  *statuslists.Publisher
	ak   *wsca.AttestationKey
	unit string
	kid  string
}

// newPublisher is the status list publisher of the tests: one list of
// 10 000 entries at https://wsca.example, signed by ak; mod changes the
// configuration first.
func newPublisher(t testing.TB, st *store.Store, ak *wsca.AttestationKey, mod func(*statuslists.Config)) *statuslists.Publisher {
	t.Helper()
	cfg := statuslists.Config{BaseURI: "https://wsca.example", ShardSize: 10_000, Pool: 1,
		Lifetime: 24 * time.Hour, TTL: 5 * time.Minute, Signer: ak.Signer, Chain: ak.Chain, IndexKey: make([]byte, 32)}
	if mod != nil {
		mod(&cfg)
	}
	pub, err := statuslists.New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func newAttestRig(t *testing.T, dsn string) *attestRig {
	t.Helper()
	ctx := t.Context()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w, err := wscd.New(wscd.Config{Device: testdevice.Soft(t), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ak, err := wsca.LoadAttestationKey(ctx, wsca.AttestationKeyConfig{Keys: w.ServerKeys, Store: st, DevCA: true})
	if err != nil {
		t.Fatal(err)
	}
	pub := newPublisher(t, st, ak, nil)
	if err := w.Units.Create(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	k, err := w.Keys.Generate(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	return &attestRig{st: st, w: w, pub: pub, ak: ak, unit: "alice", kid: string(k.KID)}
}

// config is the service's configuration over the rig (software assurance).
func (g *attestRig) config(t *testing.T, statuses wsca.StatusAllocator) wsca.AttestationsConfig {
	t.Helper()
	sealer, err := g.w.ServerKeys.Sealer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return wsca.AttestationsConfig{Store: g.st, Statuses: statuses, Issuer: g.ak.Issuer,
		KeyMAC: sealer, Backend: g.w.Keys.Device().Info().Backend, KeyStorage: "software", UserAuthentication: "software",
		Wallet: wsca.WalletSolution{Subject: "w", Name: "w", Link: "https://wsca.example", Version: "1"}}
}

func (g *attestRig) service(t *testing.T, statuses wsca.StatusAllocator) *wsca.Attestations {
	t.Helper()
	a, err := wsca.NewAttestations(g.config(t, statuses))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestAttestationUnitChangesDuringIssue: a unit revoked or suspended while
// its attestation's status entry is being allocated gets no attestation.
// The state change set the unit's entries before this one existed, so the
// new entry is VALID: without the check after the allocation, a revoked
// unit would hold a key attestation or WIA that its status list calls
// valid, for good (revocation never reaches that entry again).
func TestAttestationUnitChangesDuringIssue(t *testing.T) {
	for _, b := range testenv.StoreBackends() {
		t.Run(b.Name, func(t *testing.T) {
			g := newAttestRig(t, b.DSN(t))
			setState := func(st store.UnitState) func(context.Context, string) {
				return func(ctx context.Context, unit string) {
					if err := g.st.SetUnitStateBy(ctx, unit, st, store.ByOperator, time.Now()); err != nil {
						t.Fatal(err)
					}
				}
			}
			issue := map[string]func(*wsca.Attestations, context.Context) error{
				"key attestation": func(a *wsca.Attestations, ctx context.Context) error {
					_, err := a.KeyAttestation(ctx, g.unit, []string{g.kid}, "n")
					return err
				},
				"wallet attestation": func(a *wsca.Attestations, ctx context.Context) error {
					_, err := a.WalletAttestation(ctx, g.unit, g.kid)
					return err
				},
			}
			// Rows run in order, each kind after the other; setting the
			// state the unit is already in changes nothing.
			rows := []struct {
				name           string
				before, during func(context.Context, string)
				want           error
			}{
				{"unit unchanged", nil, nil, nil},
				{"unit suspended", nil, setState(store.UnitSuspended), wsca.ErrUnitState},
				// Suspended when the entry is to be allocated: the store
				// refuses it (the hook, after an allocation, never runs).
				{"unit resumed during issue", nil, setState(store.UnitActive), wsca.ErrUnitState},
				{"unit resumed", setState(store.UnitActive), nil, nil},
				{"unit revoked", nil, setState(store.UnitRevoked), wsca.ErrUnitState},
			}
			for _, r := range rows {
				if r.before != nil {
					r.before(t.Context(), g.unit)
				}
				for _, what := range []string{"key attestation", "wallet attestation"} {
					a := g.service(t, hookedStatuses{StatusAllocator: g.pub, during: r.during})
					if err := issue[what](a, t.Context()); !errors.Is(err, r.want) || (r.want == nil) != (err == nil) {
						t.Errorf("%s, %s: err = %v, want %v", r.name, what, err, r.want)
					}
				}
			}
		})
	}
}

// TestAttestationsConfigAssurance: a configured user authentication
// certified above the key storage is refused when the service is made,
// not at each attestation (every one would fail).
func TestAttestationsConfigAssurance(t *testing.T) {
	g := newAttestRig(t, testenv.SQLite(t))
	for _, c := range []struct {
		ks, ua device.Assurance
		ok     bool
	}{
		{device.AssuranceSoftware, device.AssuranceSoftware, true},
		{device.AssuranceHigh, device.AssuranceHigh, true},
		{device.AssuranceHigh, device.AssuranceModerate, true},
		{device.AssuranceNotCertified, device.AssuranceHigh, false},
		{device.AssuranceModerate, device.AssuranceHigh, false},
	} {
		cfg := g.config(t, g.pub)
		cfg.KeyStorage, cfg.UserAuthentication = c.ks, c.ua
		if _, err := wsca.NewAttestations(cfg); (err == nil) != c.ok {
			t.Errorf("key storage %s, user authentication %s: %v", c.ks, c.ua, err)
		}
	}
}
