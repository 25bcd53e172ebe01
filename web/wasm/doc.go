//go:build !(js && wasm)

// Command wasm is the key manager built for GOOS=js GOARCH=wasm
// (scripts/build-wasm.sh); built for another platform it only says so.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "wasm: build with GOOS=js GOARCH=wasm (scripts/build-wasm.sh)")
	os.Exit(2)
}
