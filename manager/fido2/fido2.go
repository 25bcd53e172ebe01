package fido2

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/kv"
)

// ID is the plugin's default id.
const ID = "fido2"

// User verification settings (WebAuthn's UserVerificationRequirement).
const (
	UVRequired    = "required"
	UVPreferred   = "preferred"
	UVDiscouraged = "discouraged"
)

// Config configures the plugin.
type Config struct {
	// ID is the plugin id (default "fido2"); it also prefixes the
	// plugin's records in Store.
	ID string
	// DisplayName is shown to the user (default "Security key (FIDO2)").
	DisplayName string
	// RPID is the WebAuthn relying party id the credentials are scoped
	// to, a domain name ("wallet.example", "localhost"). Required.
	RPID string
	// Origin is the origin the native path writes into its client data
	// (default "https://"+RPID). The browser path accepts it, and any
	// origin on RPID or a subdomain of it (https; http on localhost).
	Origin string
	// Store keeps the credential records (label, credential id, public
	// key, creation time, RP id, flags at creation). Required.
	Store kv.Store
	// Transport, when set, reaches an authenticator over CTAP2 (native);
	// when nil, the host's AuthCallback.RequestWebAuthnAssertion runs
	// each ceremony (browser).
	Transport manager.Ctap2Transport
	// Properties are what the host states about its authenticators: key
	// storage (default software: nothing is claimed unless stated),
	// attack-potential levels, certification, and the user verification
	// methods its authenticators use ("pin", "fpt"...), which WebAuthn
	// does not report. Exportable is always false.
	Properties manager.Properties
	// UserVerification is "required", "preferred" (default) or
	// "discouraged". Only "required" is checked (the UV flag); the native
	// path then asks for built-in user verification, and otherwise for
	// user presence only.
	UserVerification string
	// UserName names the credential's user to the authenticator and the
	// browser (default "wallet key").
	UserName string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Plugin is the FIDO2 WSCD. Its keys are WebAuthn credentials: they sign
// assertions ([Plugin.SignAssertion]), never a chosen digest.
type Plugin struct {
	c           codec
	id, display string
	rpID        string
	rpIDHash    [32]byte
	origin      string
	store       kv.Store
	transport   manager.Ctap2Transport
	props       manager.Properties
	uv          string
	userName    string
	now         func() time.Time
}

// New returns the plugin.
func New(cfg Config) (*Plugin, error) {
	if cfg.ID == "" {
		cfg.ID = ID
	}
	if cfg.DisplayName == "" {
		cfg.DisplayName = "Security key (FIDO2)"
	}
	if cfg.UserVerification == "" {
		cfg.UserVerification = UVPreferred
	}
	if cfg.UserName == "" {
		cfg.UserName = "wallet key"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.ID) > 64 || strings.ContainsAny(cfg.ID, "/") || kv.CheckKey(cfg.ID) != nil {
		return nil, fmt.Errorf("fido2: invalid plugin id %q", cfg.ID)
	}
	if !validRPID(cfg.RPID) {
		return nil, fmt.Errorf("fido2: invalid RP id %q", cfg.RPID)
	}
	if cfg.Origin == "" {
		cfg.Origin = "https://" + cfg.RPID
	}
	if cfg.Store == nil {
		return nil, errors.New("fido2: a store is required")
	}
	switch cfg.UserVerification {
	case UVRequired, UVPreferred, UVDiscouraged:
	default:
		return nil, fmt.Errorf("fido2: invalid user verification %q", cfg.UserVerification)
	}
	props := cfg.Properties
	props.Exportable = false
	if props.Storage == "" {
		props.Storage = manager.StorageSoftware
	}
	p := &Plugin{
		c: newCodec(), id: cfg.ID, display: cfg.DisplayName, rpID: cfg.RPID, rpIDHash: sha256.Sum256([]byte(cfg.RPID)),
		origin: cfg.Origin, store: cfg.Store, transport: cfg.Transport, props: props, uv: cfg.UserVerification,
		userName: cfg.UserName, now: cfg.Now,
	}
	if !p.originOnRP(cfg.Origin) {
		return nil, fmt.Errorf("fido2: origin %q is not on RP id %q", cfg.Origin, cfg.RPID)
	}
	return p, nil
}

// validRPID accepts a lower-case domain name; an IP address is none
// (WebAuthn refuses it as an RP id), so a last label of digits is refused.
func validRPID(s string) bool {
	if s == "" || len(s) > 253 || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return false
	}
	if last := s[strings.LastIndexByte(s, '.')+1:]; strings.Trim(last, "0123456789") == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// ID implements manager.Plugin.
func (p *Plugin) ID() string { return p.id }

// DisplayName implements manager.Plugin.
func (p *Plugin) DisplayName() string { return p.display }

func (p *Plugin) uvRequired() bool { return p.uv == UVRequired }

// uvMethods are the user verification methods stated for a credential
// whose authenticator verified the user.
func (p *Plugin) uvMethods() []string {
	if len(p.props.UserVerification) > 0 {
		return append([]string(nil), p.props.UserVerification...)
	}
	return []string{"fido2-uv"}
}

// NewKeyProperties implements manager.Plugin: user verification is
// promised only when required.
func (p *Plugin) NewKeyProperties() manager.Properties {
	props := p.props
	props.UserVerification = nil
	if p.uvRequired() {
		props.UserVerification = p.uvMethods()
	}
	return props
}

// record is a credential as the plugin stores it.
type record struct {
	Label        string    `json:"label"`
	CredentialID []byte    `json:"credential_id"`
	PublicKey    []byte    `json:"public_key"` // COSE_Key
	Created      time.Time `json:"created"`
	RPID         string    `json:"rp_id"`
	// UV and BackupEligible are the flags the authenticator reported at
	// creation.
	UV             bool `json:"uv"`
	BackupEligible bool `json:"backup_eligible"`
}

func (p *Plugin) key(handle string) string { return p.id + "/" + handle }

func validHandle(h string) bool {
	if len(h) != 22 {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(h)
	return err == nil && len(b) == 16
}

// load reads a credential record.
func (p *Plugin) load(ctx context.Context, handle string) (*record, *ecdsa.PublicKey, error) {
	if !validHandle(handle) {
		return nil, nil, manager.ErrKeyNotFound
	}
	b, err := p.store.Get(ctx, p.key(handle))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, nil, manager.ErrKeyNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("fido2: store: %w", err)
	}
	return p.decode(b)
}

func (p *Plugin) decode(b []byte) (*record, *ecdsa.PublicKey, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCorruptRecord, err)
	}
	if len(r.CredentialID) == 0 || len(r.CredentialID) > maxCredentialID {
		return nil, nil, fmt.Errorf("%w: credential id", ErrCorruptRecord)
	}
	pub, err := p.c.parseCOSEKey(r.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCorruptRecord, err)
	}
	if r.RPID != p.rpID {
		return nil, nil, fmt.Errorf("%w: %q", ErrOtherRP, r.RPID)
	}
	return &r, pub, nil
}

func (p *Plugin) waiting(env manager.Env, op manager.Op) {
	env.Report(manager.Progress{Plugin: p.id, Op: op, Stage: manager.StageWaitingForUser})
}

// Generate implements manager.Plugin: it registers a new credential
// (non-discoverable) and stores its record under a random handle.
func (p *Plugin) Generate(ctx context.Context, label string, env manager.Env) (manager.PluginKey, []string, error) {
	if err := ctx.Err(); err != nil {
		return manager.PluginKey{}, nil, err
	}
	var userID [16]byte
	challenge := make([]byte, 32)
	_, _ = rand.Read(userID[:])
	_, _ = rand.Read(challenge)
	handle := base64.RawURLEncoding.EncodeToString(userID[:])
	p.waiting(env, manager.OpGenerate)
	var a *authData
	var err error
	if p.transport != nil {
		a, err = p.createNative(ctx, userID[:], challenge)
	} else {
		a, err = p.createBrowser(ctx, userID[:], challenge, env)
	}
	if err != nil {
		return manager.PluginKey{}, nil, err
	}
	if err := checkAuthData(a, p.rpIDHash[:], p.uvRequired()); err != nil {
		return manager.PluginKey{}, nil, err
	}
	created := p.now().UTC().Truncate(time.Second)
	rec := record{
		Label: label, CredentialID: bytes.Clone(a.credentialID), PublicKey: bytes.Clone(a.coseKey), Created: created,
		RPID: p.rpID, UV: a.flags&flagUV != 0, BackupEligible: a.flags&flagBE != 0,
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return manager.PluginKey{}, nil, fmt.Errorf("fido2: %w", err)
	}
	if err := p.store.Create(ctx, p.key(handle), b); err != nil {
		return manager.PluginKey{}, nil, fmt.Errorf("fido2: store: %w", err)
	}
	return manager.PluginKey{Handle: handle, Public: a.public, Label: label, Created: created}, p.amr(&rec, a.flags), nil
}

func (p *Plugin) createNative(ctx context.Context, userID, challenge []byte) (*authData, error) {
	cdh := sha256.Sum256(buildClientData(typeCreate, challenge, p.origin))
	cmd, err := p.c.encodeCommand(cmdMakeCredential, makeCredentialRequest{
		ClientDataHash:   cdh[:],
		RP:               rpEntity{ID: p.rpID, Name: p.rpID},
		User:             userEntity{ID: userID, Name: p.userName, DisplayName: p.userName},
		PubKeyCredParams: []credParam{{Alg: coseAlgES256, Type: "public-key"}},
		Options:          uvOption(p.uvRequired()),
	})
	if err != nil {
		return nil, err
	}
	body, err := p.c.send(ctx, p.transport, cmd)
	if err != nil {
		return nil, err
	}
	return p.c.parseMakeCredential(body)
}

func (p *Plugin) createBrowser(ctx context.Context, userID, challenge []byte, env manager.Env) (*authData, error) {
	out, err := p.ceremony(ctx, env, manager.WebAuthnRequest{
		Plugin: p.id, RPID: p.rpID, Create: true, Challenge: challenge, UserID: userID, UserName: p.userName,
		UserVerification: p.uv,
	})
	if err != nil {
		return nil, err
	}
	var w manager.WebAuthnCreation
	if err := json.Unmarshal(out, &w); err != nil {
		return nil, fmt.Errorf("%w: creation answer: %v", ErrMalformed, err)
	}
	id, err1 := b64(w.ID)
	att, err2 := b64(w.AttestationObject)
	cdj, err3 := b64(w.ClientDataJSON)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, fmt.Errorf("%w: creation answer: %v", ErrMalformed, err)
	}
	if err := p.checkClientData(cdj, typeCreate, challenge); err != nil {
		return nil, err
	}
	a, err := p.c.parseAttestationObject(att)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(id, a.credentialID) {
		return nil, fmt.Errorf("%w: the answer's id is not the credential's", ErrRejected)
	}
	return a, nil
}

// ceremony asks the host to run a WebAuthn ceremony and bounds its answer.
func (p *Plugin) ceremony(ctx context.Context, env manager.Env, req manager.WebAuthnRequest) ([]byte, error) {
	if env.Auth == nil {
		return nil, manager.ErrAuthRequired
	}
	out, err := env.Auth.RequestWebAuthnAssertion(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("fido2: WebAuthn: %w", err)
	}
	if len(out) > maxMessage {
		return nil, fmt.Errorf("%w: answer of %d bytes", ErrMalformed, len(out))
	}
	return out, nil
}

// b64 decodes WebAuthn's toJSON() bytes: base64url without padding.
func b64(s string) ([]byte, error) {
	if len(s) > maxMessage*4/3+4 {
		return nil, errors.New("value too large")
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

// Lookup implements manager.Plugin.
func (p *Plugin) Lookup(ctx context.Context, label string, env manager.Env) (manager.PluginKey, bool, error) {
	keys, err := p.List(ctx, env)
	if err != nil {
		return manager.PluginKey{}, false, err
	}
	for _, k := range keys {
		if k.Label == label {
			return k, true, nil
		}
	}
	return manager.PluginKey{}, false, nil
}

// List implements manager.Plugin: the records of this plugin's RP id.
func (p *Plugin) List(ctx context.Context, _ manager.Env) ([]manager.PluginKey, error) {
	names, err := p.store.List(ctx, p.id+"/")
	if err != nil {
		return nil, fmt.Errorf("fido2: store: %w", err)
	}
	out := make([]manager.PluginKey, 0, len(names))
	for _, n := range names {
		handle := strings.TrimPrefix(n, p.id+"/")
		r, pub, err := p.load(ctx, handle)
		if errors.Is(err, manager.ErrKeyNotFound) || errors.Is(err, ErrOtherRP) {
			continue // deleted meanwhile, or another RP id's credential
		}
		if err != nil {
			return nil, err
		}
		out = append(out, manager.PluginKey{Handle: handle, Public: pub, Label: r.Label, Created: r.Created})
	}
	return out, nil
}

// Sign implements manager.Plugin: a FIDO2 credential cannot sign a chosen
// digest, so an existing key is manager.ErrAssertionOnly.
func (p *Plugin) Sign(ctx context.Context, handle string, _ []byte, _ manager.Env) ([]byte, []string, error) {
	if _, _, err := p.load(ctx, handle); err != nil {
		return nil, nil, err
	}
	return nil, nil, manager.ErrAssertionOnly
}

// SignAssertion implements manager.AssertionPlugin: a getAssertion whose
// client data names challenge, checked (RP id hash, user presence, user
// verification when required, the credential, the client data on the
// browser path, the signature under the stored key) before it is
// returned, with the signature as raw r‖s.
func (p *Plugin) SignAssertion(ctx context.Context, handle string, challenge []byte, env manager.Env) (manager.Assertion, []string, error) {
	if len(challenge) == 0 || len(challenge) > 64 {
		return manager.Assertion{}, nil, fmt.Errorf("%w: a challenge is 1 to 64 bytes", manager.ErrInvalidInput)
	}
	rec, pub, err := p.load(ctx, handle)
	if err != nil {
		return manager.Assertion{}, nil, err
	}
	p.waiting(env, manager.OpSign)
	var cdj, ad, der []byte
	var a *authData
	if p.transport != nil {
		cdj, ad, der, a, err = p.getNative(ctx, rec, challenge)
	} else {
		cdj, ad, der, a, err = p.getBrowser(ctx, rec, challenge, env)
	}
	if err != nil {
		return manager.Assertion{}, nil, err
	}
	if err := checkAuthData(a, p.rpIDHash[:], p.uvRequired()); err != nil {
		return manager.Assertion{}, nil, err
	}
	sig, err := derToRaw(der)
	if err != nil {
		return manager.Assertion{}, nil, fmt.Errorf("%w: signature: %v", ErrMalformed, err)
	}
	cdh := sha256.Sum256(cdj)
	msg := sha256.Sum256(append(bytes.Clone(ad), cdh[:]...))
	if !ecdsa.Verify(pub, msg[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return manager.Assertion{}, nil, fmt.Errorf("%w: signature", ErrRejected)
	}
	return manager.Assertion{
		CredentialID: bytes.Clone(rec.CredentialID), AuthenticatorData: bytes.Clone(ad), ClientDataJSON: cdj, Signature: sig,
	}, p.amr(rec, a.flags), nil
}

func (p *Plugin) getNative(ctx context.Context, rec *record, challenge []byte) (cdj, ad, der []byte, a *authData, err error) {
	cdj = buildClientData(typeGet, challenge, p.origin)
	cdh := sha256.Sum256(cdj)
	cmd, err := p.c.encodeCommand(cmdGetAssertion, getAssertionRequest{
		RPID: p.rpID, ClientDataHash: cdh[:], AllowList: []descriptor{{ID: rec.CredentialID, Type: "public-key"}},
		Options: uvOption(p.uvRequired()),
	})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	body, err := p.c.send(ctx, p.transport, cmd)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	r, a, err := p.c.parseGetAssertion(body)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	// CTAP2 lets the authenticator omit the credential when the allow
	// list has one entry; when it names one, it must be ours.
	if r.Credential != nil && !bytes.Equal(r.Credential.ID, rec.CredentialID) {
		return nil, nil, nil, nil, fmt.Errorf("%w: the assertion is by another credential", ErrRejected)
	}
	return cdj, r.AuthData, r.Signature, a, nil
}

func (p *Plugin) getBrowser(ctx context.Context, rec *record, challenge []byte, env manager.Env) (cdj, ad, der []byte, a *authData, err error) {
	out, err := p.ceremony(ctx, env, manager.WebAuthnRequest{
		Plugin: p.id, RPID: p.rpID, Challenge: challenge, AllowCredentials: [][]byte{rec.CredentialID},
		UserVerification: p.uv,
	})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var w manager.WebAuthnGet
	if err := json.Unmarshal(out, &w); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("%w: assertion answer: %v", ErrMalformed, err)
	}
	id, err1 := b64(w.ID)
	ad, err2 := b64(w.AuthenticatorData)
	cdj, err3 := b64(w.ClientDataJSON)
	der, err4 := b64(w.Signature)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("%w: assertion answer: %v", ErrMalformed, err)
	}
	if !bytes.Equal(id, rec.CredentialID) {
		return nil, nil, nil, nil, fmt.Errorf("%w: the assertion is by another credential", ErrRejected)
	}
	if err := p.checkClientData(cdj, typeGet, challenge); err != nil {
		return nil, nil, nil, nil, err
	}
	if a, err = p.c.parseAuthData(ad, false); err != nil {
		return nil, nil, nil, nil, err
	}
	return cdj, ad, der, a, nil
}

// PublicKey implements manager.Plugin.
func (p *Plugin) PublicKey(ctx context.Context, handle string, _ manager.Env) (*ecdsa.PublicKey, error) {
	_, pub, err := p.load(ctx, handle)
	return pub, err
}

// Properties implements manager.Plugin: the host's statement, except that
// a backup-eligible credential (a synced passkey) is software storage
// with no attack-potential level, and user verification is named only
// when the authenticator verified the user at creation.
func (p *Plugin) Properties(ctx context.Context, handle string, _ manager.Env) (manager.Properties, error) {
	r, _, err := p.load(ctx, handle)
	if err != nil {
		return manager.Properties{}, err
	}
	return p.recordProperties(r), nil
}

func (p *Plugin) recordProperties(r *record) manager.Properties {
	props := p.props
	props.UserVerification = nil
	if r.UV {
		props.UserVerification = p.uvMethods()
	}
	if r.BackupEligible {
		props.Storage = manager.StorageSoftware
		props.KeyStorageAttackPotential, props.Certification = "", ""
	}
	return props
}

// amr are the RFC 8176 factors of one ceremony: hwk for a key in hardware
// the host stated (swk otherwise), user for the presence test every
// ceremony makes, and when the user was verified the stated methods, or
// mfa when none was stated (possession and a verification WebAuthn does
// not name).
func (p *Plugin) amr(r *record, flags byte) []string {
	out := []string{"swk"}
	if p.recordProperties(r).Storage == manager.StorageHardware {
		out[0] = "hwk"
	}
	if flags&flagUP != 0 {
		out = append(out, "user")
	}
	if flags&flagUV != 0 {
		if len(p.props.UserVerification) > 0 {
			out = append(out, p.props.UserVerification...)
		} else {
			out = append(out, "mfa")
		}
	}
	return out
}

// Delete implements manager.Plugin: it removes the record. The credential
// stays on the authenticator (WebAuthn cannot delete one; CTAP 2.1
// credential management is not implemented), unusable without its id.
func (p *Plugin) Delete(ctx context.Context, handle string, _ manager.Env) ([]string, error) {
	if !validHandle(handle) {
		return nil, nil
	}
	if err := p.store.Delete(ctx, p.key(handle)); err != nil {
		return nil, fmt.Errorf("fido2: store: %w", err)
	}
	return nil, nil
}

var (
	_ manager.Plugin          = (*Plugin)(nil)
	_ manager.AssertionPlugin = (*Plugin)(nil)
)
