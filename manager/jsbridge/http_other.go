//go:build !(js && wasm)

package jsbridge

import (
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/r2ps/client/httptransport"
)

func newTransport() client.Transport { return httptransport.New(nil) }
