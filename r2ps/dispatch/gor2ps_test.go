package dispatch_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wsca/wsca/attest"
	"github.com/wsca/wsca/internal/gor2pswire"
	wscastack "github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/r2ps/client/httptransport"
	"github.com/wsca/wsca/r2ps/dispatch"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// TestGoR2PSServiceWire: a wallet speaking go-r2ps-service pkg/client's
// wire, with a CSK the operator provisioned, registers, logs in, generates,
// lists, signs, does ECDH and changes its PIN; in jwe mode only inside the
// 2FA JWE, in bearer mode also as bare JWS. With compat off, or for a unit
// enrolled under the strict profile, it is refused.
func TestGoR2PSServiceWire(t *testing.T) {
	for _, tc := range []struct {
		mode dispatch.Compat
		jwe  bool
	}{
		{dispatch.CompatSessionJWE, true},
		{dispatch.CompatBearer, false},
		{dispatch.CompatBearer, true},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			ctx := t.Context()
			r := stacktest.Start(t, testenv.SQLite(t), testdevice.Soft(t), func(o *wscastack.Options) { o.Compat = tc.mode })
			keys, err := client.FetchServerKeys(ctx, httptransport.New(nil), r.URL)
			if err != nil {
				t.Fatal(err)
			}
			unit := wscd.NewUnitID()
			if err := r.Units.Create(ctx, unit); err != nil {
				t.Fatal(err)
			}
			csk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			provision(t, r.ServerKeys, r.Store, unit, csk)
			var opts []gor2pswire.Option
			if tc.jwe {
				opts = append(opts, gor2pswire.WithJWE())
			}
			w := gor2pswire.New(r.URL, unit, "hsm", csk, keys.Signing, opts...)
			if err := w.Register(ctx, []byte("1234")); err != nil {
				t.Fatalf("Register: %v", err)
			}
			if err := w.Register(ctx, []byte("6666")); err == nil {
				t.Fatal("a second code-less registration replaced the PIN")
			}
			if _, err := w.Authenticate(ctx, []byte("1234")); err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			k, err := w.Generate(ctx)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if list, err := w.ListKeys(ctx); err != nil || len(list) != 1 {
				t.Fatalf("ListKeys: %v %v", list, err)
			}
			if _, err := w.Sign(ctx, k.KID, sha("m")); err != nil {
				t.Fatalf("Sign: %v", err)
			}
			peer, _ := ecdh.P256().GenerateKey(rand.Reader)
			if _, err := w.ECDH(ctx, k.KID, peer.PublicKey()); err != nil {
				t.Fatalf("ECDH: %v", err)
			}
			// The WSCA types as pkg/client sends them (1FA), in its answers' shape.
			var wka struct {
				WKA string `json:"wka"`
			}
			if err := w.Call1FA(ctx, r2ps.TypeWKA, map[string]any{"keys_to_attest": []string{k.KID}, "ver": "draft-008"}, &wka); err != nil {
				t.Fatalf("eudiw_wka_etsi: %v", err)
			}
			var wia struct {
				WIA string `json:"wia"`
			}
			if err := w.Call1FA(ctx, r2ps.TypeWIA, map[string]any{"keys_to_attest": []string{k.KID}}, &wia); err != nil {
				t.Fatalf("eudiw_wia_etsi: %v", err)
			}
			for name, jwt := range map[string]string{attest.TypKeyAttestation: wka.WKA, attest.TypClientAttestation: wia.WIA} {
				hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
				if !strings.Contains(string(hdr), `"typ":"`+name+`"`) {
					t.Errorf("%s: header %s", name, hdr)
				}
			}
			if err := w.ChangePIN(ctx, []byte("4321")); err != nil {
				t.Fatalf("ChangePIN: %v", err)
			}
			if _, err := w.Authenticate(ctx, []byte("4321")); err != nil {
				t.Fatalf("Authenticate with the new PIN: %v", err)
			}
			if tc.mode == dispatch.CompatSessionJWE {
				// The issue-6 request: CSK plus session id, no session key.
				bare := gor2pswire.New(r.URL, unit, "hsm", csk, keys.Signing)
				bare.UseSession(w.Session())
				_, err := bare.Sign(ctx, k.KID, sha("m"))
				var se *gor2pswire.ServerError
				if !errors.As(err, &se) || se.Code != r2ps.CodeUnauthorized {
					t.Fatalf("bare 2FA request in jwe mode: %v, want UNAUTHORIZED", err)
				}
			}
		})
	}
	t.Run("off", func(t *testing.T) {
		ctx := t.Context()
		r := stacktest.Start(t, testenv.SQLite(t), testdevice.Soft(t), nil)
		keys, _ := client.FetchServerKeys(ctx, httptransport.New(nil), r.URL)
		unit := wscd.NewUnitID()
		r.Units.Create(ctx, unit)
		csk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		provision(t, r.ServerKeys, r.Store, unit, csk)
		if err := gor2pswire.New(r.URL, unit, "hsm", csk, keys.Signing).Register(ctx, []byte("1234")); err == nil {
			t.Fatal("compat request served with compat off")
		}
	})
	t.Run("strict unit", func(t *testing.T) {
		g := newRigWith(t, dispatch.CompatBearer)
		w := g.enrol("hsm", "")
		gw := gor2pswire.New(g.url, w.unit, "hsm", w.csk, g.server.Signing)
		_, err := gw.Authenticate(t.Context(), []byte("123456"))
		var se *gor2pswire.ServerError
		if !errors.As(err, &se) || se.Code != r2ps.CodeAccessDenied {
			t.Fatalf("compat login of a strict unit: %v, want ACCESS_DENIED", err)
		}
	})
}

// provision binds csk to the unit as its compat-profile signing key, as an
// operator does.
func provision(t *testing.T, sk *wscd.ServerKeys, st *store.Store, unit string, csk *ecdsa.PrivateKey) {
	t.Helper()
	sealer, err := sk.Sealer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := csk.PublicKey.Bytes()
	ck := store.ClientKey{KID: r2ps.Thumbprint(&csk.PublicKey), UnitID: unit, Usage: store.UsageSign, PublicKey: pub,
		Profile: dispatch.ProfileCompat, CreatedAt: time.Now()}
	ck.MAC = wscd.ClientKeyMAC(sealer, ck)
	if err := st.PutClientKey(t.Context(), ck); err != nil {
		t.Fatal(err)
	}
}
