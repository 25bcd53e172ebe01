package pin_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"github.com/bytemare/opaque"
	"github.com/bytemare/opaque/message"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/store"
)

// BenchmarkLogin compares the server side of a whole login (LoginStart and
// LoginFinish, store round trips included) with bytemare's GenerateKE2
// alone (target: at most 1.3 times).
//
// GenerateKE2 is bytemare alone. For the logins, ns/op includes the
// client's work, server-ns/op does not, and x-GenerateKE2 divides
// server-ns/op by the time of a bare GenerateKE2 run in the same
// iterations, so that both see the same load. store-calls runs the store
// calls of one login alone, to show the store's share.
//
//	go test -run '^$' -bench BenchmarkLogin ./pin/
func BenchmarkLogin(b *testing.B) {
	b.Run("GenerateKE2", func(b *testing.B) {
		op, rec, ke1 := bareKE2(b)
		for b.Loop() {
			if _, _, err := op.GenerateKE2(ke1, rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, be := range testenv.StoreBackends() {
		b.Run("LoginStart+LoginFinish/"+be.Name, func(b *testing.B) {
			e := newEnv(b, be.DSN(b), nil)
			e.register(b, e.srv, "u", "123456")
			op, rec, _ := bareKE2(b)
			ctx := context.Background()
			// The server calls are timed by hand: b.StopTimer around the
			// client's work is costly enough to blur the result.
			var server, bare time.Duration
			for b.Loop() {
				c := e.startClient(b, "123456")
				ke1, err := op.Deserialize.KE1(c.ke1)
				if err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				if _, _, err := op.GenerateKE2(ke1, rec); err != nil {
					b.Fatal(err)
				}
				bare += time.Since(t0)

				t0 = time.Now()
				id, ke2, err := e.srv.LoginStart(ctx, "u", hsm, c.ke1, unlimited)
				server += time.Since(t0)
				if err != nil {
					b.Fatal(err)
				}
				ke3, _ := c.finish(b, ke2)
				t0 = time.Now()
				_, err = e.srv.LoginFinish(ctx, id, "u", hsm, ke3)
				server += time.Since(t0)
				if err != nil {
					b.Fatal(err)
				}
				if err := e.srv.End(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(server.Nanoseconds())/float64(b.N), "server-ns/op")
			b.ReportMetric(float64(server)/float64(bare), "x-GenerateKE2")
		})
		b.Run("store-calls/"+be.Name, func(b *testing.B) {
			e := newEnv(b, be.DSN(b), nil)
			e.register(b, e.srv, "u", "123456")
			ctx := context.Background()
			secret := make([]byte, 80)
			var n uint64
			for b.Loop() {
				n++
				h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, n))
				now := e.clock.Now()
				if _, ok, err := e.st.TakeAttempt(ctx, "u", hsm, pin.DefaultMaxAttempts, now); err != nil || !ok {
					b.Fatal(ok, err)
				}
				if _, err := e.st.GetPINRecord(ctx, "u", hsm); err != nil {
					b.Fatal(err)
				}
				if err := e.st.CreateSession(ctx, store.Session{IDHash: h[:], UnitID: "u", Context: hsm, State: store.SessionPending,
					Secret: secret, UsesLeft: store.Unlimited, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
					b.Fatal(err)
				}
				if _, err := e.st.GetSession(ctx, h[:], now); err != nil {
					b.Fatal(err)
				}
				if err := e.st.ClearAttempts(ctx, "u", hsm, now); err != nil {
					b.Fatal(err)
				}
				if err := e.st.VerifySession(ctx, h[:], secret[:48], now.Add(time.Minute), now); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := e.st.DeleteSession(ctx, h[:]); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// bareKE2 returns a bytemare server of the pin profile with key material,
// a registered client's record and a KE1.
func bareKE2(b *testing.B) (*opaque.Server, *opaque.ClientRecord, *message.KE1) {
	b.Helper()
	conf, err := pin.Profile{}.Configuration()
	if err != nil {
		b.Fatal(err)
	}
	op, err := conf.Server()
	if err != nil {
		b.Fatal(err)
	}
	sk, pk := conf.KeyGen()
	if err := op.SetKeyMaterial(&opaque.ServerKeyMaterial{
		PrivateKey: sk, PublicKeyBytes: pk.Encode(), OPRFGlobalSeed: conf.GenerateOPRFSeed(),
	}); err != nil {
		b.Fatal(err)
	}
	credID := []byte("hsm|u")
	c, err := conf.Client()
	if err != nil {
		b.Fatal(err)
	}
	req, err := c.RegistrationInit([]byte("123456"))
	if err != nil {
		b.Fatal(err)
	}
	resp, err := op.RegistrationResponse(req, credID, nil)
	if err != nil {
		b.Fatal(err)
	}
	reg, _, err := c.RegistrationFinalize(resp, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	if c, err = conf.Client(); err != nil {
		b.Fatal(err)
	}
	ke1, err := c.GenerateKE1([]byte("123456"))
	if err != nil {
		b.Fatal(err)
	}
	return op, &opaque.ClientRecord{RegistrationRecord: reg, CredentialIdentifier: credID}, ke1
}
