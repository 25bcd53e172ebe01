// Package walletside keeps the list of wallet-side packages (packages.txt)
// and its test, which fails if any of them depends on server code: the
// PIN server, the store and its SQL drivers, the key service, the device
// layer and PKCS#11, the HTTP server, the R2PS dispatcher, or any module
// package not itself on the list. scripts/test.sh builds the same list
// without cgo and for js/wasm.
package walletside
