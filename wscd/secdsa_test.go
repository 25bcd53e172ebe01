package wscd_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	"filippo.io/nistec"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/device/pkcs11"
	"github.com/wsca/wsca/device/soft"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/internal/wycheproof"
	"github.com/wsca/wsca/secdsa"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// wallet is the phone side of a unit: its device key (the unit's client
// signing key, U) and its PIN binder.
type wallet struct {
	unit   string
	dev    *secdsa.SoftwareDeviceKey
	binder *secdsa.SoftwarePINBinder
	ic     *secdsa.InternalCert
	sn     uint64
}

func newWallet(t testing.TB, unit string) *wallet {
	t.Helper()
	dev, err := secdsa.NewSoftwareDeviceKey()
	if err != nil {
		t.Fatal(err)
	}
	k := make([]byte, 32)
	rand.Read(k)
	b, err := secdsa.NewSoftwarePINBinder(k)
	if err != nil {
		t.Fatal(err)
	}
	return &wallet{unit: unit, dev: dev, binder: b}
}

func newSECDSA(t testing.TB, f fixture, st wscd.SECDSAStore, max int) *wscd.SECDSA {
	t.Helper()
	s, err := wscd.NewSECDSA(context.Background(), wscd.SECDSAConfig{Device: f.dev, ServerKeys: f.svc.ServerKeys, Store: st, MaxFailures: max})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// activate runs Protocol 4 for w with pin and returns the certificate.
func activate(t testing.TB, s *wscd.SECDSA, w *wallet, pin string) *secdsa.InternalCert {
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
	resp, err := s.Activate(ctx, w.unit, w.dev.Public(), req.Marshal())
	if err != nil {
		t.Fatal(err)
	}
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
	return ic
}

// instruct makes the wallet's next instruction under pin.
func (w *wallet) instruct(t testing.TB, pin, ins string) *secdsa.EncSignedInstruction {
	t.Helper()
	w.sn++
	x, err := secdsa.GenESInstruction(rand.Reader, w.ic, w.binder, w.dev, []byte(pin), w.sn, []byte(ins), []byte("Authorize 1.000 Euro to NL02INGB0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// privateOps counts the device's private-key operations in a call delta:
// derives and signatures.
func privateOps(d map[string]uint64) (derive, sign uint64) {
	return d[pkcs11.CallDeriveKey] + d[soft.CallECDH], d[pkcs11.CallSign] + d[soft.CallSign]
}

// TestSECDSAFlow: activation with at most two derives (token storage),
// an instruction authenticated with exactly one derive and no signature
// on the device, its record verified with no secret, a wrong PIN counted
// and a success clearing the count, a PIN change that replaces aU; on
// every device × store.
func TestSECDSAFlow(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		s := newSECDSA(t, f, f.st, 5)
		w := newWallet(t, newUnit(t, f, "secdsa"))
		before := f.dev.Calls()
		ic := activate(t, s, w, "1234")
		if dv, sg := privateOps(device.CallsDelta(before, f.dev.Calls())); f.dev.Info().Storage != device.StorageWrapped && dv != 2 || sg != 0 {
			t.Fatalf("activation: %d derives, %d signatures on the device", dv, sg)
		}
		if _, err := s.Activate(ctx, w.unit, w.dev.Public(), nil); !errors.Is(err, wscd.ErrSECDSAActivated) {
			t.Fatalf("second activation = %v", err)
		}
		for range 2 { // the second one from a warm cache in wrapped storage
			x := w.instruct(t, "1234", `{"op":"test"}`)
			before = f.dev.Calls()
			a, err := s.Authenticate(ctx, w.unit, w.dev.Public(), x.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			tr, err := s.Record(a, []byte(`{"ok":true}`))
			if err != nil {
				t.Fatal(err)
			}
			delta := device.CallsDelta(before, f.dev.Calls())
			if dv, sg := privateOps(delta); dv != 1 || sg != 0 {
				t.Fatalf("instruction and record: %d derives, %d signatures on the device (%v)", dv, sg, delta)
			}
			if f.dev.Info().Storage != device.StorageWrapped && len(delta) > 3 {
				t.Fatalf("instruction made calls %v", delta)
			}
			parsed, err := secdsa.ParseTRecord(tr.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			if err := secdsa.VerifyTRecord(ic, s.ProviderKey(), parsed); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Authenticate(ctx, w.unit, w.dev.Public(), w.instruct(t, "9999", "x").Marshal()); !errors.Is(err, wscd.ErrSECDSAAuth) {
			t.Fatalf("wrong PIN = %v", err)
		}
		if b, _ := f.st.GetSECDSA(ctx, w.unit); b.Failures != 1 {
			t.Fatalf("after a wrong PIN: %+v", b)
		}
		if _, err := s.Authenticate(ctx, w.unit, w.dev.Public(), w.instruct(t, "1234", "x").Marshal()); err != nil {
			t.Fatal(err)
		}
		if b, _ := f.st.GetSECDSA(ctx, w.unit); b.Failures != 0 {
			t.Fatalf("after a success: %+v", b)
		}
		// PIN change: authenticated under the old PIN, activation under
		// the new one; the old aU is destroyed.
		old, _ := f.st.GetSECDSA(ctx, w.unit)
		a, err := s.Authenticate(ctx, w.unit, w.dev.Public(), w.instruct(t, "1234", `{"op":"pin_change"}`).Marshal())
		if err != nil {
			t.Fatal(err)
		}
		nonce, err := s.Nonce(ctx, w.unit)
		if err != nil {
			t.Fatal(err)
		}
		req, state, err := secdsa.BeginActivation(rand.Reader, w.binder, w.dev, []byte("5678"), []byte(w.unit), nonce)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := s.PINChange(ctx, a, w.dev.Public(), req.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		yp, _ := state.Finish(resp)
		if w.ic, err = s.Finish(ctx, w.unit, w.dev.Public(), yp); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, w.unit, w.dev.Public(), w.instruct(t, "5678", "x").Marshal()); err != nil {
			t.Fatalf("new PIN: %v", err)
		}
		if _, err := s.Authenticate(ctx, w.unit, w.dev.Public(), w.instruct(t, "1234", "x").Marshal()); !errors.Is(err, wscd.ErrSECDSAAuth) {
			t.Fatalf("old PIN after the change = %v", err)
		}
		if f.dev.Info().Storage != device.StorageWrapped {
			k, _ := device.ParseKID(old.KID)
			if _, err := f.dev.PublicKey(ctx, device.Ref{Owner: device.Owner(w.unit), KID: k}); !errors.Is(err, device.ErrKeyNotFound) {
				t.Fatalf("old aU after the PIN change: %v", err)
			}
		}
	})
}

// fabricate builds an instruction with a nonce point R = k·G whose k the
// attacker knows (a stolen phone: device key usable, PIN unknown): R' =
// k·G' is right, so the challenge answers and the ciphertext opens, but
// no SECDSA signature under Y exists for it.
func fabricate(t testing.TB, w *wallet, sn uint64) *secdsa.EncSignedInstruction {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	k[0] &= 0x7f
	mul := func(p []byte, s []byte) *nistec.P256Point {
		q, err := nistec.NewP256Point().SetBytes(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := q.ScalarMult(q, s); err != nil {
			t.Fatal(err)
		}
		return q
	}
	g := nistec.NewP256Point().SetGenerator().Bytes()
	r := mul(g, k)
	rp := mul(w.ic.GPrime, k)
	seed := make([]byte, 32)
	rand.Read(seed)
	n := elliptic256N()
	var d [2][]byte
	for i := range d {
		b, _ := hkdf.Key(sha256.New, seed, nil, "wsca-secdsa-v1 challenge scalar\x00"+string(rune('1'+i)), 48)
		v := new(big.Int).Mod(new(big.Int).SetBytes(b), new(big.Int).Sub(n, big.NewInt(1)))
		d[i] = v.Add(v, big.NewInt(1)).FillBytes(make([]byte, 32))
	}
	add := func(a, b *nistec.P256Point) *nistec.P256Point { return nistec.NewP256Point().Add(a, b) }
	e := add(mul(g, d[0]), mul(r.Bytes(), d[1]))
	z := add(mul(w.ic.GPrime, d[0]), mul(rp.Bytes(), d[1]))
	h1 := sha256.Sum256(append(append([]byte("wsca-secdsa-v1 challenge H1\x00"), d[0]...), d[1]...))
	h2 := sha256.Sum256(h1[:])
	x := &secdsa.EncSignedInstruction{AccountID: []byte(w.unit), SN: sn, R: r.Bytes(), RPrime: rp.Bytes(), E: e.Bytes(), H2: h2[:], IV: make([]byte, 12)}
	c := sha256.Sum256(frame("wsca-secdsa-v1 challenge", x.AccountID, u64(sn), x.E, x.R, x.RPrime, x.H2))
	var err error
	if x.SigChal, err = w.dev.SignDigest(c[:]); err != nil {
		t.Fatal(err)
	}
	zx, _ := z.BytesX()
	key, _ := hkdf.Key(sha256.New, zx, nil, "wsca-secdsa-v1 instruction key", 32)
	blk, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(blk)
	pt := frame("wsca-secdsa-v1 plaintext", seed, []byte("sign"), nil, w.ic.GPrime, w.ic.YPrime, make([]byte, 64))
	x.Ciphertext = aead.Seal(nil, x.IV, pt, c[:])
	return x
}

func elliptic256N() *big.Int {
	n, _ := new(big.Int).SetString("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", 16)
	return n
}

func frame(label string, fields ...[]byte) []byte {
	b := append([]byte(label), 0)
	for _, f := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// TestSECDSARefusals: one instruction field forged per row, each with its
// effect on the counter and on the device: perimeter refusals count
// nothing and reach no device; failures after the one derive count.
func TestSECDSARefusals(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		s := newSECDSA(t, f, f.st, 5)
		w := newWallet(t, newUnit(t, f, "refuse"))
		activate(t, s, w, "1234")
		good := w.instruct(t, "1234", "ok")
		if _, err := s.Authenticate(ctx, w.unit, w.dev.Public(), good.Marshal()); err != nil {
			t.Fatal(err)
		}
		other := newWallet(t, "other")
		cases := []struct {
			name    string
			x       func() []byte
			csk     *ecdsa.PublicKey
			want    error
			counted bool
		}{
			{"replayed SN", func() []byte { return good.Marshal() }, nil, secdsa.ErrReplay, false},
			{"lower SN", func() []byte { c := *w.instruct(t, "1234", "ok"); c.SN = 1; return c.Marshal() }, nil, secdsa.ErrReplay, false},
			{"SN above 2^63-1", func() []byte { c := *w.instruct(t, "1234", "ok"); c.SN = store.MaxSN + 1; return c.Marshal() }, nil, secdsa.ErrMalformed, false},
			{"forged challenge signature", func() []byte {
				c := *w.instruct(t, "1234", "ok")
				c.SigChal = append([]byte(nil), c.SigChal...)
				c.SigChal[5] ^= 1
				return c.Marshal()
			}, nil, secdsa.ErrChallengeSignature, false},
			{"challenge hash changed", func() []byte {
				c := *w.instruct(t, "1234", "ok")
				c.H2 = make([]byte, 32)
				return c.Marshal()
			}, nil, secdsa.ErrChallengeSignature, false},
			{"another account", func() []byte { c := *w.instruct(t, "1234", "ok"); c.AccountID = []byte("other"); return c.Marshal() }, nil, secdsa.ErrAccount, false},
			{"U is not the CSK", func() []byte { return w.instruct(t, "1234", "ok").Marshal() }, other.dev.Public(), secdsa.ErrAccount, false},
			{"truncated", func() []byte { b := w.instruct(t, "1234", "ok").Marshal(); return b[:len(b)-1] }, nil, secdsa.ErrMalformed, false},
			{"wrong PIN", func() []byte { return w.instruct(t, "0000", "ok").Marshal() }, nil, secdsa.ErrAuthentication, true},
			{"ciphertext changed", func() []byte {
				c := *w.instruct(t, "1234", "ok")
				c.Ciphertext = append([]byte(nil), c.Ciphertext...)
				c.Ciphertext[0] ^= 1
				return c.Marshal()
			}, nil, secdsa.ErrAuthentication, true},
			{"fabricated R with a known nonce", func() []byte { w.sn++; return fabricate(t, w, w.sn).Marshal() }, nil, secdsa.ErrAuthentication, true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				x := tc.x()
				csk := tc.csk
				if csk == nil {
					csk = w.dev.Public()
				}
				b0, _ := f.st.GetSECDSA(ctx, w.unit)
				before := f.dev.Calls()
				_, err := s.Authenticate(ctx, w.unit, csk, x)
				if !errors.Is(err, tc.want) {
					t.Fatalf("Authenticate = %v, want %v", err, tc.want)
				}
				dv, sg := privateOps(device.CallsDelta(before, f.dev.Calls()))
				b1, _ := f.st.GetSECDSA(ctx, w.unit)
				if tc.counted {
					if dv != 1 || sg != 0 || b1.Failures != b0.Failures+1 || !errors.Is(err, wscd.ErrSECDSAAuth) {
						t.Fatalf("counted failure: %d derives, %d signatures, failures %d → %d", dv, sg, b0.Failures, b1.Failures)
					}
				} else if dv != 0 || sg != 0 || b1.Failures != b0.Failures || b1.LastSN != b0.LastSN || !errors.Is(err, wscd.ErrSECDSARefused) {
					t.Fatalf("perimeter refusal: %d derives, failures %d → %d, last SN %d → %d", dv, b0.Failures, b1.Failures, b0.LastSN, b1.LastSN)
				}
				if tc.counted && b1.LastSN <= b0.LastSN {
					t.Fatalf("SN not consumed: %d → %d", b0.LastSN, b1.LastSN)
				}
				// Clear the count for the next row.
				w.sn = max(w.sn, b1.LastSN)
				if _, err := s.Authenticate(ctx, w.unit, w.dev.Public(), w.instruct(t, "1234", "ok").Marshal()); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
}

// TestSECDSALock: the binding locks at the limit; then nothing reaches the
// device, also for another instance started later; suspended and revoked
// units are refused before anything; an operator's Reset lets the wallet
// activate again.
func TestSECDSALock(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		const max = 3
		s := newSECDSA(t, f, f.st, max)
		w := newWallet(t, newUnit(t, f, "lock"))
		activate(t, s, w, "1234")
		for range max {
			if _, err := s.Authenticate(ctx, w.unit, w.dev.Public(), w.instruct(t, "0000", "x").Marshal()); !errors.Is(err, wscd.ErrSECDSAAuth) {
				t.Fatal(err)
			}
		}
		restarted := newSECDSA(t, f, f.st, max)
		for _, svc := range []*wscd.SECDSA{s, restarted} {
			before := f.dev.Calls()
			if _, err := svc.Authenticate(ctx, w.unit, w.dev.Public(), w.instruct(t, "1234", "x").Marshal()); !errors.Is(err, wscd.ErrSECDSALocked) {
				t.Fatalf("locked unit, right PIN = %v", err)
			}
			if dv, _ := privateOps(device.CallsDelta(before, f.dev.Calls())); dv != 0 {
				t.Fatal("a locked unit reached the device")
			}
		}
		if err := restarted.Reset(ctx, w.unit); err != nil {
			t.Fatal(err)
		}
		activate(t, restarted, w, "1234")
		if _, err := s.Authenticate(ctx, w.unit, w.dev.Public(), w.instruct(t, "1234", "x").Marshal()); err != nil {
			t.Fatalf("after reset and re-activation: %v", err)
		}
		for _, st := range []store.UnitState{store.UnitSuspended, store.UnitRevoked} {
			if st == store.UnitRevoked {
				if err := f.st.SetUnitState(ctx, w.unit, store.UnitActive, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.st.SetUnitState(ctx, w.unit, st, time.Now()); err != nil {
				t.Fatal(err)
			}
			before := f.dev.Calls()
			for name, call := range map[string]func() error{
				"instruction": func() error {
					_, err := s.Authenticate(ctx, w.unit, w.dev.Public(), w.instruct(t, "1234", "x").Marshal())
					return err
				},
				"nonce":    func() error { _, err := s.Nonce(ctx, w.unit); return err },
				"activate": func() error { _, err := s.Activate(ctx, w.unit, w.dev.Public(), nil); return err },
				"finish":   func() error { _, err := s.Finish(ctx, w.unit, w.dev.Public(), w.ic.YPrime); return err },
			} {
				if err := call(); !errors.Is(err, wscd.ErrUnitNotActive) {
					t.Fatalf("%s of a %s unit = %v", name, st, err)
				}
			}
			if len(device.CallsDelta(before, f.dev.Calls())) != 0 {
				t.Fatalf("a %s unit reached the device", st)
			}
		}
	})
}

// TestSECDSAStoreTampering: a binding whose certificate or aU was changed
// in the store (a database writer) is refused before the device.
func TestSECDSAStoreTampering(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		s := newSECDSA(t, f, f.st, 5)
		w := newWallet(t, newUnit(t, f, "tamper"))
		v := newWallet(t, newUnit(t, f, "tamper"))
		activate(t, s, w, "1234")
		activate(t, s, v, "1234")
		bw, _ := f.st.GetSECDSA(ctx, w.unit)
		bv, _ := f.st.GetSECDSA(ctx, v.unit)
		// w's row gets v's certificate and aU, with w's MAC.
		bw.Cert, bw.KID, bw.Wrapped = bv.Cert, bv.KID, bv.Wrapped
		if _, _, err := f.st.PutSECDSA(ctx, bw); err != nil {
			t.Fatal(err)
		}
		before := f.dev.Calls()
		if _, err := s.Authenticate(ctx, w.unit, v.dev.Public(), v.instruct(t, "1234", "x").Marshal()); !errors.Is(err, wscd.ErrSECDSANotActivated) {
			t.Fatalf("tampered binding = %v", err)
		}
		if len(device.CallsDelta(before, f.dev.Calls())) != 0 {
			t.Fatal("a tampered binding reached the device")
		}
	})
}

// TestSECDSAInvalidPoints: Wycheproof's invalid points in every point of
// an instruction, of an activation request and of Y' are refused before
// the device and count nothing.
func TestSECDSAInvalidPoints(t *testing.T) {
	forEach(t, func(t *testing.T, f fixture) {
		if f.dev.Info().Backend != soft.Backend {
			t.Skip("device-independent: run on the soft keystore")
		}
		ctx := context.Background()
		s := newSECDSA(t, f, f.st, 5)
		w := newWallet(t, newUnit(t, f, "points"))
		activate(t, s, w, "1234")
		x := w.instruct(t, "1234", "x")
		nonce, _ := s.Nonce(ctx, w.unit)
		req, _, err := secdsa.BeginActivation(rand.Reader, w.binder, w.dev, []byte("1"), []byte(w.unit), nonce)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		before := f.dev.Calls()
		for _, tc := range wycheproof.ECDH(t, "ecdh_secp256r1_ecpoint_test.json") {
			if tc.Result != wycheproof.Invalid || len(tc.Public) != 65 {
				continue
			}
			n++
			pt := []byte(tc.Public)
			for name, call := range map[string]func() error{
				"R": func() error {
					c := *x
					c.R = pt
					_, err := s.Authenticate(ctx, w.unit, w.dev.Public(), c.Marshal())
					return err
				},
				"R'": func() error {
					c := *x
					c.RPrime = pt
					_, err := s.Authenticate(ctx, w.unit, w.dev.Public(), c.Marshal())
					return err
				},
				"E": func() error {
					c := *x
					c.E = pt
					_, err := s.Authenticate(ctx, w.unit, w.dev.Public(), c.Marshal())
					return err
				},
				"U": func() error {
					r := *req
					r.U = pt
					_, err := s.PINChange(ctx, &wscd.Authenticated{Unit: w.unit}, w.dev.Public(), r.Marshal())
					return err
				},
				"Ybl": func() error {
					r := *req
					r.YBlind = pt
					_, err := s.PINChange(ctx, &wscd.Authenticated{Unit: w.unit}, w.dev.Public(), r.Marshal())
					return err
				},
				"Y'": func() error { _, err := s.Finish(ctx, w.unit, w.dev.Public(), pt); return err },
			} {
				if err := call(); !errors.Is(err, wscd.ErrSECDSARefused) {
					t.Fatalf("tc %d in %s = %v", tc.TcID, name, err)
				}
			}
		}
		if n == 0 {
			t.Fatal("no invalid points")
		}
		if len(device.CallsDelta(before, f.dev.Calls())) != 0 {
			t.Fatal("an invalid point reached the device")
		}
		if b, _ := f.st.GetSECDSA(ctx, w.unit); b.Failures != 0 || b.LastSN != 0 {
			t.Fatalf("invalid points counted: %+v", b)
		}
	})
}

// TestSECDSAConcurrentInstances: wrong PINs sent at once to two
// instances over one PostgreSQL are counted exactly (every counted
// failure is one refused instruction, the lock at the limit), and no
// more than the limit reach the device.
func TestSECDSAConcurrentInstances(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	dev := testdevice.Soft(t)
	var fs [2]fixture
	for i := range fs {
		st, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		svc, err := wscd.New(wscd.Config{Device: dev, Store: st})
		if err != nil {
			t.Fatal(err)
		}
		fs[i] = fixture{svc: svc, st: st, dev: dev}
	}
	const n, max = 40, 5
	a, b := newSECDSA(t, fs[0], fs[0].st, max), newSECDSA(t, fs[1], fs[1].st, max)
	w := newWallet(t, newUnit(t, fs[0], "conc"))
	activate(t, a, w, "1234")
	xs := make([][]byte, n)
	for i := range xs {
		xs[i] = w.instruct(t, "0000", "x").Marshal()
	}
	before := dev.Calls()
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for i, x := range xs {
		wg.Go(func() {
			svc := a
			if i%2 == 1 {
				svc = b
			}
			_, err := svc.Authenticate(ctx, w.unit, w.dev.Public(), x)
			k := "other"
			switch {
			case errors.Is(err, wscd.ErrSECDSAAuth):
				k = "auth"
			case errors.Is(err, wscd.ErrSECDSALocked):
				k = "locked"
			case errors.Is(err, secdsa.ErrReplay):
				k = "replay"
			}
			mu.Lock()
			counts[k]++
			mu.Unlock()
		})
	}
	wg.Wait()
	bd, _ := fs[0].st.GetSECDSA(ctx, w.unit)
	dv, _ := privateOps(device.CallsDelta(before, dev.Calls()))
	if counts["other"] != 0 || bd.Failures != counts["auth"] || counts["auth"] > max || int(dv) != counts["auth"] ||
		counts["auth"] == max && !bd.Locked {
		t.Fatalf("outcomes %v, binding %+v, %d derives", counts, bd, dv)
	}
	t.Logf("outcomes %v, failures %d, locked %v", counts, bd.Failures, bd.Locked)
}
