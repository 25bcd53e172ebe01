//go:build js && wasm

// Command wasm is the key manager for a JavaScript host: built with
// scripts/build-wasm.sh into web/dist/manager.wasm, it publishes
// globalThis.WSCAManager (docs/manager.md, "In the browser") and waits.
package main

import (
	"runtime/debug"
	"syscall/js"

	"github.com/wsca/wsca/manager/jsbridge"
)

func main() {
	version := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version
	}
	jsbridge.Export(js.Global(), version)
	select {}
}
