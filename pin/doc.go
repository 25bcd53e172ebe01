// Package pin verifies a wallet unit's PIN with OPAQUE (RFC 9807) and keeps
// the attempt policy and the resulting sessions durable in the store.
//
// The server never sees the PIN. Registration is the evaluate step of RFC
// 9807 §5.2.2 ([Server.RegistrationResponse]) followed by
// [Server.FinishRegistration], which checks the client's RegistrationRecord
// and returns it, with its credential nonce, for the caller to store. A login is two rounds: [Server.LoginStart] answers KE1 with KE2 and
// a pending session, and [Server.LoginFinish] checks KE3 and turns the
// session into a verified one that carries the 32-byte OPAQUE session key.
//
// # Profile
//
// The suite is fixed: OPRF P256-SHA256 (RFC 9497), 3DH on P-256,
// HKDF-SHA256, HMAC-SHA256 and SHA-256. The OPAQUE context string and the
// key stretching function the client applies are set by a [Profile]; its zero
// value is the SIROS-compatible default (empty context, identity KSF). Client
// and server identities are empty, so the public keys serve as identities.
// The credential identifier of a record is the UTF-8 string
// context|unit|nonce, where context is the PIN context (such as "hsm") and
// nonce is drawn fresh (hex) at each registration's evaluate step and kept
// as the requester's pending registration until finalize. So every record
// has its own OPRF key, and the evaluate step, which the protocol leaves
// unauthenticated, is no oracle for the key of any record in use or to come:
// without the nonce, one counted KE2 plus free evaluations would allow an
// offline search of the PIN. A context may not contain '|'.
//
// # Attempts
//
// With OPAQUE, the client learns whether its PIN was right from KE2, so
// issuing KE2 is the attempt: LoginStart counts it in the store, atomically
// with its admission, before any KE2 exists, and a correct KE3 clears the
// count. A [Policy] locks the counter after MaxAttempts failures until an
// operator calls [Server.Unlock], and may impose escalating waits between
// attempts. Counters live in the store, so restarts and replicas change
// nothing. A unit without a record gets a fake one (RFC 9807, "Preventing
// Client Enumeration"): its KE2 cannot be told apart from a real one and its
// KE3 always fails as a wrong PIN.
//
// # Secrets
//
// The server's OPAQUE key material (AKE key pair and OPRF seed) is created
// once, shared by every instance through the store, and kept there only
// sealed by a [Sealer]. Session secrets are sealed too; the store keeps only
// the SHA-256 of a session id. Nothing derived from the PIN and no session
// key is ever logged.
package pin
