// Package fido2 is the key manager's FIDO2 WSCD: keys are WebAuthn
// credentials (ES256 on P-256) on an authenticator, reached either over
// CTAP2 through the host's [manager.Ctap2Transport] (native) or through
// the host's WebAuthn, [manager.AuthCallback.RequestWebAuthnAssertion]
// (a browser's navigator.credentials).
//
// A FIDO2 authenticator signs authenticatorData ‖ SHA-256(clientDataJSON),
// never a digest of the caller's choice (the previewSign extension that
// would is in neither Chromium's virtual authenticator nor most keys). So
// the plugin's keys are assertion keys: Sign returns
// [manager.ErrAssertionOnly], and [Plugin.SignAssertion] returns a
// [manager.Assertion] whose client data names the caller's challenge. Such
// a key authenticates (to a WebAuthn-aware verifier, or in R2PS's FIDO2
// mode); it cannot make a JWS proof of possession for OpenID4VCI. ECDH and
// export are not supported.
//
// Native path: the plugin builds authenticatorMakeCredential (0x01) and
// authenticatorGetAssertion (0x02) in canonical CTAP2 CBOR, with a client
// data hash over the clientDataJSON it writes for Config.Origin, and
// checks each response: status, the RP id hash, user presence, user
// verification when required, the credential named, the public key (an
// EC2 P-256 ES256 COSE_Key, a point on the curve) and the signature. The
// PIN/UV auth protocol (clientPIN) is not implemented: an authenticator
// must verify the user itself (built-in UV) or not at all.
//
// Browser path: the host runs the ceremony and returns the JSON of
// [manager.WebAuthnCreation] or [manager.WebAuthnGet] (base64url without
// padding, as PublicKeyCredential.toJSON() writes). The plugin checks the
// client data (type, exactly its challenge, an origin on the RP id, not
// cross-origin) and the rest as above. Attestation statements ("none" or
// "packed") are not verified: the key is taken from the authenticator
// data, and Properties state what the host configured, never more.
//
// Records (label, credential id, COSE key, creation time, RP id, flags at
// creation) live in a [kv.Store] under "<id>/<handle>". Delete removes the
// record only: WebAuthn cannot delete a credential from an authenticator.
//
// Package ctap2soft is a software CTAP2 authenticator for tests.
package fido2
