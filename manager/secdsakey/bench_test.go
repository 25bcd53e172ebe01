package secdsakey_test

import (
	"testing"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/manager"
)

// BenchmarkSign: a signature through the manager against the plugin called
// directly, interleaved, over R2PS to an in-process server (SQLite,
// SoftHSM): each one SECDSA instruction (split signing on the wallet, one
// HSM derive and the key's signature on the server, a record).
func BenchmarkSign(b *testing.B) {
	s := newServer(b)
	h := &host{pin: "1234"}
	_, p := s.activated(b, h)
	st, err := manager.OpenDirStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	m, err := manager.New(ctx, manager.Config{Store: st, Default: p.ID(), Auth: h}, p)
	if err != nil {
		b.Fatal(err)
	}
	k, _, err := m.Generate(ctx, manager.GenerateRequest{})
	if err != nil {
		b.Fatal(err)
	}
	d := make([]byte, 32)
	env := manager.Env{Auth: h}
	testenv.Interleave(b,
		func() error { _, _, err := p.Sign(ctx, k.Handle, d, env); return err },
		func() error { _, _, err := m.Sign(ctx, k.KID, d); return err })
}
