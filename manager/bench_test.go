package manager_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/wsca/wsca/manager"
)

// BenchmarkDirStore: the binding store's operations on the file system
// (each write is a synced file and a synced directory).
func BenchmarkDirStore(b *testing.B) {
	st, err := manager.OpenDirStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	kids := make([]manager.KID, 256)
	for i := range kids {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		kids[i], _ = manager.Thumbprint(&k.PublicKey)
	}
	now := time.Now().UTC()
	b.Run("BindUnbind", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			kid := kids[i%len(kids)]
			if err := st.Bind(ctx, manager.Binding{KID: kid, Plugin: "p", Handle: "h", Created: now}); err != nil {
				b.Fatal(err)
			}
			if err := st.Unbind(ctx, kid); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, kid := range kids {
		if err := st.Bind(ctx, manager.Binding{KID: kid, Plugin: "p", Handle: "h", Created: now}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Read", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := st.Binding(ctx, kids[i%len(kids)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(fmt.Sprintf("List%d", len(kids)), func(b *testing.B) {
		for b.Loop() {
			if _, err := st.Bindings(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
