//go:build !cgo

package pkcs11key

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"

	"github.com/wsca/wsca/manager"
)

// Plugin is the PKCS#11 plugin; in a build without cgo it cannot be made.
type Plugin struct{}

// New fails: PKCS#11 needs cgo.
func New(Config) (*Plugin, error) { return nil, ErrNotCompiled }

func (*Plugin) ID() string                           { return "" }
func (*Plugin) DisplayName() string                  { return "" }
func (*Plugin) NewKeyProperties() manager.Properties { return manager.Properties{} }
func (*Plugin) Close() error                         { return nil }
func (*Plugin) Generate(context.Context, string, manager.Env) (manager.PluginKey, []string, error) {
	return manager.PluginKey{}, nil, ErrNotCompiled
}
func (*Plugin) Lookup(context.Context, string, manager.Env) (manager.PluginKey, bool, error) {
	return manager.PluginKey{}, false, ErrNotCompiled
}
func (*Plugin) Sign(context.Context, string, []byte, manager.Env) ([]byte, []string, error) {
	return nil, nil, ErrNotCompiled
}
func (*Plugin) ECDH(context.Context, string, *ecdh.PublicKey, manager.Env) ([]byte, []string, error) {
	return nil, nil, ErrNotCompiled
}
func (*Plugin) PublicKey(context.Context, string, manager.Env) (*ecdsa.PublicKey, error) {
	return nil, ErrNotCompiled
}
func (*Plugin) Properties(context.Context, string, manager.Env) (manager.Properties, error) {
	return manager.Properties{}, ErrNotCompiled
}
func (*Plugin) List(context.Context, manager.Env) ([]manager.PluginKey, error) {
	return nil, ErrNotCompiled
}
func (*Plugin) Delete(context.Context, string, manager.Env) ([]string, error) {
	return nil, ErrNotCompiled
}
