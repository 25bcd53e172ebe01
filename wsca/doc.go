// Package wsca holds the services of the WSCA role (docs/wsca.md): what a
// wallet unit asks of its Wallet Provider beyond the use of its keys.
// Pseudonym storage (ARF PA_14) is here; attestations, lifecycle and status
// lists follow.
//
// The services read public keys, owners and states from the store and
// never open a wallet key: the WSCA role can run in a process that has no
// wallet-key device.
package wsca
