package softkey_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/softkey"
)

// BenchmarkSign: a signature through the manager (binding lookup and
// checks) against the plugin called directly, interleaved.
func BenchmarkSign(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	p, err := softkey.Open(filepath.Join(dir, "soft"), kek(1))
	if err != nil {
		b.Fatal(err)
	}
	st, err := manager.OpenDirStore(filepath.Join(dir, "bindings"))
	if err != nil {
		b.Fatal(err)
	}
	m, err := manager.New(ctx, manager.Config{Store: st, Default: softkey.ID}, p)
	if err != nil {
		b.Fatal(err)
	}
	k, _, err := m.Generate(ctx, manager.GenerateRequest{})
	if err != nil {
		b.Fatal(err)
	}
	d := make([]byte, 32)
	testenv.Interleave(b,
		func() error { _, _, err := p.Sign(ctx, k.Handle, d, manager.Env{}); return err },
		func() error { _, _, err := m.Sign(ctx, k.KID, d); return err })
}
