package r2ps_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/internal/hostile"
	"github.com/wsca/wsca/r2ps"
)

// preAuth runs what the server runs on a body before it knows the sender,
// in the order of r2ps/dispatch: classify, then open the JWE (a software
// ECDH key standing in for the HSM; no 2FA session exists) or verify the
// compat JWS, accepting a key embedded in the header as a 2fa_registration
// may, then decode the payload and the data.
func preAuth(body []byte, server *ecdh.PrivateKey) error {
	embedded := func(_ string, k *jose.JSONWebKey) (*ecdsa.PublicKey, error) {
		if k == nil {
			return nil, r2ps.ErrUnknownKey
		}
		return k.Key.(*ecdsa.PublicKey), nil
	}
	kind, err := r2ps.Classify(body)
	if err != nil {
		return err
	}
	if kind == r2ps.KindJWS {
		payload, _, err := r2ps.VerifyJWS(body, r2ps.TypRequest, embedded)
		if err != nil {
			return err
		}
		req, _, err := r2ps.DecodeCompat(payload)
		if err != nil {
			return err
		}
		return r2ps.DecodeData(req.Data, new(r2ps.TFARequest))
	}
	j, err := r2ps.ParseJWE(body)
	if err != nil {
		return err
	}
	if j.Mode() == r2ps.Mode2FA {
		_, err := j.Open2FA(func(string) ([]byte, error) { return nil, r2ps.ErrUnknownSession })
		return err
	}
	env, err := j.Open1FA(func(epk *ecdh.PublicKey) ([]byte, error) { return server.ECDH(epk) })
	if err != nil {
		return err
	}
	payload, _, err := r2ps.VerifyJWS(env.JWS, r2ps.TypRequest, embedded)
	if err != nil {
		return err
	}
	req, err := r2ps.DecodeRequest(payload)
	if err != nil {
		return err
	}
	return r2ps.DecodeData(req.Data, new(r2ps.TFARequest))
}

// BenchmarkHostile measures the CPU time and allocations the server spends
// on each hostile body of internal/hostile before it knows the sender.
// Before the caps of issue 6 (defect 5) the worst took 0.1–0.3 s and
// 25–45 MB; docs/protocol.md §1 has the numbers after.
func BenchmarkHostile(b *testing.B) {
	server, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	ss, err := hostile.SelfSigned(server.PublicKey(), "kid")
	if err != nil {
		b.Fatal(err)
	}
	for _, h := range append(hostile.Structural(), ss...) {
		b.Run(h.Name, func(b *testing.B) {
			if len(h.Body) > hostile.Limit {
				b.Fatalf("%d bytes", len(h.Body))
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(h.Body)))
			for b.Loop() {
				if err := preAuth(h.Body, server); err == nil {
					b.Fatal("accepted")
				}
			}
		})
	}
}
