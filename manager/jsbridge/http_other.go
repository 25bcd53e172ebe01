//go:build !(js && wasm)

package jsbridge

import (
	"net/http"
	"time"
)

func newHTTPClient() *http.Client { return &http.Client{Timeout: 30 * time.Second} }
