package r2ps

import (
	"encoding/json"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Request is the payload of a request JWS (§4.2, §4.2.1). It carries no
// client_id, context or session id: in the strict profile those travel in
// the JWE header (§4.1; docs/protocol.md §2).
type Request struct {
	Version  string          // ver (§4.2): "1.0"
	Nonce    []byte          // nonce (§4.2): at least 16 random bytes, echoed by the response
	IssuedAt time.Time       // iat (§4.2): creation time, whole seconds since the epoch
	Type     string          // type (§4.2.1): the canonical service type, which fixes the mode
	JWEHash  []byte          // jwe_hash (§4.2.1): SHA-256 of the encoded JWE protected header
	Data     json.RawMessage // data (§4.2): a JSON object, decoded by DecodeData
}

// Response is the payload of a response JWS (§4.2.2.1): the common members
// only.
type Response struct {
	Version  string          // ver (§4.2)
	Nonce    []byte          // nonce (§4.2.2.1): the request's, unchanged
	IssuedAt time.Time       // iat (§4.2)
	Data     json.RawMessage // data (§4.2): one of the response types below
}

// TFARequest is the data of create_session, 2fa_registration and 2fa_update
// (§4.3.1; member presence §4.3.3).
type TFARequest struct {
	Protocol string `json:"protocol"` // §4.3.1: "opaque" (§4.3.5.1)
	State    string `json:"state"`    // §4.3.1: "evaluate" or "finalize" (§4.3.5.1)
	// PData is the protocol message (§4.3.1): for OPAQUE the RFC 9807
	// serialisation of KE1, KE3, RegistrationRequest or RegistrationRecord
	// (§4.3.5.1, Tables 8 and 9). FIDO2's object form is not carried.
	PData Bytes `json:"p_data"`
	// Authorization is the activation code of a 2fa_registration finalize
	// (§4.3.4.2, Table 4; docs/protocol.md §5).
	Authorization     Bytes  `json:"authorization,omitempty"`
	AuthorizationType string `json:"authorization_type,omitempty"` // §4.3.1: "otp"
	Task              string `json:"task,omitempty"`               // §4.3.1, Table 2: first round of create_session
	// SessionDuration is the requested session length in seconds (§4.3.1,
	// Table 2); 0 asks for the server default.
	SessionDuration int64 `json:"session_duration,omitempty"`
	// SessionID names the pending session in a create_session finalize.
	// Deviation (docs/protocol.md §5): the I-D gives that request no way to.
	SessionID string `json:"session_id,omitempty"`
	// CAK is the client agreement key, sent in both rounds of a
	// 2fa_registration (docs/protocol.md §5); responses are encrypted to it.
	CAK *jose.JSONWebKey `json:"cak,omitempty"`
}

// TFAResponse is the data of the responses to the TFARequest types (§4.3.2).
// A failure encodes as {"success": false, "error": code}: §4.3.3 allows only
// success, and docs/protocol.md §1 adds error (deviation).
type TFAResponse struct {
	Success bool   `json:"success"`         // §4.3.2: always present
	Error   string `json:"error,omitempty"` // a Table 1 code when Success is false
	// PData is the protocol answer (KE2, RegistrationResponse), or nil in
	// a finalize, which encodes as null (§4.3.5.1, Tables 8 and 9).
	PData     Bytes  `json:"p_data"`
	SessionID string `json:"session_id,omitempty"` // §4.3.2, Table 3: every create_session round
	Task      string `json:"task,omitempty"`       // §4.3.2, Table 3: echoed in the last round
	// SessionExpirationTime is the latest end of the session, in seconds
	// since the epoch (§4.3.2, Table 3: last round).
	SessionExpirationTime int64 `json:"session_expiration_time,omitempty"`
}

// MarshalJSON writes only success and error for a failure (§4.3.3).
func (r TFAResponse) MarshalJSON() ([]byte, error) {
	if !r.Success {
		return json.Marshal(Failure{Error: r.Error})
	}
	type plain TFAResponse
	return json.Marshal(plain(r))
}

// Failure is the data of any response to a request that failed after it was
// authenticated (docs/protocol.md §1).
type Failure struct {
	Success bool   `json:"success"` // always false
	Error   string `json:"error"`   // a Table 1 code
}

// GenerateRequest is the data of p256_generate (docs/protocol.md §6).
type GenerateRequest struct {
	Curve string `json:"curve"` // "P-256"
}

// GenerateResponse answers p256_generate with the new key.
type GenerateResponse struct {
	Success   bool             `json:"success"`
	KID       string           `json:"kid"`        // 32 hex digits (package device)
	PublicKey *jose.JSONWebKey `json:"public_key"` // the P-256 public key
	// AMR lists the factors that authorised the operation (RFC 8176:
	// AMRPossession, AMRPIN); every key operation's answer carries it.
	AMR []string `json:"amr,omitempty"`
}

// SignRequest is the data of sign_ecdsa.
type SignRequest struct {
	KID     string `json:"kid"`
	TBSHash Bytes  `json:"tbs_hash"` // the 32-byte SHA-256 hash to sign
}

// SignResponse answers sign_ecdsa.
type SignResponse struct {
	Success   bool     `json:"success"`
	Signature Bytes    `json:"signature"` // ASN.1 DER ECDSA-Sig-Value
	AMR       []string `json:"amr,omitempty"`
}

// ECDHRequest is the data of agree_ecdh.
type ECDHRequest struct {
	KID       string `json:"kid"`
	PublicKey Bytes  `json:"public_key"` // SEC 1 P-256 point, compressed or not; see Point
}

// ECDHResponse answers agree_ecdh.
type ECDHResponse struct {
	Success      bool     `json:"success"`
	SharedSecret Bytes    `json:"shared_secret"` // the 32-byte x-coordinate
	AMR          []string `json:"amr,omitempty"`
}

// ListKeysRequest is the data of hsm_list_keys; no curve means all. After
// and Limit page through the keys (oldest first): the keys after the one
// with kid After, at most Limit of them (0: the server's page size).
type ListKeysRequest struct {
	Curve []string `json:"curve,omitempty"`
	After string   `json:"after,omitempty"`
	Limit int      `json:"limit,omitempty"`
}

// MaxListLimit bounds ListKeysRequest.Limit.
const MaxListLimit = 1000

// ListKeysResponse answers hsm_list_keys. Next, when set, is the After of
// the next page.
type ListKeysResponse struct {
	Success bool      `json:"success"`
	KeyInfo []KeyInfo `json:"key_info"`
	Next    string    `json:"next,omitempty"`
	AMR     []string  `json:"amr,omitempty"`
}

// MarshalJSON writes an empty key_info as [], never null.
func (r ListKeysResponse) MarshalJSON() ([]byte, error) {
	type plain ListKeysResponse
	if r.KeyInfo == nil {
		r.KeyInfo = []KeyInfo{}
	}
	return json.Marshal(plain(r))
}

// KeyInfo describes one key of the unit.
type KeyInfo struct {
	KID          string           `json:"kid"`
	CurveName    string           `json:"curve_name"`
	CreationTime int64            `json:"creation_time"` // seconds since the epoch
	PublicKey    *jose.JSONWebKey `json:"public_key"`
}

// DeleteKeyRequest is the data of hsm_delete_key.
type DeleteKeyRequest struct {
	KID string `json:"kid"`
}

// DeleteKeyResponse answers hsm_delete_key.
type DeleteKeyResponse struct {
	Success bool     `json:"success"`
	AMR     []string `json:"amr,omitempty"`
}
