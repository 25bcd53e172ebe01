//go:build js && wasm

package jsbridge

import (
	"fmt"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/fido2"
	"github.com/wsca/wsca/manager/kv"
)

// newFIDO2 is the fido2 plugin with no transport: it runs its
// ceremonies through AuthCallback.RequestWebAuthnAssertion (the host's
// callbacks.webauthn).
func newFIDO2(rpID string, store kv.Store) (manager.Plugin, error) {
	p, err := fido2.New(fido2.Config{RPID: rpID, Store: store})
	if err != nil {
		// Only the host's configuration can be wrong here.
		return nil, fmt.Errorf("%w: %v", manager.ErrInvalidInput, err)
	}
	return p, nil
}
