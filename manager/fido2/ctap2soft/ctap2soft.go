// Package ctap2soft is a software CTAP2 authenticator FOR TESTS ONLY. It
// keeps private keys in memory in the clear, verifies no user (its "user
// verification" is a setting), and exists so that the fido2 plugin's CTAP2
// encoder and parsers run against a device that speaks real CTAP2 CBOR:
// authenticatorMakeCredential (0x01) and authenticatorGetAssertion (0x02),
// canonical CBOR checked on input and produced on output, ES256 only,
// non-discoverable credentials only, attestation "none" or "packed"
// self-attestation. [Tamper] makes it misbehave for refusal tests, and
// [Browser] plays a browser's WebAuthn over it for the plugin's browser
// path. Never use it to hold a real key.
package ctap2soft

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// CTAP2 status codes the device returns.
const (
	StatusOK                = 0x00
	StatusInvalidCommand    = 0x01
	StatusInvalidParameter  = 0x02
	StatusInvalidLength     = 0x03
	StatusInvalidCBOR       = 0x12
	StatusMissingParameter  = 0x14
	StatusUnsupportedAlg    = 0x26
	StatusOperationDenied   = 0x27
	StatusUnsupportedOption = 0x2B
	StatusInvalidOption     = 0x2C
	StatusNoCredentials     = 0x2E
)

// Options configure the device.
type Options struct {
	// UV: the device has built-in user verification and sets the UV flag
	// when asked for it.
	UV bool
	// Format is the attestation format: "none" (default) or "packed"
	// (self attestation).
	Format string
	// BackupEligible sets the BE and BS flags, as a synced passkey does.
	BackupEligible bool
	// Deny makes the user refuse every request (OPERATION_DENIED).
	Deny bool
}

// Tamper rewrites the device's output, for refusal tests. Each hook may
// be nil.
type Tamper struct {
	// AuthData rewrites the authenticator data before it is signed.
	AuthData func(cmd byte, authData []byte) []byte
	// Signature rewrites the DER signature of an assertion.
	Signature func(der []byte) []byte
	// Response rewrites the response map before it is encoded.
	Response func(cmd byte, m map[int]any)
	// Raw rewrites the encoded response (status byte included).
	Raw func(cmd byte, resp []byte) []byte
}

type credential struct {
	rpID  string
	key   *ecdsa.PrivateKey
	count uint32
}

// Authenticator is the test device. It is safe for concurrent use.
type Authenticator struct {
	opts Options
	enc  cbor.EncMode
	dec  cbor.DecMode

	mu     sync.Mutex
	creds  map[string]*credential
	tamper Tamper
	calls  int
}

// New returns a device with no credentials.
func New(o Options) *Authenticator {
	if o.Format == "" {
		o.Format = "none"
	}
	enc, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	dec, err := cbor.DecOptions{DupMapKey: cbor.DupMapKeyEnforcedAPF, IndefLength: cbor.IndefLengthForbidden}.DecMode()
	if err != nil {
		panic(err)
	}
	return &Authenticator{opts: o, enc: enc, dec: dec, creds: map[string]*credential{}}
}

// SetTamper sets the hooks for the following requests.
func (a *Authenticator) SetTamper(t Tamper) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tamper = t
}

// Calls returns the number of commands received.
func (a *Authenticator) Calls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

// PublicKey returns a credential's public key (nil if unknown).
func (a *Authenticator) PublicKey(credentialID []byte) *ecdsa.PublicKey {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.creds[string(credentialID)]; c != nil {
		return &c.key.PublicKey
	}
	return nil
}

// Ctap2Send implements manager.Ctap2Transport.
func (a *Authenticator) Ctap2Send(ctx context.Context, command []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if len(command) < 2 {
		return []byte{StatusInvalidLength}, nil
	}
	cmd, body := command[0], command[1:]
	// The request must be canonical CTAP2 CBOR: decoded and re-encoded
	// canonically, it is the same bytes.
	var generic any
	if err := a.dec.Unmarshal(body, &generic); err != nil {
		return []byte{StatusInvalidCBOR}, nil
	}
	if again, err := a.enc.Marshal(generic); err != nil || !bytes.Equal(again, body) {
		return []byte{StatusInvalidCBOR}, nil
	}
	var m map[int]any
	var status byte
	switch cmd {
	case 0x01:
		m, status = a.makeCredential(body)
	case 0x02:
		m, status = a.getAssertion(body)
	default:
		return []byte{StatusInvalidCommand}, nil
	}
	if status != StatusOK {
		return []byte{status}, nil
	}
	if a.opts.Deny {
		return []byte{StatusOperationDenied}, nil
	}
	if a.tamper.Response != nil {
		a.tamper.Response(cmd, m)
	}
	out, err := a.enc.Marshal(m)
	if err != nil {
		return nil, err
	}
	resp := append([]byte{StatusOK}, out...)
	if a.tamper.Raw != nil {
		resp = a.tamper.Raw(cmd, resp)
	}
	return resp, nil
}

// Descriptor is a PublicKeyCredentialDescriptor (the credential of an
// assertion response, for a [Tamper.Response] hook).
type Descriptor struct {
	ID   []byte `cbor:"id"`
	Type string `cbor:"type"`
}

type makeCredentialRequest struct {
	ClientDataHash []byte `cbor:"1,keyasint"`
	RP             *struct {
		ID string `cbor:"id"`
	} `cbor:"2,keyasint"`
	User *struct {
		ID []byte `cbor:"id"`
	} `cbor:"3,keyasint"`
	Params []struct {
		Alg  int    `cbor:"alg"`
		Type string `cbor:"type"`
	} `cbor:"4,keyasint"`
	Options        map[string]bool `cbor:"7,keyasint"`
	PinUvAuthParam []byte          `cbor:"8,keyasint"`
}

func (a *Authenticator) makeCredential(body []byte) (map[int]any, byte) {
	var r makeCredentialRequest
	if err := a.dec.Unmarshal(body, &r); err != nil {
		return nil, StatusInvalidCBOR
	}
	if r.ClientDataHash == nil || r.RP == nil || r.User == nil || r.Params == nil {
		return nil, StatusMissingParameter
	}
	if len(r.ClientDataHash) != 32 || r.RP.ID == "" || len(r.User.ID) == 0 || len(r.User.ID) > 64 || r.PinUvAuthParam != nil {
		return nil, StatusInvalidParameter
	}
	es256 := false
	for _, p := range r.Params {
		es256 = es256 || (p.Alg == -7 && p.Type == "public-key")
	}
	if !es256 {
		return nil, StatusUnsupportedAlg
	}
	flags, status := a.options(r.Options, true)
	if status != StatusOK {
		return nil, status
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, StatusInvalidParameter
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	a.creds[string(id)] = &credential{rpID: r.RP.ID, key: key}
	cose, _ := a.enc.Marshal(COSEKey(&key.PublicKey))
	ad := authData(r.RP.ID, flags|0x40, 0)
	ad = append(ad, make([]byte, 16)...) // AAGUID: zero, as for "none"
	ad = binary.BigEndian.AppendUint16(ad, uint16(len(id)))
	ad = append(append(ad, id...), cose...)
	if a.tamper.AuthData != nil {
		ad = a.tamper.AuthData(0x01, ad)
	}
	stmt := map[string]any{}
	if a.opts.Format == "packed" {
		sig, status := sign(key, ad, r.ClientDataHash)
		if status != StatusOK {
			return nil, status
		}
		stmt = map[string]any{"alg": -7, "sig": sig}
	}
	return map[int]any{1: a.opts.Format, 2: ad, 3: stmt}, StatusOK
}

type getAssertionRequest struct {
	RPID           string          `cbor:"1,keyasint"`
	ClientDataHash []byte          `cbor:"2,keyasint"`
	AllowList      []Descriptor    `cbor:"3,keyasint"`
	Options        map[string]bool `cbor:"5,keyasint"`
	PinUvAuthParam []byte          `cbor:"6,keyasint"`
}

func (a *Authenticator) getAssertion(body []byte) (map[int]any, byte) {
	var r getAssertionRequest
	if err := a.dec.Unmarshal(body, &r); err != nil {
		return nil, StatusInvalidCBOR
	}
	if r.RPID == "" || r.ClientDataHash == nil {
		return nil, StatusMissingParameter
	}
	if len(r.ClientDataHash) != 32 || r.PinUvAuthParam != nil {
		return nil, StatusInvalidParameter
	}
	flags, status := a.options(r.Options, false)
	if status != StatusOK {
		return nil, status
	}
	var id []byte
	var c *credential
	for _, d := range r.AllowList {
		if cr := a.creds[string(d.ID)]; cr != nil && cr.rpID == r.RPID && d.Type == "public-key" {
			id, c = d.ID, cr
			break
		}
	}
	if c == nil { // no discoverable credentials here
		return nil, StatusNoCredentials
	}
	c.count++
	ad := authData(r.RPID, flags, c.count)
	if a.tamper.AuthData != nil {
		ad = a.tamper.AuthData(0x02, ad)
	}
	sig, status := sign(c.key, ad, r.ClientDataHash)
	if status != StatusOK {
		return nil, status
	}
	if a.tamper.Signature != nil {
		sig = a.tamper.Signature(sig)
	}
	return map[int]any{1: Descriptor{ID: bytes.Clone(id), Type: "public-key"}, 2: ad, 3: sig}, StatusOK
}

// options reads the options map and returns the flags to set.
func (a *Authenticator) options(o map[string]bool, create bool) (byte, byte) {
	flags := byte(0x01) // UP: the test user always touches
	for k, v := range o {
		switch k {
		case "rk":
			if v {
				return 0, StatusUnsupportedOption
			}
		case "up":
			if create {
				return 0, StatusInvalidOption
			}
			if !v {
				flags &^= 0x01
			}
		case "uv":
			if v && !a.opts.UV {
				return 0, StatusInvalidOption
			}
			if v {
				flags |= 0x04
			}
		}
	}
	if a.opts.BackupEligible {
		flags |= 0x08 | 0x10
	}
	return flags, StatusOK
}

func authData(rpID string, flags byte, count uint32) []byte {
	h := sha256.Sum256([]byte(rpID))
	ad := append(h[:], flags)
	return binary.BigEndian.AppendUint32(ad, count)
}

func sign(key *ecdsa.PrivateKey, ad, cdh []byte) ([]byte, byte) {
	msg := sha256.Sum256(append(bytes.Clone(ad), cdh...))
	sig, err := ecdsa.SignASN1(rand.Reader, key, msg[:])
	if err != nil {
		return nil, StatusInvalidParameter
	}
	return sig, StatusOK
}

// COSEKey returns pub as an ES256 COSE_Key map, ready to encode.
func COSEKey(pub *ecdsa.PublicKey) map[int]any {
	raw, _ := pub.Bytes()
	return map[int]any{1: 2, 3: -7, -1: 1, -2: raw[1:33], -3: raw[33:65]}
}
