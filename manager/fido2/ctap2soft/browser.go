package ctap2soft

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/fxamacker/cbor/v2"

	"github.com/wsca/wsca/manager"
)

// Browser plays a browser's WebAuthn over the device, FOR TESTS: it
// implements manager.AuthCallback, writes the clientDataJSON as Chromium
// does, runs the CTAP2 command, and answers with the JSON a JavaScript
// host returns (base64url without padding, as PublicKeyCredential's
// toJSON() writes). Its hooks rewrite what a compromised or buggy host
// would.
type Browser struct {
	Device *Authenticator
	// Origin is the page's origin written into the client data.
	Origin string
	// ClientData, when set, rewrites the clientDataJSON before it is
	// hashed (so the device signs the rewritten one).
	ClientData func(cd []byte) []byte
	// Answer, when set, rewrites the JSON answer.
	Answer func(b []byte) []byte

	mu       sync.Mutex
	requests []manager.WebAuthnRequest
}

// ErrDevice is a status the device returned that maps to no manager error.
var ErrDevice = errors.New("ctap2soft: the device refused")

// Requests returns the ceremonies asked for so far.
func (b *Browser) Requests() []manager.WebAuthnRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]manager.WebAuthnRequest(nil), b.requests...)
}

// RequestPIN implements manager.AuthCallback; no PIN is ever asked.
func (b *Browser) RequestPIN(context.Context, manager.PINRequest) (*manager.Secret, error) {
	return nil, manager.ErrUnsupported
}

// RequestWebAuthnAssertion implements manager.AuthCallback.
func (b *Browser) RequestWebAuthnAssertion(ctx context.Context, req manager.WebAuthnRequest) ([]byte, error) {
	b.mu.Lock()
	b.requests = append(b.requests, req)
	b.mu.Unlock()
	enc := base64.RawURLEncoding.EncodeToString
	typ := "webauthn.get"
	if req.Create {
		typ = "webauthn.create"
	}
	challenge, _ := json.Marshal(enc(req.Challenge))
	origin, _ := json.Marshal(b.Origin)
	cd := fmt.Appendf(nil, `{"type":"%s","challenge":%s,"origin":%s,"crossOrigin":false`, typ, challenge, origin)
	if req.Create {
		// Chromium adds this member to some client data, so that no
		// relying party compares it against a template.
		cd = append(cd, `,"other_keys_can_be_added_here":"do not compare clientDataJSON against a template. See https://goo.gl/yabPex"`...)
	}
	cd = append(cd, '}')
	if b.ClientData != nil {
		cd = b.ClientData(cd)
	}
	cdh := sha256.Sum256(cd)
	options := map[string]bool{}
	if req.UserVerification == "required" || (req.UserVerification == "preferred" && b.Device.opts.UV) {
		options["uv"] = true
	}
	var cmd byte
	var params map[int]any
	if req.Create {
		cmd = 0x01
		params = map[int]any{
			1: cdh[:],
			2: map[string]any{"id": req.RPID},
			3: map[string]any{"id": req.UserID, "name": req.UserName, "displayName": req.UserName},
			4: []map[string]any{{"alg": -7, "type": "public-key"}},
		}
		if len(options) > 0 {
			params[7] = options
		}
	} else {
		cmd = 0x02
		allow := make([]Descriptor, len(req.AllowCredentials))
		for i, c := range req.AllowCredentials {
			allow[i] = Descriptor{ID: c, Type: "public-key"}
		}
		params = map[int]any{1: req.RPID, 2: cdh[:], 3: allow}
		if len(options) > 0 {
			params[5] = options
		}
	}
	body, err := b.Device.enc.Marshal(params)
	if err != nil {
		return nil, err
	}
	resp, err := b.Device.Ctap2Send(ctx, append([]byte{cmd}, body...))
	if err != nil {
		return nil, err
	}
	if len(resp) == 0 {
		return nil, ErrDevice
	}
	switch resp[0] {
	case StatusOK:
	case StatusOperationDenied:
		return nil, manager.ErrAuthCancelled // the browser's NotAllowedError
	default:
		return nil, fmt.Errorf("%w: status 0x%02x", ErrDevice, resp[0])
	}
	var out any
	if req.Create {
		out, err = b.creation(resp[1:], cd)
	} else {
		out, err = b.assertion(resp[1:], cd)
	}
	if err != nil {
		return nil, err
	}
	j, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	if b.Answer != nil {
		j = b.Answer(j)
	}
	return j, nil
}

func (b *Browser) creation(body, cd []byte) (manager.WebAuthnCreation, error) {
	var r struct {
		Fmt      string          `cbor:"1,keyasint"`
		AuthData []byte          `cbor:"2,keyasint"`
		AttStmt  cbor.RawMessage `cbor:"3,keyasint"`
	}
	if err := b.Device.dec.Unmarshal(body, &r); err != nil {
		return manager.WebAuthnCreation{}, fmt.Errorf("%w: %v", ErrDevice, err)
	}
	if len(r.AuthData) < 55 {
		return manager.WebAuthnCreation{}, fmt.Errorf("%w: short authenticator data", ErrDevice)
	}
	n := int(binary.BigEndian.Uint16(r.AuthData[53:55]))
	if len(r.AuthData) < 55+n {
		return manager.WebAuthnCreation{}, fmt.Errorf("%w: short authenticator data", ErrDevice)
	}
	// The attestation object a browser returns (WebAuthn §6.5.4).
	att, err := b.Device.enc.Marshal(map[string]any{"fmt": r.Fmt, "attStmt": r.AttStmt, "authData": r.AuthData})
	if err != nil {
		return manager.WebAuthnCreation{}, err
	}
	enc := base64.RawURLEncoding.EncodeToString
	return manager.WebAuthnCreation{ID: enc(r.AuthData[55 : 55+n]), AttestationObject: enc(att), ClientDataJSON: enc(cd)}, nil
}

func (b *Browser) assertion(body, cd []byte) (manager.WebAuthnGet, error) {
	var r struct {
		Credential Descriptor `cbor:"1,keyasint"`
		AuthData   []byte     `cbor:"2,keyasint"`
		Signature  []byte     `cbor:"3,keyasint"`
	}
	if err := b.Device.dec.Unmarshal(body, &r); err != nil {
		return manager.WebAuthnGet{}, fmt.Errorf("%w: %v", ErrDevice, err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return manager.WebAuthnGet{
		ID: enc(r.Credential.ID), AuthenticatorData: enc(r.AuthData), ClientDataJSON: enc(cd), Signature: enc(r.Signature),
	}, nil
}
