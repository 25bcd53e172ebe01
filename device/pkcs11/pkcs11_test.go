//go:build cgo && !nopkcs11

package pkcs11

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"errors"
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
	if d.Info().Software {
		t.Fatal("PKCS#11 device reports itself as software")
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
