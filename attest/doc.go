// Package attest builds and verifies the attestations a Wallet Provider
// issues for wallet units served by wsca, all of them compact ES256 JWS with
// an x5c certificate chain (HAIP 1.0 §4.5.1: leaf first, leaf not
// self-signed, no trust anchor in the chain):
//
//   - the key attestation, typ "key-attestation+jwt" (OpenID4VCI 1.0
//     Appendix D, EUDI TS3 v1.5.2: key_storage_status, no iss);
//   - the wallet instance attestation, typ "oauth-client-attestation+jwt"
//     (draft-ietf-oauth-attestation-based-client-auth-11 with the TS3 v1.5
//     claims: wallet_version, client_status; iss optional), and its
//     proof of possession, typ "oauth-client-attestation-pop+jwt";
//   - the proof of association, typ "wsca-poa+jwt" (ARF ACP_01): the
//     Wallet Provider states that one WSCA holds a set of keys for one unit.
//
// The exact profile (headers, claims, lifetimes, verification steps) is
// docs/attestations.md. Signing goes through a crypto.Signer, so the key can
// live on a PKCS#11 token; certificates and a JWKS for the signing keys come
// from certs.go and keyset.go (a development CA included).
//
// The package is wallet side: it imports no server package, builds without
// cgo and for js/wasm, and keeps no state. Verifiers return typed errors
// (errors.Is against the Err values); their messages carry no secret.
package attest
