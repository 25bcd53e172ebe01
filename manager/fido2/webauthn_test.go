package fido2_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/json"
	"fmt"
	"math/big"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/fido2"
	"github.com/wsca/wsca/manager/fido2/ctap2soft"
)

// lastAnswer wraps a host and keeps its last answer.
type lastAnswer struct {
	*ctap2soft.Browser
	last []byte
}

func (l *lastAnswer) RequestWebAuthnAssertion(ctx context.Context, req manager.WebAuthnRequest) ([]byte, error) {
	b, err := l.Browser.RequestWebAuthnAssertion(ctx, req)
	l.last = bytes.Clone(b)
	return b, err
}

// rawToDER encodes a raw r‖s signature as WebAuthn carries it.
func rawToDER(t *testing.T, raw []byte) []byte {
	t.Helper()
	r, s := new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])
	der, err := asn1Marshal(r, s)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// sameKey reports whether go-webauthn's parse of a COSE key is pub.
func sameKey(t *testing.T, cose []byte, pub *ecdsa.PublicKey) {
	t.Helper()
	k, err := webauthncose.ParsePublicKey(cose)
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := k.(webauthncose.EC2PublicKeyData)
	if !ok {
		t.Fatalf("go-webauthn parsed a %T", k)
	}
	raw, _ := pub.Bytes()
	if !bytes.Equal(ec.XCoord, raw[1:33]) || !bytes.Equal(ec.YCoord, raw[33:]) {
		t.Fatal("go-webauthn reads another public key than the plugin")
	}
}

// verifyAssertion has go-webauthn verify an assertion the plugin returned
// (client data, RP id hash, flags, signature over the COSE key).
func verifyAssertion(t *testing.T, a manager.Assertion, challenge, cose []byte, uv bool) {
	t.Helper()
	resp := map[string]any{
		"id": b64(a.CredentialID), "rawId": b64(a.CredentialID), "type": "public-key",
		"response": map[string]string{
			"clientDataJSON": b64(a.ClientDataJSON), "authenticatorData": b64(a.AuthenticatorData),
			"signature": b64(rawToDER(t, a.Signature)),
		},
	}
	j, _ := json.Marshal(resp)
	par, err := protocol.ParseCredentialRequestResponseBytes(j)
	if err != nil {
		t.Fatal(err)
	}
	if err := par.Verify(b64(challenge), rpID, "", []string{origin}, nil, nil, protocol.TopOriginAutoVerificationMode,
		false, uv, true, cose, protocol.SignaturePolicy{}); err != nil {
		t.Fatalf("go-webauthn refuses the assertion: %v", err)
	}
	// And it refuses the same assertion for another challenge.
	if err := par.Verify(b64([]byte("another")), rpID, "", []string{origin}, nil, nil, protocol.TopOriginAutoVerificationMode,
		false, uv, true, cose, protocol.SignaturePolicy{}); err == nil {
		t.Fatal("go-webauthn accepts the assertion for another challenge")
	}
}

// TestGoWebAuthn: the plugin's registrations and assertions, native and
// through the browser JSON, checked by go-webauthn's protocol package
// (someone else's CBOR, COSE and WebAuthn code).
func TestGoWebAuthn(t *testing.T) {
	challenge := []byte("a verifier's challenge, 32 bytes")
	for _, uv := range []bool{false, true} {
		t.Run(fmt.Sprintf("Native-uv=%v", uv), func(t *testing.T) {
			dev := ctap2soft.New(ctap2soft.Options{UV: uv})
			var mc []byte
			dev.SetTamper(ctap2soft.Tamper{Raw: func(c byte, r []byte) []byte {
				if c == 1 {
					mc = bytes.Clone(r)
				}
				return r
			}})
			p := native(t, dev, func(c *fido2.Config) {
				if uv {
					c.UserVerification = fido2.UVRequired
				}
			})
			k, _, err := p.Generate(ctx, "l", manager.Env{})
			if err != nil {
				t.Fatal(err)
			}
			// The registration's authenticator data, read by go-webauthn.
			var r struct {
				AuthData []byte `cbor:"2,keyasint"`
			}
			if err := cbor.Unmarshal(mc[1:], &r); err != nil {
				t.Fatal(err)
			}
			var ad protocol.AuthenticatorData
			if err := ad.Unmarshal(r.AuthData); err != nil {
				t.Fatal(err)
			}
			if err := ad.Verify(sha256Sum(rpID), nil, uv, true); err != nil {
				t.Fatal(err)
			}
			sameKey(t, ad.AttData.CredentialPublicKey, k.Public)
			a, _, err := p.SignAssertion(ctx, k.Handle, challenge, manager.Env{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.CredentialID, ad.AttData.CredentialID) {
				t.Fatal("the assertion names another credential than the registration")
			}
			verifyAssertion(t, a, challenge, ad.AttData.CredentialPublicKey, uv)
		})
	}
	for _, format := range []string{"none", "packed"} {
		t.Run("Browser-"+format, func(t *testing.T) {
			dev := ctap2soft.New(ctap2soft.Options{Format: format})
			p, b := browser(t, dev, nil)
			host := &lastAnswer{Browser: b}
			env := manager.Env{Auth: host}
			k, _, err := p.Generate(ctx, "l", env)
			if err != nil {
				t.Fatal(err)
			}
			// The creation JSON as an RP library reads toJSON()'s output.
			var w manager.WebAuthnCreation
			if err := json.Unmarshal(host.last, &w); err != nil {
				t.Fatal(err)
			}
			j, _ := json.Marshal(map[string]any{
				"id": w.ID, "rawId": w.ID, "type": "public-key",
				"response": map[string]string{"clientDataJSON": w.ClientDataJSON, "attestationObject": w.AttestationObject},
			})
			pcc, err := protocol.ParseCredentialCreationResponseBytes(j)
			if err != nil {
				t.Fatal(err)
			}
			reqs := b.Requests()
			if _, err := pcc.Verify(b64(reqs[0].Challenge), rpID, []string{origin}, nil, nil, protocol.TopOriginAutoVerificationMode,
				false, false, true, nil, []protocol.CredentialParameter{{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgES256}},
				protocol.AttestationPolicy{}, protocol.SignaturePolicy{}); err != nil {
				t.Fatalf("go-webauthn refuses the registration: %v", err)
			}
			cose := pcc.Response.AttestationObject.AuthData.AttData.CredentialPublicKey
			sameKey(t, cose, k.Public)
			a, _, err := p.SignAssertion(ctx, k.Handle, challenge, env)
			if err != nil {
				t.Fatal(err)
			}
			verifyAssertion(t, a, challenge, cose, false)
			// The request the host received is what navigator.credentials
			// needs: the RP id, the challenge, the one credential.
			get := b.Requests()[1]
			if get.Create || get.RPID != rpID || !bytes.Equal(get.Challenge, challenge) || len(get.AllowCredentials) != 1 ||
				!bytes.Equal(get.AllowCredentials[0], a.CredentialID) || get.Plugin != fido2.ID {
				t.Fatalf("assertion request %+v", get)
			}
		})
	}
}

func sha256Sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func asn1Marshal(r, s *big.Int) ([]byte, error) {
	return asn1.Marshal(struct{ R, S *big.Int }{r, s})
}
