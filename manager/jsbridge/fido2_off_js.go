//go:build js && wasm && !wsca_fido2

package jsbridge

import (
	"fmt"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/kv"
)

// newFIDO2 is the fido2 plugin; this build has none (build with the tag
// wsca_fido2 once manager/fido2 is there).
func newFIDO2(string, kv.Store) (manager.Plugin, error) {
	return nil, fmt.Errorf("%w: this build has no fido2 plugin (build tag wsca_fido2)", manager.ErrNoPlugin)
}
