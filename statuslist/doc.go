// Package statuslist implements Token Status Lists
// (draft-ietf-oauth-status-list-21) as wsca issues them and as wallets and
// relying parties check them: the bit-packed list and its ZLIB encoding,
// signed status list tokens in JWT (statuslist+jwt) and CWT
// (COSE_Sign1, application/statuslist+cwt) form, their verification, the
// status reference a referenced token carries, and the keyed permutation
// that makes allocated indices unpredictable.
//
// The package imports no server code, builds without cgo and for js/wasm
// (it is listed in internal/walletside/packages.txt). docs/status-lists.md
// is the profile: what is issued, what a verifier checks.
package statuslist
