package pin

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"

	"filippo.io/nistec"
	"github.com/bytemare/ecc"
	"github.com/bytemare/opaque"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/store"
)

// randomScalar returns a random non-zero P-256 scalar.
func randomScalar(t testing.TB) *ecc.Scalar {
	t.Helper()
	return ecc.P256Sha256.NewScalar().Random()
}

// softEval is k·M in software, compressed.
func softEval(t testing.TB, k *ecc.Scalar, m []byte) []byte {
	t.Helper()
	e := ecc.P256Sha256.NewElement()
	if err := e.Decode(m); err != nil {
		t.Fatal(err)
	}
	return e.Multiply(k).Encode()
}

// TestBuildKE2MatchesBytemare: for random key material, records (with
// and without identities, with and without a context) and KE1s,
// buildKE2 given the evaluation k·M returns byte for byte the KE2,
// session secret and expected client MAC of bytemare's GenerateKE2 with
// the OPRF key k and the same randomness.
func TestBuildKE2MatchesBytemare(t *testing.T) {
	for i := range 24 {
		ctxStr := ""
		if i%2 == 1 {
			ctxStr = "wsca-test-context"
		}
		conf, err := Profile{Context: ctxStr}.Configuration()
		if err != nil {
			t.Fatal(err)
		}
		skm, err := generateKeyMaterial(conf, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 2 {
			skm.Identity = []byte("server-id")
		}
		op, err := conf.Server()
		if err != nil {
			t.Fatal(err)
		}
		if err := op.SetKeyMaterial(skm); err != nil {
			t.Fatal(err)
		}
		c, err := conf.Client()
		if err != nil {
			t.Fatal(err)
		}
		var clientID []byte
		if i%4 == 3 {
			clientID = []byte("client-id")
		}
		k := randomScalar(t)
		req, err := c.RegistrationInit([]byte("1234"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := op.RegistrationResponse(req, nil, k)
		if err != nil {
			t.Fatal(err)
		}
		reg, _, err := c.RegistrationFinalize(resp, clientID, skm.Identity)
		if err != nil {
			t.Fatal(err)
		}
		c, _ = conf.Client()
		ke1, err := c.GenerateKE1([]byte("1234"))
		if err != nil {
			t.Fatal(err)
		}
		rec := &opaque.ClientRecord{RegistrationRecord: reg, CredentialIdentifier: []byte("x"), ClientIdentity: clientID}
		rnd := make([]byte, 3*nonceLen)
		rand.Read(rnd)
		want, wantOut, err := op.GenerateKE2(ke1, rec, &opaque.ServerOptions{
			ClientOPRFKey: k, MaskingNonce: rnd[:nonceLen],
			AKE: &opaque.AKEOptions{SecretKeyShareSeed: rnd[nonceLen : 2*nonceLen], Nonce: rnd[2*nonceLen:]},
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := buildKE2(ke2Input{
			context: conf.Context, serverSK: skm.PrivateKey, serverPK: skm.PublicKeyBytes, serverID: skm.Identity,
			ke1: ke1, rec: rec,
			maskingNonce: rnd[:nonceLen], keyShareSeed: rnd[nonceLen : 2*nonceLen], serverNonce: rnd[2*nonceLen:],
		}, softEval(t, k, ke1.BlindedMessage.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		wantBytes(t, fmt.Sprintf("%d: KE2", i), got.ke2, want.Serialize())
		wantBytes(t, fmt.Sprintf("%d: session secret", i), got.sessionSecret, wantOut.SessionSecret)
		wantBytes(t, fmt.Sprintf("%d: client MAC", i), got.clientMAC, wantOut.ClientMAC)
	}
}

// TestRecoverPoint: the two x-coordinates recover k·M for random keys
// and elements, M = G and M = K included; exactly one candidate matches;
// an x2 of another point, or an x1 that is no point's, is errDevice.
func TestRecoverPoint(t *testing.T) {
	g := nistec.NewP256Point().SetGenerator()
	for i := range 64 {
		k := randomScalar(t)
		kb := k.Encode()
		pubK, _ := nistec.NewP256Point().ScalarBaseMult(kb)
		m, _ := nistec.NewP256Point().ScalarBaseMult(randomScalar(t).Encode())
		switch i {
		case 0:
			m = nistec.NewP256Point().SetGenerator()
		case 1:
			m = nistec.NewP256Point().Set(pubK)
		}
		z, _ := nistec.NewP256Point().ScalarMult(m, kb)
		z2, _ := nistec.NewP256Point().ScalarMult(nistec.NewP256Point().Add(m, g), kb)
		x1, _ := z.BytesX()
		x2, _ := z2.BytesX()
		got, err := recoverPoint(x1, x2, pubK)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		wantBytes(t, "recovered point", got, z.BytesCompressed())

		// x2 of another point: at most one candidate can match, and for
		// these inputs none does.
		other, _ := nistec.NewP256Point().ScalarBaseMult(randomScalar(t).Encode())
		ox, _ := other.BytesX()
		if _, err := recoverPoint(x1, ox, pubK); !errors.Is(err, errDevice) {
			t.Fatalf("%d: x2 of another point: %v", i, err)
		}
	}
	// An x-coordinate of no point (x = 0 is not on P-256... find one).
	k := randomScalar(t)
	pubK, _ := nistec.NewP256Point().ScalarBaseMult(k.Encode())
	bad := make([]byte, 32)
	for b := byte(0); ; b++ {
		bad[31] = b
		if _, err := nistec.NewP256Point().SetBytes(append([]byte{2}, bad...)); err != nil {
			break
		}
	}
	if _, err := recoverPoint(bad, bad, pubK); !errors.Is(err, errDevice) {
		t.Fatalf("x1 of no point: %v", err)
	}
	if _, err := recoverPoint(bad[:31], bad, pubK); !errors.Is(err, errDevice) {
		t.Fatalf("short x1: %v", err)
	}
}

// TestDeviceEvaluate: on every device backend, with a derive-only key,
// the two derives give k·M (checked against the key imported in
// software... here: against the evaluation with the key's scalar, which
// only the soft keystore's import lets a test know), and M = −G costs no
// derive.
func TestDeviceEvaluate(t *testing.T) {
	for _, b := range testdevice.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			dev := b.Open(t)
			imp, ok := dev.(device.Importer)
			if !ok {
				t.Skip("no import")
			}
			ctx := context.Background()
			priv, err := ecdh.P256().GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			key, err := imp.Import(ctx, "oprf-eval-test", priv)
			if err != nil {
				if errors.Is(err, device.ErrWrappedUnsupported) {
					t.Skip(err)
				}
				t.Fatal(err)
			}
			t.Cleanup(func() { dev.Destroy(context.Background(), key.Ref()) })
			pub, err := compressedPublic(key)
			if err != nil {
				t.Fatal(err)
			}
			k, err := opaque.DeserializeScalar(ecc.P256Sha256, priv.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			// Warm up: in wrapped storage the first use unwraps the blob
			// and checks it (a derive of its own).
			if _, err := deviceEvaluate(ctx, dev, key.Ref(), pub, nistec.NewP256Point().SetGenerator()); err != nil {
				t.Fatal(err)
			}
			for i := range 8 {
				m, _ := nistec.NewP256Point().ScalarBaseMult(randomScalar(t).Encode())
				if i == 0 {
					m = nistec.NewP256Point().SetGenerator()
				}
				before := dev.Calls()
				z, err := deviceEvaluate(ctx, dev, key.Ref(), pub, m)
				if err != nil {
					t.Fatal(err)
				}
				wantBytes(t, "k·M", z, softEval(t, k, m.BytesCompressed()))
				if n := ecdhCalls(device.CallsDelta(before, dev.Calls())); n != 2 {
					t.Fatalf("%d derives, want 2", n)
				}
			}
			minusG := nistec.NewP256Point().SetGenerator().BytesCompressed()
			minusG[0] ^= 1
			m, err := nistec.NewP256Point().SetBytes(minusG) // parseElement refuses it
			if err != nil {
				t.Fatal(err)
			}
			before := dev.Calls()
			z, err := deviceEvaluate(ctx, dev, key.Ref(), pub, m)
			if err != nil {
				t.Fatal(err)
			}
			wantBytes(t, "k·(−G)", z, softEval(t, k, minusG))
			if n := ecdhCalls(device.CallsDelta(before, dev.Calls())); n != 0 {
				t.Fatalf("M = −G: %d derives, want 0", n)
			}
		})
	}
}

// ecdhCalls counts the derives in a call delta: soft_ecdh or C_DeriveKey.
func ecdhCalls(d map[string]uint64) uint64 { return d["soft_ecdh"] + d["C_DeriveKey"] }

// TestParseElement: everything but the canonical compressed encoding of
// a point on P-256 is refused.
func TestParseElement(t *testing.T) {
	g := nistec.NewP256Point().SetGenerator()
	good := g.BytesCompressed()
	if _, err := parseElement(good); err != nil {
		t.Fatal(err)
	}
	for _, bad := range invalidElements(t) {
		if _, err := parseElement(bad.enc); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s (%x): %v", bad.name, bad.enc, err)
		}
	}
}

type namedElement struct {
	name string
	enc  []byte
}

// invalidElements are the encodings a blinded element may not have.
func invalidElements(t testing.TB) []namedElement {
	g := nistec.NewP256Point().SetGenerator()
	good := g.BytesCompressed()
	p, _ := hex.DecodeString("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff")
	// x + p for a small x on the curve (x + p < 2^256), not canonical.
	var nonCanonical []byte
	for x := byte(1); x < 255; x++ {
		enc := append([]byte{2}, make([]byte, 31)...)
		enc = append(enc[:32], x)
		if _, err := nistec.NewP256Point().SetBytes(enc); err != nil {
			continue
		}
		sum := new([32]byte)
		copy(sum[:], p)
		carry := uint16(x)
		for i := 31; i >= 0 && carry > 0; i-- {
			v := uint16(sum[i]) + carry
			sum[i], carry = byte(v), v>>8
		}
		nonCanonical = append([]byte{2}, sum[:]...)
		break
	}
	if nonCanonical == nil {
		t.Fatal("no small x on the curve")
	}
	offCurve := append([]byte{2}, make([]byte, 32)...)
	for b := byte(0); ; b++ {
		offCurve[32] = b
		if _, err := nistec.NewP256Point().SetBytes(offCurve); err != nil {
			break
		}
	}
	return []namedElement{
		{"identity", []byte{0}},
		{"identity, padded", make([]byte, 33)},
		{"uncompressed", g.Bytes()},
		{"prefix 4, 33 bytes", append([]byte{4}, good[1:]...)},
		{"prefix 5", append([]byte{5}, good[1:]...)},
		{"short", good[:32]},
		{"long", append(slices.Clone(good), 0)},
		{"x not on the curve", offCurve},
		{"x = p + small", nonCanonical},
		{"x = p", append([]byte{2}, p...)},
	}
}

// TestRFC9807VectorsOnDevice runs the real P-256 vectors of RFC 9807
// through the device path: the vector's OPRF key (derived from its seed
// and credential identifier as RFC 9807 §4.1 says) imported into each
// device backend, the registration response and KE2 made with the two
// derives and buildKE2, byte for byte the vector's.
func TestRFC9807VectorsOnDevice(t *testing.T) {
	for _, b := range testdevice.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			dev := b.Open(t)
			imp, ok := dev.(device.Importer)
			if !ok {
				t.Skip("no import")
			}
			n := 0
			for _, v := range loadOPAQUEVectors(t) {
				if !v.inSuite() || v.fake(t) {
					continue
				}
				n++
				v.testOnDevice(t, dev, imp)
			}
			if n != 2 {
				t.Fatalf("ran %d vectors, want 2", n)
			}
		})
	}
}

func (v *opaqueVector) testOnDevice(t *testing.T, dev device.Device, imp device.Importer) {
	ctx := context.Background()
	in, out := v.Inputs, v.Outputs
	s := v.server(t)
	// RFC 9807 §4.1.2 / CreateRegistrationResponse: seed = Expand(oprf_seed,
	// credential_identifier || "OprfKey", Nok); DeriveKeyPair(seed,
	// "OPAQUE-DeriveKeyPair").
	seed, err := hkdf.Expand(sha256.New, in.OPRFSeed, string(in.CredentialIdentifier)+"OprfKey", 32)
	if err != nil {
		t.Fatal(err)
	}
	k, err := deriveKeyPair(seed, []byte("OPAQUE-DeriveKeyPair"))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ecdh.P256().NewPrivateKey(k.Encode())
	if err != nil {
		t.Fatal(err)
	}
	key, err := imp.Import(ctx, "oprf-vector-test", priv)
	if err != nil {
		if errors.Is(err, device.ErrWrappedUnsupported) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	defer dev.Destroy(context.Background(), key.Ref()) // the other vector has the same key
	pub, err := compressedPublic(key)
	if err != nil {
		t.Fatal(err)
	}

	m, err := parseElement(out.RegistrationRequest)
	if err != nil {
		t.Fatal(err)
	}
	z, err := deviceEvaluate(ctx, dev, key.Ref(), pub, m)
	if err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "registration response (device)", append(z, in.ServerPublicKey...), out.RegistrationResponse)

	ke1, err := s.op.Deserialize.KE1(out.KE1)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := s.op.Deserialize.RegistrationRecord(out.RegistrationRecord)
	if err != nil {
		t.Fatal(err)
	}
	m, err = parseElement(out.KE1[:blindedLen])
	if err != nil {
		t.Fatal(err)
	}
	z, err = deviceEvaluate(ctx, dev, key.Ref(), pub, m)
	if err != nil {
		t.Fatal(err)
	}
	skm := s.op.ServerKeyMaterial
	got, err := buildKE2(ke2Input{
		context: s.conf.Context, serverSK: skm.PrivateKey, serverPK: skm.PublicKeyBytes, serverID: skm.Identity,
		ke1: ke1, rec: &opaque.ClientRecord{RegistrationRecord: reg, CredentialIdentifier: in.CredentialIdentifier, ClientIdentity: in.ClientIdentity},
		maskingNonce: in.MaskingNonce, keyShareSeed: in.ServerKeyshareSeed, serverNonce: in.ServerNonce,
	}, z)
	if err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "KE2 (device)", got.ke2, out.KE2)
	wantBytes(t, "session key (device)", got.sessionSecret, out.SessionKey)
	wantBytes(t, "expected client MAC (device)", got.clientMAC, out.KE3)
	if bytes.Equal(got.clientMAC, got.sessionSecret) {
		t.Fatal("MAC and session secret equal")
	}
}

// BenchmarkKE2 isolates the OPRF evaluation and KE2 of a login from the
// store: bytemare's GenerateKE2 with the seed-derived key (software), and
// ke2OnDevice with a record's HSM key (real) and with the fake key
// (fake), on the PKCS#11 test token in token and in wrapped storage.
// ns/op is the server's CPU and the token's (SoftHSM runs in the
// process); derives/op counts C_DeriveKey (docs/benchmarks.md, "Issue
// 11").
//
//	go test -run '^$' -bench BenchmarkKE2 ./pin/
func BenchmarkKE2(b *testing.B) {
	conf, err := Profile{}.Configuration()
	if err != nil {
		b.Fatal(err)
	}
	skm, err := generateKeyMaterial(conf, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	s := &Server{conf: conf, rand: rand.Reader}
	if err := s.setKeyMaterial(skm); err != nil {
		b.Fatal(err)
	}
	c, _ := conf.Client()
	req, _ := c.RegistrationInit([]byte("123456"))
	resp, err := s.op.RegistrationResponse(req, []byte("hsm|u|00"), nil)
	if err != nil {
		b.Fatal(err)
	}
	reg, _, err := c.RegistrationFinalize(resp, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	rec := &opaque.ClientRecord{RegistrationRecord: reg, CredentialIdentifier: []byte("hsm|u|00")}
	c, _ = conf.Client()
	ke1, err := c.GenerateKE1([]byte("123456"))
	if err != nil {
		b.Fatal(err)
	}
	m, err := parseElement(ke1.Serialize()[:blindedLen])
	if err != nil {
		b.Fatal(err)
	}
	b.Run("software", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := s.ke2(s.op, ke1, rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	ctx := context.Background()
	for _, be := range []struct {
		name string
		open func(testing.TB) device.Device
	}{{"token", testdevice.PKCS11}, {"wrapped", testdevice.PKCS11Wrapped}} {
		dev := be.open(b).(OPRFDevice)
		s.dev = dev
		key, err := dev.GenerateDeriveOnly(ctx, "u")
		if err != nil {
			b.Fatal(err)
		}
		fk, err := dev.GenerateDeriveOnly(ctx, fakeOwner)
		if err != nil {
			b.Fatal(err)
		}
		fpub, _ := compressedPublic(fk)
		s.fake = fakeKey{key: store.OPRFKey{Public: fpub, Wrapped: fk.Wrapped}}
		kpub, _ := compressedPublic(key)
		stored := store.OPRFKey{Public: kpub, Wrapped: key.Wrapped}
		for _, fake := range []bool{true, false, true, false} {
			name := "real"
			if fake {
				name = "fake"
			}
			b.Run(name+"/"+be.name, func(b *testing.B) {
				if _, err := s.ke2OnDevice(ctx, s.op, ke1, rec, "u", "hsm", stored, fake, m); err != nil {
					b.Fatal(err)
				}
				before := dev.Calls()
				for b.Loop() {
					if _, err := s.ke2OnDevice(ctx, s.op, ke1, rec, "u", "hsm", stored, fake, m); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(ecdhCalls(device.CallsDelta(before, dev.Calls())))/float64(b.N), "derives/op")
			})
		}
		dev.Destroy(ctx, key.Ref())
		dev.Destroy(ctx, fk.Ref())
	}
}

// FuzzParseElement: any input is a point whose compressed encoding is the
// input, or ErrMalformed; never a panic.
func FuzzParseElement(f *testing.F) {
	for _, e := range invalidElements(f) {
		f.Add(e.enc)
	}
	g := nistec.NewP256Point().SetGenerator().BytesCompressed()
	f.Add(g)
	f.Add(append([]byte{g[0] ^ 1}, g[1:]...)) // −G, refused
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseElement(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !bytes.Equal(p.BytesCompressed(), b) {
			t.Fatalf("parsed %x as %x", b, p.BytesCompressed())
		}
	})
}

// FuzzRecoverPoint: for any device answers, recoverPoint returns a point
// with the given x-coordinate whose sum with K has the other, or
// errDevice; never a panic.
func FuzzRecoverPoint(f *testing.F) {
	k := ecc.P256Sha256.NewScalar().Random()
	pubK, _ := nistec.NewP256Point().ScalarBaseMult(k.Encode())
	m, _ := nistec.NewP256Point().ScalarBaseMult(ecc.P256Sha256.NewScalar().Random().Encode())
	z, _ := nistec.NewP256Point().ScalarMult(m, k.Encode())
	z2, _ := nistec.NewP256Point().ScalarMult(nistec.NewP256Point().Add(m, nistec.NewP256Point().SetGenerator()), k.Encode())
	x1, _ := z.BytesX()
	x2, _ := z2.BytesX()
	f.Add(x1, x2)
	f.Add(x2, x1)
	f.Add(make([]byte, 32), make([]byte, 31))
	f.Fuzz(func(t *testing.T, x1, x2 []byte) {
		c, err := recoverPoint(x1, x2, pubK)
		if err != nil {
			if !errors.Is(err, errDevice) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		p, err := nistec.NewP256Point().SetBytes(c)
		if err != nil {
			t.Fatal(err)
		}
		if x, _ := p.BytesX(); !bytes.Equal(x, x1) {
			t.Fatal("wrong x-coordinate")
		}
		if x, _ := nistec.NewP256Point().Add(p, pubK).BytesX(); !bytes.Equal(x, x2) {
			t.Fatal("sum with K has another x-coordinate")
		}
	})
}
