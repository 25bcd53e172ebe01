package manager

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// Assertion is a WebAuthn assertion made by a key: Signature (raw r‖s)
// covers AuthenticatorData ‖ SHA-256(ClientDataJSON), and ClientDataJSON
// names the challenge. A verifier that knows WebAuthn checks it with
// [Assertion.Verify]; it is not a signature on the challenge itself.
type Assertion struct {
	CredentialID      []byte
	AuthenticatorData []byte
	ClientDataJSON    []byte
	Signature         []byte
}

// ErrBadAssertion: an assertion does not verify.
var ErrBadAssertion = errors.New("manager: the assertion does not verify")

// Verify checks that a is an assertion (type webauthn.get, user present)
// over challenge by pub. It does not check the origin or the RP id hash:
// the caller that knows them does.
func (a Assertion) Verify(pub *ecdsa.PublicKey, challenge []byte) error {
	if pub == nil || len(a.Signature) != 64 || len(a.AuthenticatorData) < 37 {
		return fmt.Errorf("%w: malformed", ErrBadAssertion)
	}
	if a.AuthenticatorData[32]&0x01 == 0 {
		return fmt.Errorf("%w: user not present", ErrBadAssertion)
	}
	var cd struct {
		Type      string `json:"type"`
		Challenge string `json:"challenge"`
	}
	if err := json.Unmarshal(a.ClientDataJSON, &cd); err != nil {
		return fmt.Errorf("%w: client data", ErrBadAssertion)
	}
	got, err := base64.RawURLEncoding.DecodeString(cd.Challenge)
	if cd.Type != "webauthn.get" || err != nil || !bytes.Equal(got, challenge) {
		return fmt.Errorf("%w: client data does not name the challenge", ErrBadAssertion)
	}
	cdh := sha256.Sum256(a.ClientDataJSON)
	msg := sha256.Sum256(append(append([]byte(nil), a.AuthenticatorData...), cdh[:]...))
	r, s := new(big.Int).SetBytes(a.Signature[:32]), new(big.Int).SetBytes(a.Signature[32:])
	if !ecdsa.Verify(pub, msg[:], r, s) {
		return fmt.Errorf("%w: signature", ErrBadAssertion)
	}
	return nil
}

// SignAssertion makes a WebAuthn assertion over challenge (1 to 64 bytes)
// with a key whose plugin signs assertions ([AssertionPlugin]); other
// keys are an *UnsupportedError. The plugin checks the assertion against
// the key before it returns it (as plugins do for Sign); a caller that
// must not trust the plugin checks it with [Assertion.Verify].
func (m *Manager) SignAssertion(ctx context.Context, kid KID, challenge []byte) (Assertion, Result, error) {
	if len(challenge) == 0 || len(challenge) > 64 {
		return Assertion{}, Result{}, fmt.Errorf("%w: a challenge is 1 to 64 bytes", ErrInvalidInput)
	}
	var a Assertion
	var amr []string
	t, err := m.use(ctx, kid, OpSign, func(t target) error {
		ap, ok := t.p.(AssertionPlugin)
		if !ok {
			return &UnsupportedError{Plugin: t.p.ID(), Op: OpSign}
		}
		var err error
		a, amr, err = ap.SignAssertion(ctx, t.handle, challenge, m.env())
		return err
	})
	if err != nil {
		return Assertion{}, Result{}, wrapT(t, OpSign, err)
	}
	return a, Result{Plugin: t.p.ID(), AMR: amr}, nil
}
