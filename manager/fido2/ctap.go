package fido2

import (
	"context"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/wsca/wsca/manager"
)

// CTAP2 command bytes (CTAP 2.1 §6).
const (
	cmdMakeCredential = 0x01
	cmdGetAssertion   = 0x02
)

// CTAPError is a CTAP2 status other than success, returned by the
// authenticator. Operation denied, a cancelled keep-alive and a user
// action timeout are [manager.ErrAuthCancelled]; "no credentials" (the
// credential is not on this authenticator) is [manager.ErrKeyNotFound].
type CTAPError struct{ Status byte }

func (e *CTAPError) Error() string {
	switch e.Status {
	case 0x36:
		return "fido2: the authenticator requires a PIN (clientPIN is not supported)"
	case 0x2B, 0x2C:
		return fmt.Sprintf("fido2: the authenticator refused an option (status 0x%02x; built-in user verification missing?)", e.Status)
	}
	return fmt.Sprintf("fido2: the authenticator returned status 0x%02x", e.Status)
}

// Is maps the statuses a caller acts on to the manager's errors.
func (e *CTAPError) Is(target error) bool {
	switch e.Status {
	case 0x27, 0x2D, 0x2F: // OPERATION_DENIED, KEEPALIVE_CANCEL, USER_ACTION_TIMEOUT
		return target == manager.ErrAuthCancelled
	case 0x2E: // NO_CREDENTIALS
		return target == manager.ErrKeyNotFound
	}
	return false
}

type rpEntity struct {
	ID   string `cbor:"id"`
	Name string `cbor:"name,omitempty"`
}

type userEntity struct {
	ID          []byte `cbor:"id"`
	Name        string `cbor:"name,omitempty"`
	DisplayName string `cbor:"displayName,omitempty"`
}

type credParam struct {
	Alg  int    `cbor:"alg"`
	Type string `cbor:"type"`
}

type descriptor struct {
	ID   []byte `cbor:"id"`
	Type string `cbor:"type"`
}

// makeCredentialRequest is authenticatorMakeCredential's parameters
// (CTAP 2.1 §6.1); no clientPIN parameters.
type makeCredentialRequest struct {
	ClientDataHash   []byte          `cbor:"1,keyasint"`
	RP               rpEntity        `cbor:"2,keyasint"`
	User             userEntity      `cbor:"3,keyasint"`
	PubKeyCredParams []credParam     `cbor:"4,keyasint"`
	Options          map[string]bool `cbor:"7,keyasint,omitempty"`
}

type makeCredentialResponse struct {
	Fmt      string          `cbor:"1,keyasint"`
	AuthData []byte          `cbor:"2,keyasint"`
	AttStmt  cbor.RawMessage `cbor:"3,keyasint"`
}

// getAssertionRequest is authenticatorGetAssertion's parameters (CTAP 2.1
// §6.2); no clientPIN parameters.
type getAssertionRequest struct {
	RPID           string          `cbor:"1,keyasint"`
	ClientDataHash []byte          `cbor:"2,keyasint"`
	AllowList      []descriptor    `cbor:"3,keyasint,omitempty"`
	Options        map[string]bool `cbor:"5,keyasint,omitempty"`
}

type getAssertionResponse struct {
	Credential *descriptor `cbor:"1,keyasint"`
	AuthData   []byte      `cbor:"2,keyasint"`
	Signature  []byte      `cbor:"3,keyasint"`
}

// uvOption is the options map: built-in user verification when required,
// nothing otherwise (user presence is the default).
func uvOption(required bool) map[string]bool {
	if required {
		return map[string]bool{"uv": true}
	}
	return nil
}

// encodeCommand returns the command byte followed by the canonical CBOR of
// params.
func (c codec) encodeCommand(cmd byte, params any) ([]byte, error) {
	b, err := c.enc.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("fido2: encode command: %w", err)
	}
	return append([]byte{cmd}, b...), nil
}

// send sends one command and returns the CBOR of a successful response.
func (c codec) send(ctx context.Context, t manager.Ctap2Transport, command []byte) ([]byte, error) {
	resp, err := t.Ctap2Send(ctx, command)
	if err != nil {
		return nil, fmt.Errorf("fido2: transport: %w", err)
	}
	return parseStatus(resp)
}

// parseStatus splits a response into its status and CBOR body.
func parseStatus(resp []byte) ([]byte, error) {
	if len(resp) == 0 {
		return nil, fmt.Errorf("%w: empty response", ErrMalformed)
	}
	if len(resp) > maxMessage {
		return nil, fmt.Errorf("%w: response of %d bytes", ErrMalformed, len(resp))
	}
	if resp[0] != 0 {
		return nil, &CTAPError{Status: resp[0]}
	}
	if len(resp) == 1 {
		return nil, fmt.Errorf("%w: no response body", ErrMalformed)
	}
	return resp[1:], nil
}

// parseMakeCredential parses authenticatorMakeCredential's response body.
func (c codec) parseMakeCredential(body []byte) (*authData, error) {
	var r makeCredentialResponse
	if err := c.dec.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%w: makeCredential response: %v", ErrMalformed, err)
	}
	return c.checkAttestation(r.Fmt, r.AttStmt, r.AuthData)
}

// parseGetAssertion parses authenticatorGetAssertion's response body.
func (c codec) parseGetAssertion(body []byte) (*getAssertionResponse, *authData, error) {
	var r getAssertionResponse
	if err := c.dec.Unmarshal(body, &r); err != nil {
		return nil, nil, fmt.Errorf("%w: getAssertion response: %v", ErrMalformed, err)
	}
	if r.Credential != nil && r.Credential.Type != "public-key" {
		return nil, nil, fmt.Errorf("%w: credential type %q", ErrMalformed, r.Credential.Type)
	}
	a, err := c.parseAuthData(r.AuthData, false)
	if err != nil {
		return nil, nil, err
	}
	return &r, a, nil
}

// Errors of the plugin. Each is returned wrapped with detail for the log;
// a host shows the sentinel's meaning only.
var (
	// ErrMalformed: an authenticator's or a host's answer does not parse
	// or exceeds a bound.
	ErrMalformed = errors.New("fido2: malformed authenticator response")
	// ErrRejected: an answer parses but fails a check (RP id hash, user
	// presence or verification, credential id, signature, client data).
	ErrRejected = errors.New("fido2: authenticator response rejected")
	// ErrUnsupportedKey: the credential's public key is not ES256 on P-256.
	ErrUnsupportedKey = errors.New("fido2: the credential key is not ES256 on P-256")
	// ErrCorruptRecord: a stored credential record does not parse.
	ErrCorruptRecord = errors.New("fido2: a stored credential record is corrupt")
	// ErrOtherRP: a stored credential belongs to another RP id than the
	// plugin's.
	ErrOtherRP = errors.New("fido2: the credential belongs to another RP id")
)
