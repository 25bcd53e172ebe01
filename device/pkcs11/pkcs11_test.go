//go:build cgo && !nopkcs11

package pkcs11

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/device/devicetest"
	"github.com/wsca/wsca/internal/testenv"
)

func testConfig(t testing.TB) Config {
	t.Helper()
	cfg, err := ParseURI(testenv.PKCS11URI(t))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func openTest(t testing.TB) *Device {
	t.Helper()
	d, err := Open(context.Background(), testConfig(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestConformance(t *testing.T) {
	d := openTest(t)
	// The test token is SoftHSM: whatever the URI declares is reported,
	// and nothing declared is "not certified", never a hardware claim.
	want := testConfig(t).Assurance
	if want == "" {
		want = device.AssuranceNotCertified
	}
	if a := d.Info().Assurance; a != want {
		t.Fatalf("PKCS#11 device reports assurance %q, want %q", a, want)
	}
	devicetest.Run(t, d)
}

// TestSignIsTwoCalls: once a key's handle is known, a signature is exactly
// C_SignInit + C_Sign, and an ECDH is C_DeriveKey + C_GetAttributeValue +
// C_DestroyObject.
func TestSignIsTwoCalls(t *testing.T) {
	ctx := context.Background()
	d := openTest(t)
	owner := devicetest.NewOwner(t, "calls")
	k, err := d.Generate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Destroy(ctx, device.Ref{Owner: owner, KID: k.KID})
	ref := device.Ref{Owner: owner, KID: k.KID}
	digest := sha256.Sum256([]byte("x"))

	before := d.Calls()
	if _, err := d.Sign(ctx, ref, digest[:]); err != nil {
		t.Fatal(err)
	}
	got := device.CallsDelta(before, d.Calls())
	if len(got) != 2 || got[CallSignInit] != 1 || got[CallSign] != 1 {
		t.Fatalf("sign made calls %v", got)
	}

	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	before = d.Calls()
	if _, err := d.ECDH(ctx, ref, peer.PublicKey()); err != nil {
		t.Fatal(err)
	}
	got = device.CallsDelta(before, d.Calls())
	if len(got) != 3 || got[CallDeriveKey] != 1 || got[CallGetAttributeValue] != 1 || got[CallDestroyObject] != 1 {
		t.Fatalf("ECDH made calls %v", got)
	}
}

// TestKeyAttributes reads the new key's attributes through a second,
// independent PKCS#11 context: sensitive, never extractable, labelled with
// its owner, CKA_ID = kid, and CKA_VALUE unreadable.
func TestKeyAttributes(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	d := openTest(t)
	owner := devicetest.NewOwner(t, "attrs")
	k, err := d.Generate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Destroy(ctx, device.Ref{Owner: owner, KID: k.KID})

	lib, s := rawSession(t, cfg)
	if err := lib.FindObjectsInit(s, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
		p11.NewAttribute(p11.CKA_ID, k.KID.Bytes()),
	}); err != nil {
		t.Fatal(err)
	}
	hs, _, err := lib.FindObjects(s, 2)
	lib.FindObjectsFinal(s)
	if err != nil || len(hs) != 1 {
		t.Fatalf("found %d private objects: %v", len(hs), err)
	}
	attrs, err := lib.GetAttributeValue(s, hs[0], []*p11.Attribute{
		p11.NewAttribute(p11.CKA_SENSITIVE, nil),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, nil),
		p11.NewAttribute(p11.CKA_NEVER_EXTRACTABLE, nil),
		p11.NewAttribute(p11.CKA_ALWAYS_SENSITIVE, nil),
		p11.NewAttribute(p11.CKA_TOKEN, nil),
		p11.NewAttribute(p11.CKA_LABEL, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint]string{
		p11.CKA_SENSITIVE: "\x01", p11.CKA_EXTRACTABLE: "\x00", p11.CKA_NEVER_EXTRACTABLE: "\x01",
		p11.CKA_ALWAYS_SENSITIVE: "\x01", p11.CKA_TOKEN: "\x01", p11.CKA_LABEL: string(owner),
	}
	for _, a := range attrs {
		if string(a.Value) != want[a.Type] {
			t.Errorf("attribute %#x = %q, want %q", a.Type, a.Value, want[a.Type])
		}
	}
	if _, err := lib.GetAttributeValue(s, hs[0], []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)}); !isCode(err, p11.CKR_ATTRIBUTE_SENSITIVE) {
		t.Fatalf("reading CKA_VALUE: %v, want CKR_ATTRIBUTE_SENSITIVE", err)
	}
}

// rawSession opens a session through a second context on the same module,
// as another component of the process would.
func rawSession(t testing.TB, cfg Config) (*p11.Ctx, p11.SessionHandle) {
	t.Helper()
	lib := p11.New(cfg.Module)
	if err := lib.Initialize(); err != nil && !isCode(err, p11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		t.Fatal(err)
	}
	slots, err := lib.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, sl := range slots {
		ti, err := lib.GetTokenInfo(sl)
		if err != nil || ti.Label != cfg.TokenLabel {
			continue
		}
		s, err := lib.OpenSession(sl, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
		if err != nil {
			t.Fatal(err)
		}
		if err := lib.Login(s, p11.CKU_USER, cfg.PIN); err != nil && !isCode(err, p11.CKR_USER_ALREADY_LOGGED_IN) {
			t.Fatal(err)
		}
		t.Cleanup(func() { lib.CloseSession(s) })
		return lib, s
	}
	t.Fatalf("token %q not found", cfg.TokenLabel)
	return nil, 0
}

// TestRecoversFromFinalize: the library is finalised under the device's
// feet (as a crash of the token or a careless library user would do); the
// next operations re-initialise once, log in again and succeed, also when
// many run at once.
func TestRecoversFromFinalize(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	d := openTest(t)
	owner := devicetest.NewOwner(t, "fault")
	k, err := d.Generate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Destroy(ctx, device.Ref{Owner: owner, KID: k.KID})
	ref := device.Ref{Owner: owner, KID: k.KID}
	digest := sha256.Sum256([]byte("fault"))

	for round := range 2 {
		other := p11.New(cfg.Module)
		if err := other.Finalize(); err != nil {
			t.Fatalf("round %d: finalising under the device: %v", round, err)
		}
		if err := d.Ping(ctx); err != nil {
			t.Fatalf("round %d: Ping after finalize: %v", round, err)
		}
		if err := other.Finalize(); err != nil {
			t.Fatal(err)
		}
		inits := d.Calls()[CallInitialize]
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sig, err := d.Sign(ctx, ref, digest[:])
				if err == nil && !device.VerifyRaw(k.Public, digest[:], sig) {
					err = errors.New("bad signature")
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: sign after finalize: %v", round, err)
			}
		}
		if n := d.Calls()[CallInitialize] - inits; n != 1 {
			t.Fatalf("round %d: %d re-initialisations for one failure", round, n)
		}
	}
}

// TestOutageIsUnavailable: the token goes away and a re-initialisation
// cannot bring it back (the library now reads a configuration without
// it): every operation fails with device.ErrUnavailable, which the key
// service answers as "try later". When the token is back, the next
// operation recovers.
func TestOutageIsUnavailable(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	d := openTest(t)
	owner := devicetest.NewOwner(t, "outage")
	k, err := d.Generate(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	ref := device.Ref{Owner: owner, KID: k.KID}
	defer d.Destroy(ctx, ref)
	digest := sha256.Sum256([]byte("outage"))
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)

	empty := t.TempDir()
	if err := os.Mkdir(filepath.Join(empty, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(empty, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(empty, "tokens")+"\nobjectstore.backend = file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	orig := os.Getenv("SOFTHSM2_CONF")
	t.Setenv("SOFTHSM2_CONF", conf)
	if err := p11.New(cfg.Module).Finalize(); err != nil {
		t.Fatal(err)
	}
	for _, op := range []struct {
		name string
		call func() error
	}{
		{"ping", func() error { return d.Ping(ctx) }},
		{"sign", func() error { _, err := d.Sign(ctx, ref, digest[:]); return err }},
		{"ecdh", func() error { _, err := d.ECDH(ctx, ref, peer.PublicKey()); return err }},
		{"generate", func() error { _, err := d.Generate(ctx, owner); return err }},
		{"public key", func() error { _, err := d.PublicKey(ctx, ref); return err }},
		{"list", func() error { _, err := d.List(ctx, owner); return err }},
		{"destroy", func() error { return d.Destroy(ctx, ref) }},
	} {
		if err := op.call(); !errors.Is(err, device.ErrUnavailable) {
			t.Errorf("%s during the outage: %v, want device.ErrUnavailable", op.name, err)
		}
	}
	os.Setenv("SOFTHSM2_CONF", orig)
	sig, err := d.Sign(ctx, ref, digest[:])
	if err != nil || !device.VerifyRaw(k.Public, digest[:], sig) {
		t.Fatalf("sign after the token came back: %v", err)
	}
}

// TestClassify: PKCS#11 codes meaning the token or library is gone or
// exhausted are device.ErrUnavailable; a stale handle is a missing key;
// anything else stays a fault.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err                   error
		unavailable, notFound bool
	}{
		{p11.Error(p11.CKR_DEVICE_ERROR), true, false},
		{p11.Error(p11.CKR_DEVICE_REMOVED), true, false},
		{p11.Error(p11.CKR_TOKEN_NOT_PRESENT), true, false},
		{p11.Error(p11.CKR_CRYPTOKI_NOT_INITIALIZED), true, false},
		{p11.Error(p11.CKR_SESSION_CLOSED), true, false},
		{p11.Error(p11.CKR_SESSION_HANDLE_INVALID), true, false},
		{p11.Error(p11.CKR_DEVICE_MEMORY), true, false},
		{p11.Error(p11.CKR_SESSION_COUNT), true, false},
		{p11.Error(p11.CKR_PIN_INCORRECT), true, false},
		{fmt.Errorf("C_Sign: %w", p11.Error(p11.CKR_DEVICE_ERROR)), true, false},
		{p11.Error(p11.CKR_KEY_HANDLE_INVALID), false, true},
		{p11.Error(p11.CKR_OBJECT_HANDLE_INVALID), false, true},
		{p11.Error(p11.CKR_MECHANISM_INVALID), false, false},
		{p11.Error(p11.CKR_TEMPLATE_INCONSISTENT), false, false},
		{errors.New("pkcs11: 2 private objects with kid x"), false, false},
		{context.Canceled, false, false},
	} {
		got := classify(tc.err)
		if errors.Is(got, device.ErrUnavailable) != tc.unavailable || errors.Is(got, device.ErrKeyNotFound) != tc.notFound {
			t.Errorf("classify(%v) = %v", tc.err, got)
		}
	}
	if classify(nil) != nil {
		t.Error("classify(nil) is an error")
	}
}

func TestWrongPIN(t *testing.T) {
	cfg := testConfig(t)
	cfg.PIN = "wrong-pin-0000"
	_, err := Open(context.Background(), cfg, nil)
	if err == nil {
		t.Fatal("opened with a wrong PIN")
	}
	if strings.Contains(err.Error(), cfg.PIN) {
		t.Fatal("error shows the PIN")
	}
}

func TestUnknownToken(t *testing.T) {
	cfg := testConfig(t)
	cfg.TokenLabel = "no-such-token"
	if _, err := Open(context.Background(), cfg, nil); !errors.Is(err, device.ErrUnavailable) {
		t.Fatalf("Open of a missing token = %v", err)
	}
}

func TestClosed(t *testing.T) {
	d, err := Open(context.Background(), testConfig(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if err := d.Ping(context.Background()); !errors.Is(err, device.ErrClosed) {
		t.Fatalf("Ping after Close = %v", err)
	}
}
