package pin_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/pin"
)

// BenchmarkOPRF compares OPRF keys on the device (issue 11) with OPRF keys
// derived in software, in one run (docs/benchmarks.md, "Issue 11"):
//
//   - login: LoginStart and LoginFinish of a registered unit;
//   - loginstart and loginstart-fake: LoginStart alone, of a registered
//     unit and of a unit without a record (the fake key), to compare
//     their times;
//   - register: RegistrationResponse and FinishRegistration (with the
//     device: one key generation and two derives).
//
// server-ns/op times the server calls alone (the client's work is
// excluded); with SoftHSM in the process and SQLite, that is the CPU the
// server spends. derives/op and device-calls/op count the device's
// primitive calls (C_ functions for PKCS#11).
//
//	go test -run '^$' -bench BenchmarkOPRF ./pin/
func BenchmarkOPRF(b *testing.B) {
	type mode struct {
		name string
		dev  func(testing.TB) device.Device
	}
	modes := []mode{
		{"software", nil},
		{"hsm-token", testdevice.PKCS11},
		{"hsm-wrapped", testdevice.PKCS11Wrapped},
	}
	for _, m := range modes {
		setup := func(b *testing.B) (*env, device.Device) {
			var dev device.Device
			mod := func(*pin.Config) {}
			if m.dev != nil {
				dev = m.dev(b)
				mod = withDevice(dev.(pin.OPRFDevice))
			}
			e := newEnv(b, testenv.SQLite(b), mod)
			return e, dev
		}
		report := func(b *testing.B, server time.Duration, dev device.Device, before map[string]uint64) {
			b.ReportMetric(float64(server.Nanoseconds())/float64(b.N), "server-ns/op")
			if dev == nil {
				b.ReportMetric(0, "derives/op")
				b.ReportMetric(0, "device-calls/op")
				return
			}
			var all uint64
			d := device.CallsDelta(before, dev.Calls())
			for _, n := range d {
				all += n
			}
			b.ReportMetric(float64(derives(d))/float64(b.N), "derives/op")
			b.ReportMetric(float64(all)/float64(b.N), "device-calls/op")
		}
		b.Run("login/"+m.name, func(b *testing.B) {
			e, dev := setup(b)
			e.register(b, e.srv, "u", "123456")
			ctx := context.Background()
			e.login(b, e.srv, "u", "123456", unlimited) // warm caches
			var server time.Duration
			var before map[string]uint64
			if dev != nil {
				before = dev.Calls()
			}
			for b.Loop() {
				c := e.startClient(b, "123456")
				t0 := time.Now()
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
			report(b, server, dev, before)
		})
		for _, fake := range []bool{false, true} {
			name := "loginstart/"
			if fake {
				name = "loginstart-fake/"
			}
			b.Run(name+m.name, func(b *testing.B) {
				e, dev := setup(b)
				e.register(b, e.srv, "u", "123456")
				unit := "u"
				if fake {
					unit = "ghost"
				}
				ctx := context.Background()
				ke1 := e.startClient(b, "123456").ke1
				if _, _, err := e.srv.LoginStart(ctx, unit, hsm, ke1, unlimited); err != nil {
					b.Fatal(err)
				}
				var server time.Duration
				counted := map[string]uint64{}
				for b.Loop() {
					// Unlocked each time outside the timer: every LoginStart is
					// a counted attempt.
					b.StopTimer()
					if err := e.srv.Unlock(ctx, unit, hsm); err != nil {
						b.Fatal(err)
					}
					var c0 map[string]uint64
					if dev != nil {
						c0 = dev.Calls()
					}
					b.StartTimer()
					t0 := time.Now()
					if _, _, err := e.srv.LoginStart(ctx, unit, hsm, ke1, unlimited); err != nil {
						b.Fatal(err)
					}
					server += time.Since(t0)
					if dev != nil {
						for k, v := range device.CallsDelta(c0, dev.Calls()) {
							counted[k] += v
						}
					}
				}
				// report takes a before and reads the device again: give it
				// the counts of the timed calls alone.
				before := map[string]uint64{}
				if dev != nil {
					for k, v := range dev.Calls() {
						before[k] = v - counted[k]
					}
				}
				report(b, server, dev, before)
			})
		}
		b.Run("register/"+m.name, func(b *testing.B) {
			e, dev := setup(b)
			e.createUnit(b, "u")
			ctx := context.Background()
			var server time.Duration
			var before map[string]uint64
			if dev != nil {
				before = dev.Calls()
			}
			var destroyCalls uint64
			for i := 0; b.Loop(); i++ {
				c, _ := e.conf.Client()
				req, err := c.RegistrationInit([]byte("123456"))
				if err != nil {
					b.Fatal(err)
				}
				requester := fmt.Sprint("r", i)
				t0 := time.Now()
				raw, err := e.srv.RegistrationResponse(ctx, "u", hsm, requester, req.Serialize())
				server += time.Since(t0)
				if err != nil {
					b.Fatal(err)
				}
				resp, _ := c.Deserialize.RegistrationResponse(raw)
				up, _, err := c.RegistrationFinalize(resp, nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				t0 = time.Now()
				rec, err := e.srv.FinishRegistration(ctx, "u", hsm, requester, up.Serialize())
				server += time.Since(t0)
				if err != nil {
					b.Fatal(err)
				}
				if dev != nil {
					// Not stored: destroy the key, uncounted.
					b.StopTimer()
					c0 := dev.Calls()
					pubRef := oprfRef(b, "u", rec.OPRF)
					if err := dev.Destroy(ctx, pubRef); err != nil {
						b.Fatal(err)
					}
					for _, v := range device.CallsDelta(c0, dev.Calls()) {
						destroyCalls += v
					}
					b.StartTimer()
				}
			}
			report(b, server, dev, before)
			b.ReportMetric(float64(b.N)/server.Seconds(), "registrations/s")
			if dev != nil {
				b.ReportMetric(float64(destroyCalls)/float64(b.N), "destroy-calls/op(excluded)")
			}
		})
	}
}
