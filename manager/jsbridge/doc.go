// Package jsbridge runs the key manager inside a JavaScript host (a
// browser extension, a page, Node) when built with GOOS=js GOARCH=wasm:
// a [kv.Store] over the host's asynchronous storage object, the
// manager's callbacks over the host's functions, and the promise-based
// API of docs/manager.md ("In the browser"), published as
// globalThis.WSCAManager by [Export].
//
// The parts that do not touch syscall/js (the error codes, the compact
// JWS, the browser's R2PS plugin with its device keys kept encrypted in
// the store) build everywhere and are tested natively; the rest is tested
// under Node (scripts/test.sh runs GOOS=js GOARCH=wasm go test).
package jsbridge
