package fido2_test

import (
	"path/filepath"
	"testing"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/fido2"
	"github.com/wsca/wsca/manager/fido2/ctap2soft"
	"github.com/wsca/wsca/manager/kv"
)

// BenchmarkSignAssertion: an assertion through the manager (binding
// lookup, the public key read again, the thumbprint and the assertion
// verified) against the plugin called directly, interleaved, over the
// soft CTAP2 device (native) and the soft browser's JSON (browser).
func BenchmarkSignAssertion(b *testing.B) {
	for _, path := range []string{"Native", "Browser"} {
		b.Run(path, func(b *testing.B) {
			dir := b.TempDir()
			st, err := kv.OpenDir(filepath.Join(dir, "fido2"))
			if err != nil {
				b.Fatal(err)
			}
			dev := ctap2soft.New(ctap2soft.Options{})
			cfg := fido2.Config{RPID: rpID, Store: st, Transport: dev}
			env := manager.Env{}
			if path == "Browser" {
				cfg.Transport = nil
				env.Auth = &ctap2soft.Browser{Device: dev, Origin: origin}
			}
			p, err := fido2.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			bs, err := manager.OpenDirStore(filepath.Join(dir, "bindings"))
			if err != nil {
				b.Fatal(err)
			}
			m, err := manager.New(ctx, manager.Config{Store: bs, Default: fido2.ID, Auth: env.Auth}, p)
			if err != nil {
				b.Fatal(err)
			}
			k, _, err := m.Generate(ctx, manager.GenerateRequest{})
			if err != nil {
				b.Fatal(err)
			}
			challenge := make([]byte, 32)
			testenv.Interleave(b,
				func() error { _, _, err := p.SignAssertion(ctx, k.Handle, challenge, env); return err },
				func() error { _, _, err := m.SignAssertion(ctx, k.KID, challenge); return err })
		})
	}
}
