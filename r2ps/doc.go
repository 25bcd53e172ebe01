// Package r2ps encodes and decodes the messages of R2PS, the protocol between
// an EUDI wallet unit and its remote WSCA/WSCD, as defined by
// draft-santesson-r2ps-00 (the "I-D"; § numbers below refer to it) and
// profiled by docs/protocol.md, which is authoritative where the two differ.
//
// The package is a pure codec: it does no I/O and holds no keys. Private-key
// operations come in as values or small functions (an agree function that
// returns the ECDH shared secret Z from an HSM, a crypto.Signer, a session-key
// lookup), so the same code serves the server, tests and clients.
//
// # Strict profile
//
// A request is a compact JWS (§4.2, [SignJWS], [VerifyJWS]) carried inside a
// compact JWE (§4.1). In 1FA mode the JWE is ECDH-ES direct key agreement to
// the recipient's static key with the Concat KDF of RFC 7518 §4.6 and A256GCM
// ([SealRequest1FA], [Open1FA], [SealResponse1FA], [OpenResponse1FA]); in 2FA
// mode it is `dir` A256GCM under the session key ([Seal2FA], [Open2FA]). The
// JWS payload is decoded by [DecodeRequest] and [DecodeResponse], its data
// member by [DecodeData]. Decoders are strict: one JSON value, valid UTF-8,
// no duplicate, unknown or case-folded members, no trailing data, standard
// padded base64 for binary members (§4.2), and only the header members the
// mode allows (no crit, no zip).
//
// # Bounds
//
// What a server parses before it knows the sender is bounded
// (docs/protocol.md §1): [Classify] routes a body by counting its dots,
// without allocating; parts are counted before they are split; a protected
// header over [MaxHeaderSize] is refused before it is decoded; the strict
// JSON checker walks at most 1024 values of a header or request; and
// [ParseJWE] decodes a JWE header once, for [JWE.Mode] and [JWE.KID] to route
// by and [JWE.Open1FA] or [JWE.Open2FA] to open.
//
// # Compat profile
//
// [DecodeCompat] accepts the bare JWS payload of go-r2ps-service clients
// (docs/protocol.md §8): every base64 flavour, the legacy member and type
// names, and client_id, context and 2fa_session_id in the payload. It
// normalises into the strict types, so code above this package never sees an
// alias or a second encoding. [EncodeCompatResponse] and [CompatError] write
// the shapes those clients expect.
//
// # Errors
//
// Every error a decoder returns wraps one of the sentinel [*Error] values;
// [Code] maps any error to its §4.2.2.2 Table 1 code and [HTTPStatus] that code
// to its HTTP status.
package r2ps
