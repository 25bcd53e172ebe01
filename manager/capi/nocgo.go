//go:build !cgo

// Command capi is the key manager's C ABI; it exists only in a cgo build
// (go build -buildmode=c-shared needs cgo).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "capi: the C ABI needs a cgo build: CGO_ENABLED=1 go build -buildmode=c-shared ./manager/capi")
	os.Exit(2)
}
