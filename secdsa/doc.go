// Package secdsa implements Split-ECDSA (SECDSA) for an HSM-based wallet
// after E. Verheul, "An HSM-based EUDI wallet using Split-ECDSA (SECDSA)":
// the wallet's PIN is checked inside the provider's HSM boundary with one
// standard PKCS#11 ECDH derive per instruction, and every executed
// instruction leaves a transaction record anyone can verify with no secret.
// The profile (encodings, transcripts, KDF, failure rules) is
// docs/secdsa.md.
//
// Wallet side: [PINBinder] and [DeviceKey] (the phone's secure hardware,
// with software implementations), [BeginActivation] and [ActivationState],
// [GenESInstruction]. Provider side, pure functions over the unit's HSM key
// given as a [DeriveFunc]: [Activate], [IssueInternalCert],
// [ExecESInstruction], [NewTRecord]. Anyone: [VerifyTRecord],
// [VerifyInternalCert].
//
// The package imports no server package and builds without cgo and for
// js/wasm.
//
// Patent notice: SECDSA is covered by patents of the WO2022050833A1 family
// (US20230327884A1, EP4208982A1; Keycontrols, inventor E. R. Verheul).
// Check your licensing position before using it in production.
package secdsa
