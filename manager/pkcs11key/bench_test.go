//go:build cgo

package pkcs11key_test

import (
	"context"
	"os"
	"testing"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/manager"
)

// BenchmarkSign: a signature through the manager against the plugin called
// directly, interleaved, on SoftHSM.
func BenchmarkSign(b *testing.B) {
	ctx := context.Background()
	p := token(b, os.Getenv("WSCA_TEST_PKCS11_PIN"))
	st, err := manager.OpenDirStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	m, err := manager.New(ctx, manager.Config{Store: st, Default: p.ID()}, p)
	if err != nil {
		b.Fatal(err)
	}
	k, _, err := m.Generate(ctx, manager.GenerateRequest{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _, _ = m.Delete(ctx, k.KID) })
	d := make([]byte, 32)
	testenv.Interleave(b,
		func() error { _, _, err := p.Sign(ctx, k.Handle, d, manager.Env{}); return err },
		func() error { _, _, err := m.Sign(ctx, k.KID, d); return err })
}
