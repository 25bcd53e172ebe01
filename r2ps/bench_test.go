package r2ps

import (
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// BenchmarkServerOpen measures the server's cost per request before the
// service runs: decrypt and verify (and, for "full", decode the payload and
// check jwe_hash), against go-jose's own decrypt and verify of the same
// messages. The agreement key is a software key here; with an HSM its one
// ECDH dominates.
func BenchmarkServerOpen(b *testing.B) {
	f := fixedFixture(b)
	req := f.request(b, TypeSignECDSA, SignRequest{KID: "0123456789abcdef0123456789abcdef", TBSHash: make([]byte, 32)})
	msg1, msg2 := f.seal1FA(b, req), f.seal2FA(b, req)
	serverPriv := ecdhPrivToECDSA(b, f.serverAgree)

	b.Run("1FA/r2ps", func(b *testing.B) {
		for b.Loop() {
			env, err := Open1FA(msg1, f.agree)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := VerifyJWS(env.JWS, TypRequest, f.cskKey); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("1FA/r2ps-full", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := f.serverOpen(b, msg1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("1FA/go-jose", func(b *testing.B) {
		for b.Loop() {
			obj, err := jose.ParseEncryptedCompact(string(msg1), []jose.KeyAlgorithm{jose.ECDH_ES}, []jose.ContentEncryption{jose.A256GCM})
			if err != nil {
				b.Fatal(err)
			}
			jws, err := obj.Decrypt(serverPriv)
			if err != nil {
				b.Fatal(err)
			}
			goJoseVerify(b, jws, f)
		}
	})
	b.Run("2FA/r2ps", func(b *testing.B) {
		for b.Loop() {
			env, err := Open2FA(msg2, f.lookup)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := VerifyJWS(env.JWS, TypRequest, f.cskKey); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("2FA/r2ps-full", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := f.serverOpen(b, msg2); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("2FA/go-jose", func(b *testing.B) {
		for b.Loop() {
			obj, err := jose.ParseEncryptedCompact(string(msg2), []jose.KeyAlgorithm{jose.DIRECT}, []jose.ContentEncryption{jose.A256GCM})
			if err != nil {
				b.Fatal(err)
			}
			jws, err := obj.Decrypt(f.sessionKey)
			if err != nil {
				b.Fatal(err)
			}
			goJoseVerify(b, jws, f)
		}
	})
}

func goJoseVerify(b *testing.B, jws []byte, f *fixture) {
	sig, err := jose.ParseSignedCompact(string(jws), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := sig.Verify(&f.csk.PublicKey); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkClientSeal measures building a request: sign, then encrypt.
func BenchmarkClientSeal(b *testing.B) {
	f := fixedFixture(b)
	req := f.request(b, TypeSignECDSA, SignRequest{KID: "0123456789abcdef0123456789abcdef", TBSHash: make([]byte, 32)})
	b.Run("1FA", func(b *testing.B) {
		for b.Loop() {
			f.seal1FA(b, req)
		}
	})
	b.Run("2FA", func(b *testing.B) {
		for b.Loop() {
			f.seal2FA(b, req)
		}
	})
}

// BenchmarkDecodeRequest measures the strict payload decoder alone.
func BenchmarkDecodeRequest(b *testing.B) {
	f := fixedFixture(b)
	req := f.request(b, TypeCreateSession, TFARequest{Protocol: ProtocolOPAQUE, State: StateEvaluate, PData: make([]byte, 98)})
	req.JWEHash = JWEHash("x")
	payload, err := EncodeRequest(req)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		r, err := DecodeRequest(payload)
		if err != nil {
			b.Fatal(err)
		}
		var t TFARequest
		if err := DecodeData(r.Data, &t); err != nil {
			b.Fatal(err)
		}
	}
}
