package wscd_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/device/devicetest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// BenchmarkServiceSign measures the key service's Sign (the ownership check
// against the store's access record, then the device, with metrics on as
// in the server) on every device × store combination, e.g.
// BenchmarkServiceSign/pkcs11/postgres. BenchmarkServiceSign/<device>/device-only
// is the same device's Sign without the service, measured in the same run:
// the difference is what the ownership check costs. Besides the mean
// (ns/op) each reports the median (p50-ns/op), which stalls from other load
// on the machine move far less.
func BenchmarkServiceSign(b *testing.B) {
	d := digest("benchmark")
	for _, dv := range testdevice.Backends() {
		b.Run(dv.Name, func(b *testing.B) {
			ctx := context.Background()
			dev := dv.Open(b)
			owner := devicetest.NewOwner(b, "bench")
			k, err := dev.Generate(ctx, owner)
			if err != nil {
				b.Fatal(err)
			}
			ref := device.Ref{Owner: owner, KID: k.KID}
			b.Cleanup(func() { dev.Destroy(context.Background(), ref) })

			b.Run("device-only", func(b *testing.B) {
				timedLoop(b, func() error {
					_, err := dev.Sign(ctx, ref, d)
					return err
				})
			})
			for _, db := range testenv.StoreBackends() {
				b.Run(db.Name, func(b *testing.B) {
					svc, unit, kid := benchService(b, dev, db)
					timedLoop(b, func() error {
						_, err := svc.Keys.Sign(ctx, unit, kid, d)
						return err
					})
				})
			}
		})
	}
}

// benchService opens a fresh database on db, builds a service over it and
// dev, and gives it an active unit with one key; the key is destroyed
// when b ends.
func benchService(b *testing.B, dev device.Device, db testenv.StoreBackend) (*wscd.Services, string, string) {
	b.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, db.DSN(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	m, err := wscd.NewMetrics(prometheus.NewRegistry(), dev)
	if err != nil {
		b.Fatal(err)
	}
	svc, err := wscd.New(wscd.Config{Device: dev, Store: st, Metrics: m})
	if err != nil {
		b.Fatal(err)
	}
	unit := string(devicetest.NewOwner(b, "bench"))
	if err := svc.Units.Create(ctx, unit); err != nil {
		b.Fatal(err)
	}
	k, err := svc.Keys.Generate(ctx, unit)
	if err != nil {
		b.Fatal(err)
	}
	kid := string(k.KID)
	b.Cleanup(func() { svc.Keys.Destroy(context.Background(), unit, kid) })
	return svc, unit, kid
}

// timedLoop runs f in a b.Loop, timing each call, and reports the median.
func timedLoop(b *testing.B, f func() error) {
	b.Helper()
	b.ReportAllocs()
	var ts []time.Duration
	for b.Loop() {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		ts = append(ts, time.Since(start))
	}
	slices.Sort(ts)
	b.ReportMetric(float64(ts[len(ts)/2].Nanoseconds()), "p50-ns/op")
}
