// Package ecp256 holds the P-256 encodings that the wallet side and the
// server share: SEC 1 point validation, the key id (kid) of a public key,
// and the conversion between raw r‖s and DER ECDSA signatures.
//
// It imports no other wsca package and nothing that needs cgo, so the R2PS
// client, the key manager and the verifiers build for js/wasm; package
// device re-uses it so that both sides have one implementation.
package ecp256
