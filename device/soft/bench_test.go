package soft_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/device/devicetest"
	"github.com/wsca/wsca/device/soft"
	"github.com/wsca/wsca/internal/testenv"
)

// The benchmarks compare the soft device with Go's crypto on the same key
// in memory (raw-*), in one run: the difference is what the device adds
// (the per-call os.Stat that notices keys destroyed by another process,
// validation, the cache lookup and r‖s encoding).

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
		testenv.Interleave(b, func() error {
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
		testenv.Interleave(b, func() error {
			_, err := dh.ECDH(peer.PublicKey())
			return err
		}, func() error {
			_, err := d.ECDH(ctx, ref, peer.PublicKey())
			return err
		})
	})
}
