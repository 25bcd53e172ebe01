package pin_test

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bytemare/ecc"
	"github.com/bytemare/opaque"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/store"
)

// forEachDevice runs fn with every device backend, on SQLite.
func forEachDevice(t *testing.T, fn func(t *testing.T, dev pin.OPRFDevice, dsn string)) {
	for _, b := range testdevice.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			dev, ok := b.Open(t).(pin.OPRFDevice)
			if !ok {
				t.Fatalf("%s makes no derive-only keys", b.Name)
			}
			fn(t, dev, testenv.SQLite(t))
		})
	}
}

func withDevice(dev pin.OPRFDevice) func(*pin.Config) {
	return func(c *pin.Config) { c.OPRFDevice = dev }
}

func derives(d map[string]uint64) uint64 { return d["soft_ecdh"] + d["C_DeriveKey"] }

func generates(d map[string]uint64) uint64 { return d["soft_generate"] + d["C_GenerateKeyPair"] }

func wrappedStorage(dev device.Device) bool { return dev.Info().Storage == device.StorageWrapped }

// oprfRef is the device reference of a record's HSM OPRF key.
func oprfRef(t testing.TB, unit string, k store.OPRFKey) device.Ref {
	t.Helper()
	pub, err := device.PublicKeyFromBytes(k.Public)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := device.KIDOf(pub)
	if err != nil {
		t.Fatal(err)
	}
	return device.Ref{Owner: device.Owner(unit), KID: kid, Wrapped: k.Wrapped}
}

// onDevice reports whether the device still has the key (a token object;
// a blob is always usable while its wrapping key lives).
func onDevice(t testing.TB, dev device.Device, ref device.Ref) bool {
	t.Helper()
	keys, err := dev.List(context.Background(), ref.Owner)
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(keys, func(k device.Key) bool { return k.KID == ref.KID })
}

// TestHSMOPRFLifecycle: with an OPRF device, registration gives the
// record a derive-only device key; a login costs two derives; a PIN
// change moves the record to a new key and destroys the old one, as a
// requester's repeated evaluate destroys the key of its first; the new
// PIN works and the old does not.
func TestHSMOPRFLifecycle(t *testing.T) {
	forEachDevice(t, func(t *testing.T, dev pin.OPRFDevice, dsn string) {
		ctx := context.Background()
		e := newEnv(t, dsn, withDevice(dev))
		e.register(t, e.srv, "u1", "123456")
		rec, err := e.st.GetPINRecord(ctx, "u1", hsm)
		if err != nil {
			t.Fatal(err)
		}
		if rec.OPRF.IsZero() || len(rec.OPRF.Public) != 33 || len(rec.OPRF.MAC) == 0 || wrappedStorage(dev) != (len(rec.OPRF.Wrapped) > 0) {
			t.Fatalf("record's OPRF key: %+v", rec.OPRF)
		}
		ref1 := oprfRef(t, "u1", rec.OPRF)
		if !wrappedStorage(dev) && !onDevice(t, dev, ref1) {
			t.Fatal("the record's OPRF key is not on the device")
		}
		if _, err := dev.Sign(ctx, ref1, make([]byte, 32)); !errors.Is(err, device.ErrKeyUsage) {
			t.Fatalf("Sign with the OPRF key: %v, want ErrKeyUsage", err)
		}

		if _, err := e.login(t, e.srv, "u1", "123456", unlimited); err != nil {
			t.Fatalf("login: %v", err)
		}
		before := dev.Calls()
		if _, err := e.login(t, e.srv, "u1", "123456", unlimited); err != nil {
			t.Fatalf("login: %v", err)
		}
		if d := device.CallsDelta(before, dev.Calls()); derives(d) != 2 || generates(d) != 0 {
			t.Fatalf("device calls of a login: %v, want two derives", d)
		}
		_, err = e.login(t, e.srv, "u1", "654321", unlimited)
		wantErr(t, "wrong PIN", err, pin.ErrWrongPIN)

		// A requester's second evaluate destroys its first key.
		c, _ := e.conf.Client()
		req, _ := c.RegistrationInit([]byte("111111"))
		if _, err := e.srv.RegistrationResponse(ctx, "u1", hsm, "change", req.Serialize()); err != nil {
			t.Fatal(err)
		}
		ks, err := e.st.OPRFKeys(ctx, "u1")
		if err != nil || len(ks) != 2 {
			t.Fatalf("OPRF keys after an evaluate: %d, %v", len(ks), err)
		}
		first := ks[1]
		if bytes.Equal(first.Public, rec.OPRF.Public) {
			first = ks[0]
		}
		refFirst := oprfRef(t, "u1", first)

		// The PIN change.
		c, _ = e.conf.Client()
		req, _ = c.RegistrationInit([]byte("222222"))
		raw, err := e.srv.RegistrationResponse(ctx, "u1", hsm, "change", req.Serialize())
		if err != nil {
			t.Fatal(err)
		}
		if !wrappedStorage(dev) && onDevice(t, dev, refFirst) {
			t.Fatal("the replaced evaluate's key is still on the device")
		}
		resp, _ := c.Deserialize.RegistrationResponse(raw)
		upload, _, err := c.RegistrationFinalize(resp, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		newRec, err := e.srv.FinishRegistration(ctx, "u1", hsm, "change", upload.Serialize())
		if err != nil {
			t.Fatal(err)
		}
		if err := e.st.ReplacePINRecord(ctx, "u1", hsm, newRec, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if n := e.srv.DestroyRetiredOPRFKeys(ctx, "u1"); n != 1 {
			t.Fatalf("destroyed %d retired keys, want 1", n)
		}
		if !wrappedStorage(dev) && onDevice(t, dev, ref1) {
			t.Fatal("the old record's key is still on the device")
		}
		if ks, err := e.st.OPRFKeys(ctx, "u1"); err != nil || len(ks) != 1 || !bytes.Equal(ks[0].Public, newRec.OPRF.Public) {
			t.Fatalf("OPRF keys after the change: %v, %v", ks, err)
		}
		if _, err := e.login(t, e.srv, "u1", "222222", unlimited); err != nil {
			t.Fatalf("login with the new PIN: %v", err)
		}
		_, err = e.login(t, e.srv, "u1", "123456", unlimited)
		wantErr(t, "old PIN", err, pin.ErrWrongPIN)
	})
}

// TestHSMOPRFRetiredMAC: a retired key whose MAC fails (a database writer
// pointing the row at another key of the unit) is not destroyed.
func TestHSMOPRFRetiredMAC(t *testing.T) {
	forEachDevice(t, func(t *testing.T, dev pin.OPRFDevice, dsn string) {
		if wrappedStorage(dev) {
			t.Skip("a blob's destruction leaves nothing to observe")
		}
		ctx := context.Background()
		e := newEnv(t, dsn, withDevice(dev))
		e.register(t, e.srv, "u1", "123456")
		rec, _ := e.st.GetPINRecord(ctx, "u1", hsm)
		// Retire a forged row naming the live record's key with a wrong MAC.
		bad := rec
		bad.OPRF.MAC = bytes.Repeat([]byte{1}, 32)
		bad.Record = append([]byte{}, rec.Record...)
		bad.CredNonce = []byte("other")
		if err := e.st.PutFirstPINRecord(ctx, "u1", "other", bad, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		other := bad
		other.OPRF = store.OPRFKey{}
		if err := e.st.ReplacePINRecord(ctx, "u1", "other", other, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if n := e.srv.DestroyRetiredOPRFKeys(ctx, "u1"); n != 0 {
			t.Fatalf("destroyed %d keys with a forged MAC", n)
		}
		if !onDevice(t, dev, oprfRef(t, "u1", rec.OPRF)) {
			t.Fatal("the live key was destroyed")
		}
		if _, err := e.login(t, e.srv, "u1", "123456", unlimited); err != nil {
			t.Fatalf("login: %v", err)
		}
	})
}

// TestHSMOPRFInvalidPoints: a blinded element that is not a valid
// compressed P-256 point is refused, in a registration and in a login,
// before any device call and before anything is counted.
func TestHSMOPRFInvalidPoints(t *testing.T) {
	forEachDevice(t, func(t *testing.T, dev pin.OPRFDevice, dsn string) {
		ctx := context.Background()
		e := newEnv(t, dsn, withDevice(dev))
		e.register(t, e.srv, "u1", "123456")
		good := e.startClient(t, "123456").ke1
		for _, bad := range invalidBlinded(t) {
			before := dev.Calls()
			_, err := e.srv.RegistrationResponse(ctx, "u1", hsm, "r", bad.enc)
			wantErr(t, "registration with "+bad.name, err, pin.ErrMalformed)
			if len(bad.enc) == 33 {
				ke1 := slices.Concat(bad.enc, good[33:])
				for _, unit := range []string{"u1", "unknown"} {
					_, _, err = e.srv.LoginStart(ctx, unit, hsm, ke1, unlimited)
					wantErr(t, "login with "+bad.name, err, pin.ErrMalformed)
				}
			}
			if d := device.CallsDelta(before, dev.Calls()); len(d) != 0 {
				t.Fatalf("%s: device calls %v, want none", bad.name, d)
			}
		}
		wantAttempts(t, e.srv, "u1", 0, false)
		wantAttempts(t, e.srv, "unknown", 0, false)
	})
}

// TestHSMOPRFFake: a unit without a record gets a KE2 from the fake key:
// no device key is made for it, it costs the two derives of a real one,
// its evaluated element is the same for the same blinded element and
// unit, and differs between units (as real records' do).
func TestHSMOPRFFake(t *testing.T) {
	forEachDevice(t, func(t *testing.T, dev pin.OPRFDevice, dsn string) {
		ctx := context.Background()
		e := newEnv(t, dsn, withDevice(dev))
		e.register(t, e.srv, "u1", "123456")
		// In wrapped storage the fake key's blob, sealed in the store, is
		// what HeldBlobs gives the wrapping-key report; a token object
		// needs no wrapping key.
		if held := e.srv.HeldBlobs(); len(held) != map[bool]int{true: 1, false: 0}[wrappedStorage(dev)] {
			t.Fatalf("HeldBlobs gave %d blobs", len(held))
		}
		blind := ecc.P256Sha256.NewScalar().Random()
		ke1 := func() []byte {
			c, _ := e.conf.Client()
			m, err := c.GenerateKE1([]byte("000000"), &opaque.ClientOptions{OPRFBlind: blind.Copy()})
			if err != nil {
				t.Fatal(err)
			}
			return m.Serialize()
		}
		eval := func(unit string) ([]byte, map[string]uint64) {
			t.Helper()
			before := dev.Calls()
			_, ke2, err := e.srv.LoginStart(ctx, unit, hsm, ke1(), unlimited)
			if err != nil {
				t.Fatal(err)
			}
			if len(ke2) != 33+32+97+32+33+32 {
				t.Fatalf("KE2 of %d bytes", len(ke2))
			}
			return ke2[:33], device.CallsDelta(before, dev.Calls())
		}
		eval("u1") // warm the device's caches
		eval("ghost-a")
		real, dReal := eval("u1")
		a1, dFake := eval("ghost-a")
		a2, _ := eval("ghost-a")
		b, _ := eval("ghost-b")
		if !bytes.Equal(a1, a2) {
			t.Fatal("a fake unit's evaluation changes between logins")
		}
		if bytes.Equal(a1, b) || bytes.Equal(a1, real) {
			t.Fatal("two units share an OPRF key")
		}
		if derives(dFake) != 2 || derives(dReal) != 2 || generates(dFake) != 0 {
			t.Fatalf("device calls: fake %v, real %v", dFake, dReal)
		}
		for _, u := range []string{"ghost-a", "ghost-b"} {
			if keys, err := dev.List(ctx, device.Owner(u)); err != nil || len(keys) != 0 {
				t.Fatalf("device keys of %s: %v, %v", u, keys, err)
			}
		}
		// The fake key is made once and shared: a second server uses it.
		srv2 := e.newServer(t, withDevice(dev))
		_, ke2, err := srv2.LoginStart(ctx, "ghost-a", hsm, ke1(), unlimited)
		if err != nil || !bytes.Equal(ke2[:33], a1) {
			t.Fatalf("second server: %v, same evaluation %v", err, err == nil && bytes.Equal(ke2[:33], a1))
		}
	})
}

// TestHSMOPRFMigration: a record made with a software OPRF key keeps
// working under a server with an OPRF device, unless it refuses them
// (nothing counted); a PIN change moves the unit to an HSM key, which
// the refusing server then accepts.
func TestHSMOPRFMigration(t *testing.T) {
	forEachDevice(t, func(t *testing.T, dev pin.OPRFDevice, dsn string) {
		ctx := context.Background()
		e := newEnv(t, dsn, nil)
		e.register(t, e.srv, "u1", "123456")
		hsmSrv := e.newServer(t, withDevice(dev))
		if !strings.Contains(e.logs.String(), `"msg":"pin: PIN records with a software OPRF key","records":1`) {
			t.Fatalf("no count of software records at start in the log:\n%s", e.logs.String())
		}
		if _, err := e.login(t, hsmSrv, "u1", "123456", unlimited); err != nil {
			t.Fatalf("software record, device server: %v", err)
		}
		strict := e.newServer(t, func(c *pin.Config) { c.OPRFDevice = dev; c.RefuseSoftwareOPRF = true })
		_, err := e.login(t, strict, "u1", "123456", unlimited)
		wantErr(t, "software record, refusing server", err, pin.ErrSoftwareOPRF)
		wantAttempts(t, strict, "u1", 0, false)

		rec := e.registration(t, hsmSrv, "u1", hsm, "777777")
		if rec.OPRF.IsZero() {
			t.Fatal("the PIN change kept a software OPRF key")
		}
		if err := e.st.ReplacePINRecord(ctx, "u1", hsm, rec, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := e.login(t, strict, "u1", "777777", unlimited); err != nil {
			t.Fatalf("after the change: %v", err)
		}
		// A server without a device cannot serve the record.
		_, err = e.login(t, e.srv, "u1", "777777", unlimited)
		wantErr(t, "HSM record, server without device", err, pin.ErrConfig)

		_, err = pin.New(ctx, e.config(func(c *pin.Config) { c.RefuseSoftwareOPRF = true }))
		wantErr(t, "refusing without a device", err, pin.ErrConfig)
	})
}

// TestHSMOPRFDump is the dump test of issue 11: an attacker holds the
// whole database and everything the server process holds outside the
// HSM, sealed material unsealed (here: the sealer's keys themselves, so
// the OPAQUE key material with its OPRF seed and AKE key, the fake key's
// reference, every record). With that, an offline PIN test is a KE2 the
// attacker computes for a guess and the client check of RFC 9807
// (RecoverCredentials) on it. For a record with a software OPRF key the
// test shows the attack finds the right PIN; for an HSM record every
// OPRF key the dump yields fails even for the right PIN: the evaluation
// exists only on the device, and the server's own login (the device
// path, counted) is the only one that succeeds.
func TestHSMOPRFDump(t *testing.T) {
	forEachDevice(t, func(t *testing.T, dev pin.OPRFDevice, dsn string) {
		const rightPIN = "246810"
		e := newEnv(t, dsn, withDevice(dev))
		e.register(t, e.srv, "hsm-unit", rightPIN)
		soft := newEnv(t, testenv.SQLite(t), nil)
		soft.register(t, soft.srv, "soft-unit", rightPIN)

		if !offlineTest(t, soft, "soft-unit", rightPIN) {
			t.Fatal("control: the dump attack does not find the PIN of a software OPRF record")
		}
		if offlineTest(t, soft, "soft-unit", "000000") {
			t.Fatal("control: the dump attack accepts a wrong PIN")
		}
		if offlineTest(t, e, "hsm-unit", rightPIN) {
			t.Fatal("the dump yields the OPRF evaluation of an HSM record")
		}
		// The device path does evaluate it.
		if _, err := e.login(t, e.srv, "hsm-unit", rightPIN, unlimited); err != nil {
			t.Fatalf("login: %v", err)
		}
	})
}

// offlineTest is the attacker with the dump of e: for every OPRF key the
// dump yields (the seed-derived key of RFC 9807 for the record's
// credential identifier, and the fake-record scalar), it builds KE2 with
// the dumped AKE key and runs the client with pinCode against it. It
// reports whether any key makes the client accept, that is whether pinCode
// can be tested offline.
func offlineTest(t *testing.T, e *env, unit, pinCode string) bool {
	t.Helper()
	ctx := context.Background()
	// The dump: the store's rows and the server's secrets, unsealed.
	sealed, err := e.st.GetServerSecret(ctx, pin.KeyMaterialName)
	if err != nil {
		t.Fatal(err)
	}
	km, err := e.sealer.Open(sealed, []byte(pin.KeyMaterialName))
	if err != nil || len(km) != 65 {
		t.Fatalf("key material: %d bytes, %v", len(km), err)
	}
	akeSK, seed := km[1:33], km[33:]
	rec, err := e.st.GetPINRecord(ctx, unit, hsm)
	if err != nil {
		t.Fatal(err)
	}
	credID := []byte(hsm + "|" + unit + "|" + hexString(rec.CredNonce))

	g := ecc.P256Sha256
	var candidates []*ecc.Scalar
	// RFC 9807: seed-derived per-record key.
	expanded, err := hkdf.Expand(sha256.New, seed, string(credID)+"OprfKey", 32)
	if err != nil {
		t.Fatal(err)
	}
	candidates = append(candidates, deriveOPRFKey(t, expanded))
	// The fake-record scalar t_u (and for HSM mode, the whole fake key
	// would need the device too).
	candidates = append(candidates, g.HashToScalar(slices.Concat(seed, []byte(hsm+"|"+unit+"|")), []byte("wsca-pin-fake-oprf-v1")))
	// Every 32-byte value of the dump read as a scalar: the sealed and
	// unsealed secrets, the record's fields.
	for _, b := range [][]byte{akeSK, seed, rec.OPRF.Wrapped, rec.OPRF.MAC, rec.MAC, rec.CredNonce} {
		for i := 0; i+32 <= len(b); i++ {
			if s, err := opaque.DeserializeScalar(g, b[i:i+32]); err == nil {
				candidates = append(candidates, s)
			}
		}
	}

	conf := e.conf
	sk, err := opaque.DeserializeScalar(g, akeSK)
	if err != nil {
		t.Fatal(err)
	}
	op, err := conf.Server()
	if err != nil {
		t.Fatal(err)
	}
	if err := op.SetKeyMaterial(&opaque.ServerKeyMaterial{PrivateKey: sk, PublicKeyBytes: g.Base().Multiply(sk).Encode(), OPRFGlobalSeed: seed}); err != nil {
		t.Fatal(err)
	}
	reg, err := op.Deserialize.RegistrationRecord(rec.Record)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range candidates {
		c, _ := conf.Client()
		ke1, err := c.GenerateKE1([]byte(pinCode))
		if err != nil {
			t.Fatal(err)
		}
		ke2, _, err := op.GenerateKE2(ke1, &opaque.ClientRecord{RegistrationRecord: reg, CredentialIdentifier: credID}, &opaque.ServerOptions{ClientOPRFKey: k})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := c.GenerateKE3(ke2, nil, nil); err == nil {
			return true
		}
	}
	return false
}

// deriveOPRFKey is RFC 9497 DeriveKeyPair(seed, "OPAQUE-DeriveKeyPair")
// for P256-SHA256.
func deriveOPRFKey(t *testing.T, seed []byte) *ecc.Scalar {
	info := []byte("OPAQUE-DeriveKeyPair")
	in := slices.Concat(seed, []byte{0, byte(len(info))}, info)
	for counter := range 256 {
		s := ecc.P256Sha256.HashToScalar(append(slices.Clone(in), byte(counter)), []byte("DeriveKeyPairOPRFV1-\x00-P256-SHA256"))
		if !s.IsZero() {
			return s
		}
	}
	t.Fatal("DeriveKeyPair")
	return nil
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		out = append(out, digits[x>>4], digits[x&15])
	}
	return string(out)
}

type badBlinded struct {
	name string
	enc  []byte
}

// invalidBlinded: blinded elements the server must refuse.
func invalidBlinded(t *testing.T) []badBlinded {
	g := ecc.P256Sha256.Base().Encode()
	p := []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	// x = p + x0 for a small x0 of a point: the same point, not canonical.
	var pPlus []byte
	for x0 := int64(1); pPlus == nil; x0++ {
		if ecc.P256Sha256.NewElement().Decode(append([]byte{2}, new(big.Int).SetInt64(x0).FillBytes(make([]byte, 32))...)) == nil {
			pPlus = new(big.Int).Add(new(big.Int).SetBytes(p), big.NewInt(x0)).FillBytes(make([]byte, 32))
		}
	}
	minusG := bytes.Clone(g)
	minusG[0] ^= 1
	offCurve := append([]byte{2}, make([]byte, 32)...)
	for x := byte(0); ; x++ {
		offCurve[32] = x
		if err := ecc.P256Sha256.NewElement().Decode(offCurve); err != nil {
			break
		}
	}
	return []badBlinded{
		{"the identity", []byte{0}},
		{"zeros", make([]byte, 33)},
		{"prefix 4", append([]byte{4}, g[1:]...)},
		{"prefix 5", append([]byte{5}, g[1:]...)},
		{"short", g[:32]},
		{"x not on the curve", offCurve},
		{"x = p", append([]byte{2}, p...)},
		{"x = p + x0", append([]byte{3}, pPlus...)},
		// −G: M + G is the identity, so a real key's evaluation needs no
		// derive while a fake record's (of t_u·M) needs two: a timing
		// oracle for whether a unit has a record. Refused on both paths.
		{"−G", minusG},
	}
}

// tamperStore changes what the store returns, as a database writer would.
type tamperStore struct {
	*store.Store
	pending func(*store.PendingRegistration)
	record  func(*store.PINRecord)
}

func (s *tamperStore) TakePendingRegistration(ctx context.Context, unit, pinContext, requester string, now time.Time) (store.PendingRegistration, error) {
	p, err := s.Store.TakePendingRegistration(ctx, unit, pinContext, requester, now)
	if err == nil && s.pending != nil {
		s.pending(&p)
	}
	return p, err
}

func (s *tamperStore) GetPINRecord(ctx context.Context, unit, pinContext string) (store.PINRecord, error) {
	r, err := s.Store.GetPINRecord(ctx, unit, pinContext)
	if err == nil && s.record != nil {
		s.record(&r)
	}
	return r, err
}

// TestHSMOPRFIntegrity: an HSM OPRF key is bound by MACs: a pending
// registration whose key (point, blob or MAC) was changed does not
// finish, and a record whose key was replaced by another unit's (with
// that key's valid MAC) or dropped (turned into a software record) is
// refused before anything is counted or derived.
func TestHSMOPRFIntegrity(t *testing.T) {
	forEachDevice(t, func(t *testing.T, dev pin.OPRFDevice, dsn string) {
		ctx := context.Background()
		e := newEnv(t, dsn, withDevice(dev))
		e.register(t, e.srv, "u1", "123456")
		e.register(t, e.srv, "u2", "123456")
		r1, _ := e.st.GetPINRecord(ctx, "u1", hsm)
		r2, _ := e.st.GetPINRecord(ctx, "u2", hsm)
		ts := &tamperStore{Store: e.st}
		srv := e.newServer(t, func(c *pin.Config) { c.OPRFDevice = dev; c.Store = ts })

		for name, f := range map[string]func(*store.PendingRegistration){
			"point":   func(p *store.PendingRegistration) { p.OPRF.Public = r2.OPRF.Public },
			"MAC":     func(p *store.PendingRegistration) { p.OPRF.MAC = r2.OPRF.MAC },
			"blob":    func(p *store.PendingRegistration) { p.OPRF.Wrapped = append(slices.Clone(p.OPRF.Wrapped), 0) },
			"dropped": func(p *store.PendingRegistration) { p.OPRF = store.OPRFKey{} },
		} {
			ts.pending = f
			c, _ := e.conf.Client()
			req, _ := c.RegistrationInit([]byte("1"))
			raw, err := srv.RegistrationResponse(ctx, "u1", hsm, "r", req.Serialize())
			if err != nil {
				t.Fatal(err)
			}
			resp, _ := c.Deserialize.RegistrationResponse(raw)
			up, _, _ := c.RegistrationFinalize(resp, nil, nil)
			rec, err := srv.FinishRegistration(ctx, "u1", hsm, "r", up.Serialize())
			if name == "dropped" {
				// A software record then, whose key is not the one
				// evaluated: the PIN does not open it (no offline gain).
				if err != nil || !rec.OPRF.IsZero() {
					t.Fatalf("dropped key: %v", err)
				}
				continue
			}
			wantErr(t, "pending registration with another "+name, err, pin.ErrIntegrity)
		}
		ts.pending = nil

		for name, f := range map[string]func(*store.PINRecord){
			"another unit's key": func(r *store.PINRecord) { r.OPRF = r2.OPRF },
			"no key":             func(r *store.PINRecord) { r.OPRF = store.OPRFKey{} },
			"another blob":       func(r *store.PINRecord) { r.OPRF.Wrapped = []byte("x") },
		} {
			ts.record = f
			before := dev.Calls()
			_, err := e.login(t, srv, "u1", "123456", unlimited)
			wantErr(t, "record with "+name, err, pin.ErrIntegrity)
			if d := device.CallsDelta(before, dev.Calls()); derives(d) != 0 {
				t.Fatalf("%s: %v", name, d)
			}
		}
		ts.record = nil
		wantAttempts(t, srv, "u1", 0, false)
		if _, err := e.login(t, srv, "u1", "123456", unlimited); err != nil {
			t.Fatal(err)
		}
		if r1.OPRF.IsZero() {
			t.Fatal("u1 has no HSM key")
		}
	})
}

// downStore is a store whose PIN records cannot be read.
type downStore struct{ *store.Store }

func (downStore) GetPINRecord(context.Context, string, string) (store.PINRecord, error) {
	return store.PINRecord{}, errors.New("store down")
}

// TestHSMOPRFDiscardRecord: DiscardRecord destroys the key of a record
// FinishRegistration returned and nobody stored, and keeps a key the
// unit's stored record names, one whose MAC fails, and one the store
// cannot tell about.
func TestHSMOPRFDiscardRecord(t *testing.T) {
	forEachDevice(t, func(t *testing.T, dev pin.OPRFDevice, dsn string) {
		if wrappedStorage(dev) {
			t.Skip("a blob's destruction leaves nothing to observe")
		}
		ctx := context.Background()
		e := newEnv(t, dsn, withDevice(dev))
		down := e.newServer(t, func(c *pin.Config) { c.OPRFDevice = dev; c.Store = downStore{e.st} })
		// finished runs a registration up to FinishRegistration.
		finished := func(unit string) store.PINRecord {
			t.Helper()
			c, _ := e.conf.Client()
			req, _ := c.RegistrationInit([]byte("123456"))
			raw, err := e.srv.RegistrationResponse(ctx, unit, hsm, "r", req.Serialize())
			if err != nil {
				t.Fatal(err)
			}
			resp, _ := c.Deserialize.RegistrationResponse(raw)
			up, _, _ := c.RegistrationFinalize(resp, nil, nil)
			rec, err := e.srv.FinishRegistration(ctx, unit, hsm, "r", up.Serialize())
			if err != nil {
				t.Fatal(err)
			}
			return rec
		}
		for _, tc := range []struct {
			name    string
			srv     *pin.Server
			store   bool // the record is stored before the discard
			forge   bool // its MAC is changed
			survive bool
		}{
			{name: "not stored", srv: e.srv},
			{name: "stored", srv: e.srv, store: true, survive: true},
			{name: "forged MAC", srv: e.srv, forge: true, survive: true},
			{name: "store down", srv: down, survive: true},
		} {
			unit := "u-" + strings.ReplaceAll(tc.name, " ", "-")
			e.createUnit(t, unit)
			rec := finished(unit)
			if tc.store {
				if err := e.st.PutFirstPINRecord(ctx, unit, hsm, rec, e.clock.Now()); err != nil {
					t.Fatal(err)
				}
			}
			ref := oprfRef(t, unit, rec.OPRF)
			if tc.forge {
				rec.OPRF.MAC = bytes.Repeat([]byte{1}, len(rec.OPRF.MAC))
			}
			tc.srv.DiscardRecord(ctx, unit, hsm, rec)
			if got := onDevice(t, dev, ref); got != tc.survive {
				t.Errorf("%s: key on the device %v, want %v", tc.name, got, tc.survive)
			}
		}
	})
}
