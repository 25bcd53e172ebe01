package wscd_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"testing"
	"time"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/device/devicetest"
	"github.com/wsca/wsca/internal/proccpu"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// BenchmarkSECDSAInstruction measures SECDSA instructions through the
// service on SoftHSM (token storage), on each store (docs/benchmarks.md,
// "SECDSA server"):
//
//   - vs-derive: Authenticate + Record of one instruction alternated with
//     one raw CKM_ECDH1_DERIVE on a derive-only key of the same token
//     (the device's ECDH: C_DeriveKey, C_GetAttributeValue,
//     C_DestroyObject); the instructions are made by the wallet outside
//     the timed calls. Reports both medians and service/raw (throughput
//     ratio, target ≥ 0.5).
//   - throughput-c8: throughput at the load's concurrency: 8 units (one
//     goroutine each, instructions in SN order) against raw derives from
//     8 goroutines on the same token, half before and half after; the
//     ratio of the two rates, and this process's CPU per instruction.
//   - cpu: this process's CPU (server, SoftHSM and, on SQLite, the
//     database) per instruction, and per key-service signature (what an
//     R2PS sign_ecdsa costs after its authentication), with device
//     private-key operations per op.
func BenchmarkSECDSAInstruction(b *testing.B) {
	for _, db := range testenv.StoreBackends() {
		b.Run(db.Name, func(b *testing.B) {
			ctx := context.Background()
			dev := testdevice.PKCS11(b)
			st, err := store.Open(ctx, db.DSN(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			svc, err := wscd.New(wscd.Config{Device: dev, Store: st})
			if err != nil {
				b.Fatal(err)
			}
			f := fixture{svc: svc, st: st, dev: dev}
			s := newSECDSA(b, f, st, 5)
			unit := string(devicetest.NewOwner(b, "bench"))
			if err := svc.Units.Create(ctx, unit); err != nil {
				b.Fatal(err)
			}
			w := newWallet(b, unit)
			activate(b, s, w, "1234")
			b.Cleanup(func() { s.Reset(context.Background(), unit) })
			raw, err := dev.(device.DeriveOnlyGenerator).GenerateDeriveOnly(ctx, devicetest.NewOwner(b, "raw"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { dev.Destroy(context.Background(), raw.Ref()) })
			peer, _ := ecdh.P256().GenerateKey(rand.Reader)
			b.Run("vs-derive", func(b *testing.B) {
				var tRaw, tSvc []time.Duration
				for i := 0; b.Loop(); i++ {
					x := w.instruct(b, "1234", `{"op":"p256_generate"}`).Marshal()
					calls := []func() error{
						func() error { _, err := dev.ECDH(ctx, raw.Ref(), peer.PublicKey()); return err },
						func() error {
							a, err := s.Authenticate(ctx, unit, w.dev.Public(), x)
							if err == nil {
								_, err = s.Record(a, []byte(`{"op":"p256_generate","ok":true}`))
							}
							return err
						},
					}
					for j := range 2 {
						k := (i + j) % 2
						start := time.Now()
						if err := calls[k](); err != nil {
							b.Fatal(err)
						}
						if k == 0 {
							tRaw = append(tRaw, time.Since(start))
						} else {
							tSvc = append(tSvc, time.Since(start))
						}
					}
				}
				mRaw, mSvc := testenv.Median(tRaw), testenv.Median(tSvc)
				b.ReportMetric(float64(mRaw.Nanoseconds()), "raw-derive-p50-ns/op")
				b.ReportMetric(float64(mSvc.Nanoseconds()), "instruction-p50-ns/op")
				b.ReportMetric(float64(mRaw)/float64(mSvc), "instruction/raw")
			})

			b.Run("throughput-c8", func(b *testing.B) {
				const conc = 8
				wallets := make([]*wallet, conc)
				for i := range wallets {
					u := string(devicetest.NewOwner(b, "bench"))
					if err := svc.Units.Create(ctx, u); err != nil {
						b.Fatal(err)
					}
					wallets[i] = newWallet(b, u)
					activate(b, s, wallets[i], "1234")
					b.Cleanup(func() { s.Reset(context.Background(), u) })
				}
				per := (b.N + conc - 1) / conc
				xs := make([][][]byte, conc) // made by the wallets before the clock runs
				for i, w := range wallets {
					for range per {
						xs[i] = append(xs[i], w.instruct(b, "1234", `{"op":"p256_generate"}`).Marshal())
					}
				}
				parallel := func(f func(i int) error) time.Duration {
					start := time.Now()
					errs := make(chan error, conc)
					for i := range conc {
						go func() { errs <- f(i) }()
					}
					for range conc {
						if err := <-errs; err != nil {
							b.Fatal(err)
						}
					}
					return time.Since(start)
				}
				derives := func(n int) func(int) error {
					return func(int) error {
						for range n {
							if _, err := dev.ECDH(ctx, raw.Ref(), peer.PublicKey()); err != nil {
								return err
							}
						}
						return nil
					}
				}
				b.ResetTimer()
				tRaw := parallel(derives(per / 2))
				c0, _ := proccpu.Self()
				tSvc := parallel(func(i int) error {
					for _, x := range xs[i] {
						a, err := s.Authenticate(ctx, wallets[i].unit, wallets[i].dev.Public(), x)
						if err == nil {
							_, err = s.Record(a, []byte(`{"op":"p256_generate","ok":true}`))
						}
						if err != nil {
							return err
						}
					}
					return nil
				})
				c1, _ := proccpu.Self()
				tRaw += parallel(derives(per - per/2))
				b.StopTimer()
				n := float64(conc * per)
				rawRate, svcRate := n/tRaw.Seconds(), n/tSvc.Seconds()
				b.ReportMetric(rawRate, "raw-derives/s")
				b.ReportMetric(svcRate, "instructions/s")
				b.ReportMetric(svcRate/rawRate, "instruction/raw")
				b.ReportMetric(float64((c1-c0).Microseconds())/n, "instruction-cpu-us/op")
			})

			b.Run("cpu", func(b *testing.B) {
				k, err := svc.Keys.Generate(ctx, unit)
				if err != nil {
					b.Fatal(err)
				}
				kid, d := string(k.KID), digest("bench")
				var cpuIns, cpuSign time.Duration
				var derives, signs uint64
				var xs [][]byte
				ops := 0
				for b.Loop() {
					if len(xs) == 0 {
						// The wallet's work, outside the measured CPU.
						for range 32 {
							xs = append(xs, w.instruct(b, "1234", `{"op":"p256_generate"}`).Marshal())
						}
					}
					x := xs[0]
					xs = xs[1:]
					before := dev.Calls()
					c0, _ := proccpu.Self()
					a, err := s.Authenticate(ctx, unit, w.dev.Public(), x)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := s.Record(a, []byte(`{}`)); err != nil {
						b.Fatal(err)
					}
					c1, _ := proccpu.Self()
					mid := dev.Calls()
					if _, err := svc.Keys.Sign(ctx, unit, kid, d); err != nil {
						b.Fatal(err)
					}
					c2, _ := proccpu.Self()
					dv, _ := privateOps(device.CallsDelta(before, mid))
					_, sg := privateOps(device.CallsDelta(mid, dev.Calls()))
					cpuIns += c1 - c0
					cpuSign += c2 - c1
					derives += dv
					signs += sg
					ops++
				}
				b.ReportMetric(float64(cpuIns.Microseconds())/float64(ops), "instruction-cpu-us/op")
				b.ReportMetric(float64(cpuSign.Microseconds())/float64(ops), "sign-cpu-us/op")
				b.ReportMetric(float64(derives)/float64(ops), "instruction-hsm-ops/op")
				b.ReportMetric(float64(signs)/float64(ops), "sign-hsm-ops/op")
			})
		})
	}
}
