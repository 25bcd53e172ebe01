package soft_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"slices"
	"testing"
	"time"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/device/devicetest"
	"github.com/wsca/wsca/device/soft"
)

// The benchmarks compare the soft device with Go's crypto on the same key
// in memory (raw-*), in one run: the difference is what the device adds
// (the per-call os.Stat that notices keys destroyed by another process,
// validation, the cache lookup and r‖s encoding).

// interleave runs raw and dev alternately, swapping their order every
// iteration, and reports the median time of each and the throughput ratio
// device/raw (raw median ÷ device median), which load on the machine moves
// far less than the ratio of two sub-benchmarks run one after the other.
// ns/op is the time of the pair. (Same as in the pkcs11 benchmarks.)
func interleave(b *testing.B, raw, dev func() error) {
	b.Helper()
	var tRaw, tDev []time.Duration
	for i := 0; b.Loop(); i++ {
		for j := range 2 {
			f, t := raw, &tRaw
			if (i+j)%2 == 1 {
				f, t = dev, &tDev
			}
			start := time.Now()
			if err := f(); err != nil {
				b.Fatal(err)
			}
			*t = append(*t, time.Since(start))
		}
	}
	mRaw, mDev := median(tRaw), median(tDev)
	b.ReportMetric(float64(mRaw.Nanoseconds()), "raw-p50-ns/op")
	b.ReportMetric(float64(mDev.Nanoseconds()), "device-p50-ns/op")
	b.ReportMetric(float64(mRaw)/float64(mDev), "device/raw")
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// softBenchKey imports a fresh key into a new keystore and returns the
// device, the key's ref and the same key for Go's crypto.
func softBenchKey(b *testing.B) (*soft.Device, device.Ref, *ecdsa.PrivateKey, *ecdh.PrivateKey) {
	b.Helper()
	d, _ := openSoft(b)
	dh, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	sk, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), dh.Bytes())
	if err != nil {
		b.Fatal(err)
	}
	owner := devicetest.NewOwner(b, "bench")
	k, err := d.Import(context.Background(), owner, dh)
	if err != nil {
		b.Fatal(err)
	}
	return d, device.Ref{Owner: owner, KID: k.KID}, sk, dh
}

// BenchmarkSign: ecdsa.Sign, the call Device.Sign makes, against
// Device.Sign on the same key.
func BenchmarkSign(b *testing.B) {
	d, ref, sk, _ := softBenchKey(b)
	digest := sha256.Sum256([]byte("benchmark"))

	b.Run("raw-ecdsa", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := ecdsa.Sign(rand.Reader, sk, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("device", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.Sign(ctx, ref, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("interleaved", func(b *testing.B) {
		ctx := context.Background()
		interleave(b, func() error {
			_, _, err := ecdsa.Sign(rand.Reader, sk, digest[:])
			return err
		}, func() error {
			_, err := d.Sign(ctx, ref, digest[:])
			return err
		})
	})
}

// BenchmarkECDH: crypto/ecdh against Device.ECDH on the same key and peer.
func BenchmarkECDH(b *testing.B) {
	d, ref, _, dh := softBenchKey(b)
	peer, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}

	b.Run("raw-ecdh", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := dh.ECDH(peer.PublicKey()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("device", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.ECDH(ctx, ref, peer.PublicKey()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("interleaved", func(b *testing.B) {
		ctx := context.Background()
		interleave(b, func() error {
			_, err := dh.ECDH(peer.PublicKey())
			return err
		}, func() error {
			_, err := d.ECDH(ctx, ref, peer.PublicKey())
			return err
		})
	})
}
