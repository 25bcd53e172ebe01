//go:build cgo && !nopkcs11

package pkcs11

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/device/devicetest"
	"github.com/wsca/wsca/internal/testenv"
)

// The benchmarks compare the device layer with the bare PKCS#11 calls it
// makes, in one process and one run, so that the ratio between them does not
// depend on the machine or the load: raw-* is the same key and the same C_
// calls through a second context (what a caller without our pool, cache and
// re-init logic would pay), device is the [Device] method. The issue's
// target is device ≥ 0.9× raw throughput; docs/benchmarks.md records it.

// benchFixture is a device, one of its keys, and raw sessions on the same
// token through a second context.
type benchFixture struct {
	d   *Device
	ref device.Ref
	raw *rawSessions
	// priv is the key's private object handle, valid in every raw session
	// (handles belong to the application, not to a session).
	priv p11.ObjectHandle
}

func newBenchFixture(b *testing.B) *benchFixture {
	b.Helper()
	ctx := context.Background()
	cfg := testConfig(b)
	d := openTest(b)
	owner := devicetest.NewOwner(b, "bench")
	k, err := d.Generate(ctx, owner)
	if err != nil {
		b.Fatal(err)
	}
	ref := device.Ref{Owner: owner, KID: k.KID}
	b.Cleanup(func() { d.Destroy(context.Background(), ref) })

	lib, s := rawSession(b, cfg)
	info, err := lib.GetSessionInfo(s)
	if err != nil {
		b.Fatal(err)
	}
	raw := &rawSessions{lib: lib, slot: info.SlotID, idle: []p11.SessionHandle{s}}
	b.Cleanup(raw.close)
	if err := lib.FindObjectsInit(s, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
		p11.NewAttribute(p11.CKA_ID, k.KID.Bytes()),
		p11.NewAttribute(p11.CKA_LABEL, string(owner)),
	}); err != nil {
		b.Fatal(err)
	}
	hs, _, err := lib.FindObjects(s, 2)
	lib.FindObjectsFinal(s)
	if err != nil || len(hs) != 1 {
		b.Fatalf("found %d private objects: %v", len(hs), err)
	}
	return &benchFixture{d: d, ref: ref, raw: raw, priv: hs[0]}
}

// rawSessions hands out sessions of the second context, one per goroutine,
// opening more as needed; the first is the one rawSession opened (and
// closes). The login of that session covers the others.
type rawSessions struct {
	lib    *p11.Ctx
	slot   uint
	mu     sync.Mutex
	idle   []p11.SessionHandle
	opened []p11.SessionHandle
}

func (r *rawSessions) get() (p11.SessionHandle, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.idle); n > 0 {
		s := r.idle[n-1]
		r.idle = r.idle[:n-1]
		return s, nil
	}
	s, err := r.lib.OpenSession(r.slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		return 0, err
	}
	r.opened = append(r.opened, s)
	return s, nil
}

func (r *rawSessions) put(s p11.SessionHandle) {
	r.mu.Lock()
	r.idle = append(r.idle, s)
	r.mu.Unlock()
}

func (r *rawSessions) close() {
	for _, s := range r.opened {
		r.lib.CloseSession(s)
	}
}

// rawSign is the baseline: exactly the calls Device.Sign makes once the
// handle is cached, with the mechanism built once by the caller.
func rawSign(lib *p11.Ctx, s p11.SessionHandle, mech []*p11.Mechanism, h p11.ObjectHandle, digest []byte) ([]byte, error) {
	if err := lib.SignInit(s, mech, h); err != nil {
		return nil, err
	}
	return lib.Sign(s, digest)
}

// rawDerive is the ECDH baseline: the calls Device.ECDH makes.
func rawDerive(lib *p11.Ctx, s p11.SessionHandle, mech []*p11.Mechanism, h p11.ObjectHandle, tmpl []*p11.Attribute) ([]byte, error) {
	secret, err := lib.DeriveKey(s, mech, h, tmpl)
	if err != nil {
		return nil, err
	}
	attrs, err := lib.GetAttributeValue(s, secret, []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)})
	if derr := lib.DestroyObject(s, secret); err == nil {
		err = derr
	}
	if err != nil {
		return nil, err
	}
	return attrs[0].Value, nil
}

// BenchmarkSign: one signature of a 32-byte digest, raw C_SignInit + C_Sign
// against Device.Sign on the same key, sequential and parallel.
func BenchmarkSign(b *testing.B) {
	f := newBenchFixture(b)
	digest := sha256.Sum256([]byte("benchmark"))
	mech := []*p11.Mechanism{p11.NewMechanism(p11.CKM_ECDSA, nil)}

	b.Run("raw-C_Sign", func(b *testing.B) {
		s, err := f.raw.get()
		if err != nil {
			b.Fatal(err)
		}
		defer f.raw.put(s)
		b.ReportAllocs()
		for b.Loop() {
			sig, err := rawSign(f.raw.lib, s, mech, f.priv, digest[:])
			if err != nil || len(sig) != device.SignatureSize {
				b.Fatalf("sign: %d bytes, %v", len(sig), err)
			}
		}
	})
	b.Run("device", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.d.Sign(ctx, f.ref, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("interleaved", func(b *testing.B) {
		ctx := context.Background()
		s, err := f.raw.get()
		if err != nil {
			b.Fatal(err)
		}
		defer f.raw.put(s)
		testenv.Interleave(b, func() error {
			_, err := rawSign(f.raw.lib, s, mech, f.priv, digest[:])
			return err
		}, func() error {
			_, err := f.d.Sign(ctx, f.ref, digest[:])
			return err
		})
	})
	b.Run("raw-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			s, err := f.raw.get()
			if err != nil {
				b.Error(err)
				return
			}
			defer f.raw.put(s)
			for pb.Next() {
				if _, err := rawSign(f.raw.lib, s, mech, f.priv, digest[:]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("device-parallel", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := f.d.Sign(ctx, f.ref, digest[:]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkECDH: one ECDH with a fixed peer point, raw C_DeriveKey +
// C_GetAttributeValue + C_DestroyObject against Device.ECDH.
func BenchmarkECDH(b *testing.B) {
	f := newBenchFixture(b)
	peer, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	mech := []*p11.Mechanism{p11.NewMechanism(p11.CKM_ECDH1_DERIVE,
		p11.NewECDH1DeriveParams(p11.CKD_NULL, nil, peer.PublicKey().Bytes()))}
	tmpl := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_GENERIC_SECRET),
		p11.NewAttribute(p11.CKA_TOKEN, false),
		p11.NewAttribute(p11.CKA_SENSITIVE, false),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, true),
		p11.NewAttribute(p11.CKA_VALUE_LEN, 32),
	}

	b.Run("raw-C_DeriveKey", func(b *testing.B) {
		s, err := f.raw.get()
		if err != nil {
			b.Fatal(err)
		}
		defer f.raw.put(s)
		b.ReportAllocs()
		for b.Loop() {
			z, err := rawDerive(f.raw.lib, s, mech, f.priv, tmpl)
			if err != nil || len(z) != 32 {
				b.Fatalf("derive: %d bytes, %v", len(z), err)
			}
		}
	})
	b.Run("device", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.d.ECDH(ctx, f.ref, peer.PublicKey()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("interleaved", func(b *testing.B) {
		ctx := context.Background()
		s, err := f.raw.get()
		if err != nil {
			b.Fatal(err)
		}
		defer f.raw.put(s)
		testenv.Interleave(b, func() error {
			_, err := rawDerive(f.raw.lib, s, mech, f.priv, tmpl)
			return err
		}, func() error {
			_, err := f.d.ECDH(ctx, f.ref, peer.PublicKey())
			return err
		})
	})
}

// BenchmarkGenerate: Device.Generate (C_GenerateRandom, C_GenerateKeyPair,
// C_GetAttributeValue, 2× C_SetAttributeValue: two token objects written).
// Each key is destroyed with the timer stopped, so the token does not grow
// during the run; the figure is generation alone.
func BenchmarkGenerate(b *testing.B) {
	ctx := context.Background()
	d := openTest(b)
	owner := devicetest.NewOwner(b, "bench-gen")
	b.Run("device", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			k, err := d.Generate(ctx, owner)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := d.Destroy(ctx, device.Ref{Owner: owner, KID: k.KID}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}

// BenchmarkWrappedSign (docs/wrapped-keys.md): in one run, a signature
// with a token object (token storage) against a signature with a wrapped
// key whose unwrapped session object is cached (hit), and against one
// that misses the cache every time (C_UnwrapKey, the kid check by ECDH
// with G, then the signature: two keys through a cache of one). The
// interleaved sub-benchmarks report the throughput ratio wrapped/token.
func BenchmarkWrappedSign(b *testing.B) {
	ctx := context.Background()
	tok := openTest(b)
	owner := devicetest.NewOwner(b, "bench-wrap")
	tk, err := tok.Generate(ctx, owner)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tok.Destroy(context.Background(), tk.Ref()) })
	hit := openWith(b, wrappedConfig(b, "", 0))
	wk, err := hit.Generate(ctx, owner)
	if err != nil {
		b.Fatal(err)
	}
	missCfg := wrappedConfig(b, "", 1)
	miss := openWith(b, missCfg)
	var mk [2]device.Key
	for i := range mk {
		if mk[i], err = miss.Generate(ctx, owner); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(wk.Wrapped)), "blob-bytes")
	digest := sha256.Sum256([]byte("benchmark"))
	token := func() error { _, err := tok.Sign(ctx, tk.Ref(), digest[:]); return err }
	cached := func() error { _, err := hit.Sign(ctx, wk.Ref(), digest[:]); return err }
	var i int
	missed := func() error {
		i++
		_, err := miss.Sign(ctx, mk[i%2].Ref(), digest[:])
		return err
	}
	for _, bm := range []struct {
		name string
		fn   func() error
	}{{"token", token}, {"wrapped-hit", cached}, {"wrapped-miss", missed}} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bm.fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("interleaved-hit", func(b *testing.B) { testenv.Interleave(b, token, cached) })
	unwraps := miss.Calls()[CallUnwrapKey]
	b.Run("interleaved-miss", func(b *testing.B) { testenv.Interleave(b, token, missed) })
	if miss.Calls()[CallUnwrapKey] == unwraps {
		b.Error("the miss benchmark never unwrapped")
	}
}
