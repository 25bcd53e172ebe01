// Package manager is the wallet's key manager: one API over every WSCD a
// wallet can use (a software keystore, a remote HSM through R2PS, SECDSA, a
// local PKCS#11 token, a FIDO2 authenticator), each behind a [Plugin].
//
// # Key ids
//
// A key's id is the RFC 7638 JWK thumbprint of its public key (base64url,
// no padding). Two plugins cannot hand out the same id for different keys,
// so a binding keyed by it cannot be overwritten by another plugin's key.
// The plugin's own name for the key (its handle) stays inside the binding.
//
// # Which plugin serves a call
//
// For a new key ([Manager.Generate]):
//  1. the plugin named in the request ([GenerateRequest.Plugin]);
//  2. else, when the request carries a [Requirement] (an issuer's
//     key_attestations_required), the plugin remembered for that issuer and
//     credential type, or on first use the first eligible plugin in
//     registration order, remembered from then on; none eligible is
//     [ErrNoEligiblePlugin];
//  3. else the operation default for [OpGenerate];
//  4. else the global default.
//
// For an existing key (sign, ECDH, public key, delete, properties,
// attestation, migrate):
//  1. the key's binding, written when the key was made;
//  2. else the operation default for that operation;
//  3. else the global default.
//
// A level that names a plugin that is not registered fails with
// [ErrNoPlugin]; resolution never falls through past a named plugin.
//
// # Bindings survive crashes and concurrent writers
//
// Bindings live in a [BindingStore] ([DirStore] on a file system): one
// record per key, written by atomic create, so two writers never overwrite
// each other. Before a plugin makes a key, the manager writes an intent
// with a fresh label the plugin stores with the key; after the key exists it
// writes the binding and drops the intent. [Manager.Recover] (run by [New])
// finishes what a crash interrupted: an intent whose key exists becomes its
// binding, one whose key does not is dropped; a key marked for deletion is
// deleted and unbound. So no key is left without its binding and no binding
// without its key.
//
// # Factors
//
// Every operation returns the factors that authorised it ([Result.AMR],
// RFC 8176 values), as the plugin reports them for that call.
//
// The package imports no server code and builds without cgo and for
// js/wasm.
package manager
