package wsca_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wsca"
	"github.com/wsca/wsca/wsca/statuslists"
	"github.com/wsca/wsca/wscd"
)

// benchWSCA is the WSCA role over SoftHSM and a store: the attestation key
// (development CA), a publisher and the attestation service.
type benchWSCA struct {
	st    *store.Store
	w     *wscd.Services
	key   *wsca.AttestationKey
	pub   *statuslists.Publisher
	att   *wsca.Attestations
	dev   device.Device
	akRef wscd.ServerKey
}

func newBenchWSCA(b *testing.B, dsn string) *benchWSCA {
	b.Helper()
	ctx := b.Context()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	dev := testdevice.PKCS11(b)
	w, err := wscd.New(wscd.Config{Device: dev, Store: st})
	if err != nil {
		b.Fatal(err)
	}
	ak, err := wsca.LoadAttestationKey(ctx, wsca.AttestationKeyConfig{Keys: w.ServerKeys, Store: st, DevCA: true})
	if err != nil {
		b.Fatal(err)
	}
	akRef, err := w.ServerKeys.Key(ctx, wsca.DefaultAttestationKeyName)
	if err != nil {
		b.Fatal(err)
	}
	pub := newPublisher(b, st, ak, func(c *statuslists.Config) { c.Pool = 4 })
	sealer, err := w.ServerKeys.Sealer(ctx)
	if err != nil {
		b.Fatal(err)
	}
	att, err := wsca.NewAttestations(wsca.AttestationsConfig{Store: st, Statuses: pub, Issuer: ak.Issuer,
		KeyMAC: sealer, Backend: dev.Info().Backend, KeyStorage: dev.Info().Assurance, UserAuthentication: dev.Info().Assurance,
		Wallet: wsca.WalletSolution{Subject: "bench", Name: "bench", Link: "https://wsca.example", Version: "1"}})
	if err != nil {
		b.Fatal(err)
	}
	return &benchWSCA{st: st, w: w, key: ak, pub: pub, att: att, dev: dev, akRef: akRef}
}

// BenchmarkKeyAttestation: one key attestation of one key, issued through
// the service (ownership read, status entry allocated and recorded, JWT
// signed on SoftHSM), next to the raw device signature it contains
// (C_SignInit + C_Sign with the attestation key), alternated in one run.
// Reports attestations/s, signatures/s and the ratio of their medians.
func BenchmarkKeyAttestation(b *testing.B) {
	for _, be := range testenv.StoreBackends() {
		b.Run(be.Name, func(b *testing.B) {
			w := newBenchWSCA(b, be.DSN(b))
			ctx := b.Context()
			if err := w.w.Units.Create(ctx, "bench-unit"); err != nil {
				b.Fatal(err)
			}
			k, err := w.w.Keys.Generate(ctx, "bench-unit")
			if err != nil {
				b.Fatal(err)
			}
			digest := sha256.Sum256([]byte("floor"))
			var tKA, tSign []time.Duration
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				if _, err := w.att.KeyAttestation(ctx, "bench-unit", []string{string(k.KID)}, "nonce"); err != nil {
					b.Fatal(err)
				}
				tKA = append(tKA, time.Since(start))
				start = time.Now()
				if _, err := w.w.ServerKeys.Sign(ctx, w.akRef, digest[:]); err != nil {
					b.Fatal(err)
				}
				tSign = append(tSign, time.Since(start))
			}
			ka, sign := testenv.Median(tKA), testenv.Median(tSign)
			b.ReportMetric(float64(time.Second)/float64(ka), "attestations/s")
			b.ReportMetric(float64(time.Second)/float64(sign), "C_Sign/s")
			b.ReportMetric(float64(ka)/float64(sign), "x-C_Sign")
		})
	}
}

// BenchmarkRevokeUnit: revoking a unit with 50 keys, each with a key
// attestation, and a WIA (51 status entries), end to end: the state change
// with every status entry in one transaction, then the lists republished
// (compressed and signed as JWT and CWT on SoftHSM) so that a verifier
// sees it.
func BenchmarkRevokeUnit(b *testing.B) {
	for _, be := range testenv.StoreBackends() {
		b.Run(be.Name, func(b *testing.B) {
			w := newBenchWSCA(b, be.DSN(b))
			ctx := b.Context()
			if err := w.pub.PublishAll(ctx); err != nil {
				b.Fatal(err)
			}
			var tRevoke []time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				unit := fmt.Sprintf("revokee-%d", i)
				setupUnit(b, ctx, w, unit, 50)
				if err := w.pub.PublishAll(ctx); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				if err := w.w.Units.SetState(ctx, unit, store.UnitRevoked); err != nil {
					b.Fatal(err)
				}
				if err := w.pub.PublishAll(ctx); err != nil {
					b.Fatal(err)
				}
				tRevoke = append(tRevoke, time.Since(start))
			}
			b.ReportMetric(float64(testenv.Median(tRevoke).Microseconds()), "revoke-p50-µs")
		})
	}
}

// setupUnit makes a unit with n keys (records only: revocation does not
// touch the device), a key attestation's status entry per key and a WIA's.
func setupUnit(b *testing.B, ctx context.Context, w *benchWSCA, unit string, n int) {
	b.Helper()
	if err := w.w.Units.Create(ctx, unit); err != nil {
		b.Fatal(err)
	}
	for j := range n {
		kid := fmt.Sprintf("%032x", sha256.Sum256([]byte(fmt.Sprint(unit, j))))[:32]
		if _, err := w.pub.Allocate(ctx, unit, store.StatusKindKey, kid); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := w.pub.Allocate(ctx, unit, store.StatusKindWIA, ""); err != nil {
		b.Fatal(err)
	}
}
