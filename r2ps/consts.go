package r2ps

// Version is the only protocol version (§4.2, member ver).
const Version = "1.0"

// Size limits.
const (
	// MaxMessageSize bounds every compact JWE, JWS and JSON payload accepted
	// (docs/protocol.md §1: request bodies are at most 1 MiB).
	MaxMessageSize = 1 << 20
	// MinNonceSize is the least number of nonce bytes (§4.2: "at least 16
	// bytes of entropy").
	MinNonceSize = 16
	// SessionKeySize is the size of a 2FA session key, the A256GCM CEK (§4.1.2).
	SessionKeySize = 32
	// JWEHashSize is the size of jwe_hash, a SHA-256 digest (§4.2.1).
	JWEHashSize = 32
	// TBSHashSize is the size of the hash sign_ecdsa signs (docs/protocol.md §6).
	TBSHashSize = 32
)

// JOSE header values fixed by the I-D.
const (
	TypJWE1FA   = "r2ps-1fa"          // §4.1.1 JWE typ
	TypJWE2FA   = "r2ps-2fa"          // §4.1.2 JWE typ
	TypRequest  = "r2ps-request+jwt"  // §4.2 JWS typ of a request
	TypResponse = "r2ps-response+jwt" // §4.2 JWS typ of a response
	CtyJWT      = "JWT"               // §4.1.1, §4.1.2 JWE cty
	AlgECDHES   = "ECDH-ES"           // §4.1.1 JWE alg, direct key agreement
	AlgDir      = "dir"               // §4.1.2 JWE alg
	EncA256GCM  = "A256GCM"           // §4.1 JWE enc; also the Concat KDF AlgorithmID
	AlgES256    = "ES256"             // §4.2 JWS alg, the only one accepted
)

// Service types (§4.3.4 for the first three, docs/protocol.md §6 for the
// WSCD types, go-r2ps-service for the WSCA attestations).
const (
	TypeCreateSession   = "create_session"   // §4.3.4.1, 1FA
	Type2FARegistration = "2fa_registration" // §4.3.4.2, 1FA
	Type2FAUpdate       = "2fa_update"       // §4.3.4.3, 2FA
	TypeP256Generate    = "p256_generate"    // docs/protocol.md §6, 2FA
	TypeSignECDSA       = "sign_ecdsa"       // docs/protocol.md §6, 2FA
	TypeAgreeECDH       = "agree_ecdh"       // docs/protocol.md §6, 2FA
	TypeListKeys        = "hsm_list_keys"    // docs/protocol.md §6, 2FA
	TypeDeleteKey       = "hsm_delete_key"   // docs/protocol.md §6, 2FA
	TypeWKA             = "eudiw_wka_etsi"   // go-r2ps-service, 1FA
	TypeWIA             = "eudiw_wia_etsi"   // go-r2ps-service, 1FA
)

// Legacy type names, accepted only by [DecodeCompat] (docs/protocol.md §8),
// which maps each to the canonical name in its comment.
const (
	Alias2FAAuthenticate = "2fa_authenticate" // TypeCreateSession
	Alias2FAChange       = "2fa_change"       // Type2FAUpdate
	AliasHSMECDSA        = "hsm_ecdsa"        // TypeSignECDSA
	AliasHSMECDH         = "hsm_ecdh"         // TypeAgreeECDH
	AliasListKeys        = "list_keys"        // TypeListKeys
)

// Second-factor protocols (§4.3.5) and their states (§4.3.5.1, §4.3.5.2).
const (
	ProtocolOPAQUE = "opaque" // §4.3.5.1, the one docs/protocol.md §5 profiles
	ProtocolFIDO2  = "fido2"  // §4.3.5.2, not served by wsca

	StateEvaluate  = "evaluate"  // OPAQUE round 1
	StateFinalize  = "finalize"  // last round of OPAQUE and FIDO2
	StateChallenge = "challenge" // FIDO2 round 1
)

// AuthorizationTypeOTP is the only authorization_type of §4.3.4.2.
const AuthorizationTypeOTP = "otp"

// Tasks a session can be bound to (§4.3.4.3; docs/protocol.md §6 for sign:).
const (
	Task2FAUpdate  = "2fa_update"
	TaskSignPrefix = "sign:"
)

// CurveP256 is the curve name of the WSCD service types (docs/protocol.md §6).
const CurveP256 = "P-256"

// Error codes, §4.2.2.2 Table 1.
const (
	CodeIllegalRequestData     = "ILLEGAL_REQUEST_DATA"     // 400
	CodeUnauthorized           = "UNAUTHORIZED"             // 401
	CodeAccessDenied           = "ACCESS_DENIED"            // 403
	CodeIllegalState           = "ILLEGAL_STATE"            // 409
	CodeUnsupportedRequestType = "UNSUPPORTED_REQUEST_TYPE" // 415
	CodeServerError            = "SERVER_ERROR"             // 500
	CodeTryLater               = "TRY_LATER"                // 503
)
