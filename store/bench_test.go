package store_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
)

// BenchmarkStore measures the hot key paths on each backend, e.g.
// BenchmarkStore/sqlite/GetKey.
func BenchmarkStore(b *testing.B) {
	for _, be := range testenv.StoreBackends() {
		b.Run(be.Name, func(b *testing.B) {
			s := open(b, be.DSN(b))
			mustCreateUnit(b, s, "u")
			pub := point(b)
			var n atomic.Int64
			key := func() store.Key {
				return store.Key{
					KID:       fmt.Sprint("k", n.Add(1)),
					UnitID:    "u",
					PublicKey: pub,
					Backend:   "soft",
					State:     store.KeyActive,
					CreatedAt: at(0),
				}
			}
			hot := key()
			mustInsertKey(b, s, hot)

			b.Run("InsertKey", func(b *testing.B) {
				for b.Loop() {
					if err := s.InsertKey(b.Context(), key()); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("GetKey", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.GetKey(b.Context(), hot.KID); err != nil {
						b.Fatal(err)
					}
				}
			})
			// The replay check and key read of a key operation: one
			// statement, against the two it replaces.
			var nonce atomic.Int64
			nextNonce := func() []byte { return hash(fmt.Sprint("n", nonce.Add(1))) }
			b.Run("UseNonceForKey", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.UseNonceForKey(b.Context(), nextNonce(), at(time.Hour), hot.KID); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("UseNonceThenGetKeyAccess", func(b *testing.B) {
				for b.Loop() {
					if err := s.UseNonce(b.Context(), nextNonce(), at(time.Hour)); err != nil {
						b.Fatal(err)
					}
					if _, err := s.GetKeyAccess(b.Context(), hot.KID); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("GetKeyParallel", func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := s.GetKey(b.Context(), hot.KID); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}
