package manager

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// Reason says why a plugin asks for the user's PIN.
type Reason string

// Reasons for a PIN request.
const (
	ReasonUnlock    Reason = "unlock"     // open a session to use keys
	ReasonRegister  Reason = "register"   // choose a PIN at enrolment
	ReasonChangeOld Reason = "change_old" // the current PIN, to change it
	ReasonChangeNew Reason = "change_new" // the new PIN
)

// PINRequest is what the host is told when a PIN is needed. Plugin is
// always set, so the host never sends a PIN meant for one WSCD to another.
type PINRequest struct {
	Plugin      string
	DisplayName string
	Reason      Reason
	// Attempts is the number of attempts left when the plugin knows it,
	// else -1.
	Attempts int
}

// WebAuthnRequest asks the host to run a WebAuthn ceremony. Create is
// explicit: an empty AllowCredentials list does not mean "register". Its
// JSON (base64url for bytes) is what a JavaScript host receives.
type WebAuthnRequest struct {
	Plugin           string   `json:"plugin"`
	RPID             string   `json:"rpId"`
	Challenge        []byte   `json:"-"`
	AllowCredentials [][]byte `json:"-"`
	Create           bool     `json:"create"`
	// UserID and UserName name the credential's user at creation.
	UserID   []byte `json:"-"`
	UserName string `json:"userName,omitempty"`
	// UserVerification is "required", "preferred" or "discouraged".
	UserVerification string `json:"userVerification,omitempty"`
}

// WebAuthnCreation is the JSON a host returns for a Create ceremony
// (bytes base64url without padding, as in WebAuthn's toJSON()).
type WebAuthnCreation struct {
	ID                string `json:"id"`
	AttestationObject string `json:"attestationObject"`
	ClientDataJSON    string `json:"clientDataJSON"`
}

// WebAuthnGet is the JSON a host returns for an assertion ceremony; the
// signature is DER, as WebAuthn returns it.
type WebAuthnGet struct {
	ID                string `json:"id"`
	AuthenticatorData string `json:"authenticatorData"`
	ClientDataJSON    string `json:"clientDataJSON"`
	Signature         string `json:"signature"`
	UserHandle        string `json:"userHandle,omitempty"`
}

// AuthCallback is how a plugin asks the user. Implementations return
// ErrAuthCancelled when the user declines.
type AuthCallback interface {
	RequestPIN(ctx context.Context, req PINRequest) (*Secret, error)
	// RequestWebAuthnAssertion runs the ceremony and returns its result
	// as JSON: a [WebAuthnCreation] when req.Create, else a [WebAuthnGet].
	RequestWebAuthnAssertion(ctx context.Context, req WebAuthnRequest) ([]byte, error)
}

// Stage is a step of a long operation.
type Stage string

// Stages reported to a ProgressCallback.
const (
	StageStarted          Stage = "started"
	StageNetworkRoundTrip Stage = "network_round_trip"
	StageWaitingForUser   Stage = "waiting_for_user"
	StageComplete         Stage = "complete"
)

// Progress is one report of a long operation.
type Progress struct {
	Plugin string
	Op     Op
	Stage  Stage
	// Step and Total count network round trips (Total 0 when unknown).
	Step, Total int
}

// ProgressCallback receives progress reports; it must not block.
type ProgressCallback interface {
	OnProgress(Progress)
}

// Ctap2Transport carries one CTAP2 command (command byte and CBOR) to an
// authenticator over whatever the host has (USB HID, NFC, BLE) and returns
// its response (status byte and CBOR). The host only frames bytes.
type Ctap2Transport interface {
	Ctap2Send(ctx context.Context, command []byte) ([]byte, error)
}

// Secret holds a PIN or another secret the host hands in. It never prints
// its value; Wipe zeroes it.
type Secret struct{ b []byte }

// NewSecret takes ownership of b (the caller must not keep using it).
func NewSecret(b []byte) *Secret { return &Secret{b: b} }

// Bytes returns the secret; the slice is zeroed by Wipe.
func (s *Secret) Bytes() []byte {
	if s == nil {
		return nil
	}
	return s.b
}

// Wipe zeroes the secret.
func (s *Secret) Wipe() {
	if s == nil {
		return
	}
	clear(s.b)
	s.b = nil
}

// String never shows the secret.
func (s *Secret) String() string { return "[REDACTED]" }

// GoString never shows the secret.
func (s *Secret) GoString() string { return "[REDACTED]" }

// Format never shows the secret, whatever the verb.
func (s *Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[REDACTED]")) }

// MarshalJSON never shows the secret.
func (s *Secret) MarshalJSON() ([]byte, error) { return []byte(`"[REDACTED]"`), nil }

// MarshalJSON writes the request for a JavaScript host: bytes as
// base64url without padding, the form navigator.credentials' JSON
// helpers (parseCreationOptionsFromJSON...) read.
func (r WebAuthnRequest) MarshalJSON() ([]byte, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	allow := make([]string, len(r.AllowCredentials))
	for i, c := range r.AllowCredentials {
		allow[i] = b64(c)
	}
	type plain WebAuthnRequest
	return json.Marshal(struct {
		plain
		Challenge        string   `json:"challenge"`
		AllowCredentials []string `json:"allowCredentials"`
		UserID           string   `json:"userId,omitempty"`
	}{plain(r), b64(r.Challenge), allow, b64(r.UserID)})
}
