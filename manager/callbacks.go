package manager

import (
	"context"
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
// explicit: an empty AllowCredentials list does not mean "register".
type WebAuthnRequest struct {
	Plugin           string
	RPID             string
	Challenge        []byte
	AllowCredentials [][]byte
	Create           bool
}

// AuthCallback is how a plugin asks the user. Implementations return
// ErrAuthCancelled when the user declines.
type AuthCallback interface {
	RequestPIN(ctx context.Context, req PINRequest) (*Secret, error)
	// RequestWebAuthnAssertion returns the ceremony's result as JSON
	// (credential id, authenticator data, client data, signature or
	// attestation object, base64url).
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
