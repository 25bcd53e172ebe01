// Package pkcs11key is the manager's plugin for a local PKCS#11 token (a
// smart card, a USB token, a TPM or SoftHSM through its PKCS#11 module):
// P-256 key pairs made on the token as token objects, private halves
// sensitive and non-extractable, used with CKM_ECDSA and CKM_ECDH1_DERIVE.
//
// The token's user PIN is asked through the host's AuthCallback (reason
// unlock, naming the plugin) at the first operation, unless the host
// configured it; the login is kept for the plugin's life. PKCS#11 logs in
// a whole process, not a session: once any user of the token in the
// process has logged in, the plugin's own login is accepted without a PIN
// check (CKR_USER_ALREADY_LOGGED_IN).
//
// Each key's CKA_LABEL is the plugin's namespace, a colon and the
// manager's label, so a label finds its key after a crash and keys of
// other applications on the token are never listed. The handle is the
// hex CKA_ID.
//
// It loads a C library, so it needs cgo; without cgo New fails with
// ErrNotCompiled.
package pkcs11key
