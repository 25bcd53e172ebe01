// Package mobile is the key manager for mobile apps: a facade over package
// manager that uses only the types gomobile can bind (string, []byte,
// bool, int, int64, error, pointers to structs of those, and interfaces
// whose methods use them), for `gomobile bind` to Android (AAR) and iOS
// (XCFramework). The C ABI (manager/capi) is built on it too.
//
// Errors are *Error values with a stable Code (see the Code constants);
// bindings surface them as exceptions whose message starts with the code.
package mobile

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/fido2"
	"github.com/wsca/wsca/manager/kv"
	"github.com/wsca/wsca/manager/remote"
	"github.com/wsca/wsca/manager/softkey"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/r2ps/client/httptransport"
)

// Error codes.
const (
	CodeInvalidInput     = "INVALID_INPUT"
	CodeNoPlugin         = "NO_PLUGIN"
	CodeNoDefault        = "NO_DEFAULT"
	CodeUnsupported      = "UNSUPPORTED"
	CodeKeyNotFound      = "KEY_NOT_FOUND"
	CodeNoEligiblePlugin = "NO_ELIGIBLE_PLUGIN"
	CodeAuthRequired     = "AUTH_REQUIRED"
	CodeAuthCancelled    = "AUTH_CANCELLED"
	CodeBusy             = "BUSY"
	CodeAssertionOnly    = "ASSERTION_ONLY"
	CodeServer           = "SERVER"
	CodeInternal         = "INTERNAL"
)

// Error is every error this package returns.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// toError maps the manager's errors to codes; the message never holds a
// secret (the manager's errors hold none).
func toError(err error) error {
	if err == nil {
		return nil
	}
	var ce *client.Error
	code := CodeInternal
	switch {
	case errors.Is(err, manager.ErrInvalidInput):
		code = CodeInvalidInput
	case errors.Is(err, manager.ErrNoPlugin):
		code = CodeNoPlugin
	case errors.Is(err, manager.ErrNoDefault):
		code = CodeNoDefault
	case errors.Is(err, manager.ErrUnsupported):
		code = CodeUnsupported
	case errors.Is(err, manager.ErrKeyNotFound):
		code = CodeKeyNotFound
	case errors.Is(err, manager.ErrNoEligiblePlugin):
		code = CodeNoEligiblePlugin
	case errors.Is(err, manager.ErrAuthRequired):
		code = CodeAuthRequired
	case errors.Is(err, manager.ErrAuthCancelled):
		code = CodeAuthCancelled
	case errors.Is(err, manager.ErrBusy):
		code = CodeBusy
	case errors.Is(err, manager.ErrAssertionOnly):
		code = CodeAssertionOnly
	case errors.As(err, &ce):
		code = CodeServer
	}
	return &Error{Code: code, Message: err.Error()}
}

func invalid(format string, a ...any) error {
	return &Error{Code: CodeInvalidInput, Message: fmt.Sprintf(format, a...)}
}

// AuthCallback is the app's user interface for PINs. RequestPIN returns
// the PIN as bytes (the manager zeroes them after use) or an error to
// cancel. plugin names the WSCD asking; reason is unlock, register,
// change_old or change_new.
type AuthCallback interface {
	RequestPIN(plugin, displayName, reason string) ([]byte, error)
}

type authBridge struct{ cb AuthCallback }

func (a authBridge) RequestPIN(_ context.Context, r manager.PINRequest) (*manager.Secret, error) {
	if a.cb == nil {
		return nil, manager.ErrAuthRequired
	}
	b, err := a.cb.RequestPIN(r.Plugin, r.DisplayName, string(r.Reason))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", manager.ErrAuthCancelled, err)
	}
	return manager.NewSecret(b), nil
}

func (a authBridge) RequestWebAuthnAssertion(context.Context, manager.WebAuthnRequest) ([]byte, error) {
	return nil, manager.ErrUnsupported
}

// Manager is the app's key manager.
type Manager struct {
	m       *manager.Manager
	dir     string
	auth    manager.AuthCallback
	remotes map[string]*remote.Plugin
	timeout time.Duration
}

// NewManager opens the manager in stateDir (bindings and the softkey
// keystore) with kek, a 32-byte key the app keeps in the platform keystore
// (Android Keystore, iOS Keychain). The softkey plugin is registered and
// is the default.
func NewManager(stateDir string, kek []byte, auth AuthCallback) (*Manager, error) {
	if stateDir == "" {
		return nil, invalid("no state directory")
	}
	st, err := manager.OpenDirStore(filepath.Join(stateDir, "bindings"))
	if err != nil {
		return nil, toError(err)
	}
	sk, err := softkey.Open(filepath.Join(stateDir, "softkey"), kek)
	if err != nil {
		return nil, invalid("%v", err)
	}
	mm := &Manager{dir: stateDir, auth: authBridge{auth}, remotes: map[string]*remote.Plugin{}, timeout: 2 * time.Minute}
	m, err := manager.New(context.Background(), manager.Config{Store: st, Default: softkey.ID, Auth: mm.auth}, sk)
	if err != nil {
		return nil, toError(err)
	}
	mm.m = m
	return mm, nil
}

func (m *Manager) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), m.timeout)
}

// R2PSConfig configures a remote WSCD. The client keys are PEM (PKCS#8):
// SigningKeyPEM (CSK, P-256 ECDSA) and AgreementKeyPEM (CAK, P-256).
type R2PSConfig struct {
	ID, DisplayName, URL, Unit, Context string
	SigningKeyPEM, AgreementKeyPEM      string
	// KeyStorageAttackPotential and UserAuthAttackPotential are what the
	// Wallet Provider's key attestation states (empty: nothing claimed).
	KeyStorageAttackPotential, UserAuthAttackPotential string
}

// RegisterR2PS adds a remote WSCD plugin. It fetches the server's keys.
func (m *Manager) RegisterR2PS(cfg *R2PSConfig) error {
	if cfg == nil || cfg.URL == "" || cfg.Unit == "" {
		return invalid("R2PS needs a URL and a unit")
	}
	csk, err := parseKey(cfg.SigningKeyPEM)
	if err != nil {
		return invalid("signing key: %v", err)
	}
	cakKey, err := parseKey(cfg.AgreementKeyPEM)
	if err != nil {
		return invalid("agreement key: %v", err)
	}
	cak, err := cakKey.ECDH()
	if err != nil {
		return invalid("agreement key: %v", err)
	}
	ctx, cancel := m.ctx()
	defer cancel()
	hc := &http.Client{Timeout: 30 * time.Second}
	keys, err := client.FetchServerKeys(ctx, httptransport.New(hc), cfg.URL)
	if err != nil {
		return toError(err)
	}
	secCtx := cfg.Context
	if secCtx == "" {
		secCtx = "hsm"
	}
	c, err := client.New(client.Config{URL: cfg.URL, Transport: httptransport.New(hc), Unit: cfg.Unit, Context: secCtx, SigningKey: csk, AgreementKey: cak, Server: keys})
	if err != nil {
		return invalid("%v", err)
	}
	id := cfg.ID
	if id == "" {
		id = remote.DefaultID
	}
	p, err := remote.New(remote.Config{ID: id, DisplayName: cfg.DisplayName, Client: c,
		Journal: filepath.Join(m.dir, "journal-"+id),
		Properties: manager.Properties{KeyStorageAttackPotential: cfg.KeyStorageAttackPotential,
			UserAuthAttackPotential: cfg.UserAuthAttackPotential}})
	if err != nil {
		return toError(err)
	}
	if err := m.m.Register(p); err != nil {
		return toError(err)
	}
	m.remotes[id] = p
	return toError(m.m.Recover(ctx))
}

func parseKey(s string) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		return nil, errors.New("not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an EC key")
	}
	return ek, nil
}

// Enrol registers the R2PS plugin's unit with an activation code (the PIN
// is asked through the AuthCallback with reason register).
func (m *Manager) Enrol(plugin, activationCode string) error {
	p, ok := m.remotes[plugin]
	if !ok {
		return &Error{Code: CodeNoPlugin, Message: "no R2PS plugin " + plugin}
	}
	ctx, cancel := m.ctx()
	defer cancel()
	return toError(p.Enrol(ctx, activationCode, manager.Env{Auth: m.auth}))
}

// ChangePIN changes the R2PS plugin's PIN (current, then new, through the
// AuthCallback).
func (m *Manager) ChangePIN(plugin string) error {
	p, ok := m.remotes[plugin]
	if !ok {
		return &Error{Code: CodeNoPlugin, Message: "no R2PS plugin " + plugin}
	}
	ctx, cancel := m.ctx()
	defer cancel()
	return toError(p.ChangePIN(ctx, manager.Env{Auth: m.auth}))
}

// GenerateRequest selects where a key is made; every field is optional.
// KeyStorage and UserAuthentication are space-separated lists of accepted
// attack-potential values (an issuer's key_attestations_required).
type GenerateRequest struct {
	Plugin, Issuer, CredentialType string
	KeyStorage, UserAuthentication string
}

// Key describes a key. PublicJWK is its public key as a JWK (JSON). AMR is
// space-separated.
type Key struct {
	KID, Plugin, Handle, PublicJWK string
	Created                        int64
	AMR                            string
}

func toKey(k manager.Key, amr []string) (*Key, error) {
	j, err := json.Marshal(jose.JSONWebKey{Key: k.Public, KeyID: string(k.KID), Algorithm: "ES256", Use: "sig"})
	if err != nil {
		return nil, &Error{Code: CodeInternal, Message: err.Error()}
	}
	return &Key{KID: string(k.KID), Plugin: k.Plugin, Handle: k.Handle, PublicJWK: string(j), Created: k.Created.Unix(), AMR: strings.Join(amr, " ")}, nil
}

// GenerateKey makes a P-256 key.
func (m *Manager) GenerateKey(req *GenerateRequest) (*Key, error) {
	if req == nil {
		req = &GenerateRequest{}
	}
	ctx, cancel := m.ctx()
	defer cancel()
	k, res, err := m.m.Generate(ctx, manager.GenerateRequest{Plugin: req.Plugin, Issuer: req.Issuer, CredentialType: req.CredentialType,
		Requirement: manager.Requirement{KeyStorage: strings.Fields(req.KeyStorage), UserAuthentication: strings.Fields(req.UserAuthentication)}})
	if err != nil {
		return nil, toError(err)
	}
	return toKey(k, res.AMR)
}

// Ctap2Transport is how the app reaches a FIDO2 authenticator (USB HID,
// NFC or BLE, through the platform's API): it carries one CTAP2 command
// (command byte and CBOR) and returns the response (status byte and CBOR).
type Ctap2Transport interface {
	Ctap2Send(command []byte) ([]byte, error)
}

type ctap2Bridge struct{ t Ctap2Transport }

func (b ctap2Bridge) Ctap2Send(ctx context.Context, command []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return b.t.Ctap2Send(command)
}

// FIDO2Config configures a FIDO2 WSCD reached over the app's transport.
type FIDO2Config struct {
	// ID defaults to "fido2" (1 to 64 of [A-Za-z0-9_-]: it names the
	// directory of its records); RPID is the relying party id its
	// credentials are scoped to (the app's domain); Origin defaults to
	// "https://"+RPID.
	ID, RPID, Origin string
	// UserVerification is "required", "preferred" (default) or
	// "discouraged"; KeyStorage is what the app states of its
	// authenticators ("hardware"...; empty claims nothing).
	UserVerification, KeyStorage string
}

// RegisterFIDO2 adds a FIDO2 WSCD whose keys sign WebAuthn assertions
// (SignAssertion), never a bare digest. Its records live in the state
// directory.
func (m *Manager) RegisterFIDO2(cfg *FIDO2Config, t Ctap2Transport) error {
	if cfg == nil || cfg.RPID == "" || t == nil {
		return invalid("FIDO2 needs an RP id and a transport")
	}
	id := cfg.ID
	if id == "" {
		id = fido2.ID
	}
	if !plainID(id) {
		return invalid("a plugin id is 1 to 64 letters, digits, '-' or '_'")
	}
	st, err := kv.OpenDir(filepath.Join(m.dir, "fido2-"+id))
	if err != nil {
		return toError(err)
	}
	p, err := fido2.New(fido2.Config{ID: id, RPID: cfg.RPID, Origin: cfg.Origin, Store: st,
		Transport: ctap2Bridge{t}, UserVerification: cfg.UserVerification,
		Properties: manager.Properties{Storage: manager.KeyStorage(cfg.KeyStorage)}})
	if err != nil {
		return invalid("%v", err)
	}
	if err := m.m.Register(p); err != nil {
		return toError(err)
	}
	ctx, cancel := m.ctx()
	defer cancel()
	return toError(m.m.Recover(ctx))
}

// plainID reports whether id can name a directory in the state directory:
// 1 to 64 of [A-Za-z0-9_-].
func plainID(id string) bool {
	return id != "" && len(id) <= 64 &&
		strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == ""
}

// Assertion is a WebAuthn assertion: Signature (raw r‖s) covers
// AuthenticatorData ‖ SHA-256(ClientDataJSON), whose challenge is the
// caller's.
type Assertion struct {
	CredentialID, AuthenticatorData, ClientDataJSON, Signature []byte
	Plugin, AMR                                                string
}

// SignAssertion makes a WebAuthn assertion over challenge with a FIDO2
// key (other keys: UNSUPPORTED).
func (m *Manager) SignAssertion(kid string, challenge []byte) (*Assertion, error) {
	ctx, cancel := m.ctx()
	defer cancel()
	a, res, err := m.m.SignAssertion(ctx, manager.KID(kid), challenge)
	if err != nil {
		return nil, toError(err)
	}
	return &Assertion{CredentialID: a.CredentialID, AuthenticatorData: a.AuthenticatorData,
		ClientDataJSON: a.ClientDataJSON, Signature: a.Signature, Plugin: res.Plugin,
		AMR: strings.Join(res.AMR, " ")}, nil
}

// Result is an operation's output and how it was authorised.
type Result struct {
	// Value is the signature (raw r‖s, 64 bytes) or the ECDH secret.
	Value  []byte
	Plugin string
	AMR    string
}

// Sign signs a 32-byte SHA-256 digest.
func (m *Manager) Sign(kid string, digest []byte) (*Result, error) {
	ctx, cancel := m.ctx()
	defer cancel()
	sig, res, err := m.m.Sign(ctx, manager.KID(kid), digest)
	if err != nil {
		return nil, toError(err)
	}
	return &Result{Value: sig, Plugin: res.Plugin, AMR: strings.Join(res.AMR, " ")}, nil
}

// ECDH agrees a secret with a peer's P-256 point (SEC 1 uncompressed).
func (m *Manager) ECDH(kid string, peer []byte) (*Result, error) {
	pub, err := ecdh.P256().NewPublicKey(peer)
	if err != nil {
		return nil, invalid("peer point: %v", err)
	}
	ctx, cancel := m.ctx()
	defer cancel()
	z, res, err := m.m.ECDH(ctx, manager.KID(kid), pub)
	if err != nil {
		return nil, toError(err)
	}
	return &Result{Value: z, Plugin: res.Plugin, AMR: strings.Join(res.AMR, " ")}, nil
}

// KeyList is a list of keys (gomobile binds no slices of structs).
type KeyList struct {
	keys []*Key
	// Failed names the plugins whose list failed, space-separated.
	Failed string
}

// Len is the number of keys.
func (l *KeyList) Len() int { return len(l.keys) }

// Get returns key i.
func (l *KeyList) Get(i int) *Key {
	if i < 0 || i >= len(l.keys) {
		return nil
	}
	return l.keys[i]
}

// ListKeys lists every plugin's keys; plugins that failed are named in
// Failed, and the others' keys are still returned.
func (m *Manager) ListKeys() (*KeyList, error) {
	ctx, cancel := m.ctx()
	defer cancel()
	keys, err := m.m.List(ctx)
	out := &KeyList{}
	var le *manager.ListError
	if errors.As(err, &le) {
		var ids []string
		for id := range le.Failed {
			ids = append(ids, id)
		}
		out.Failed = strings.Join(ids, " ")
	} else if err != nil {
		return nil, toError(err)
	}
	for _, k := range keys {
		mk, err := toKey(k, nil)
		if err != nil {
			return nil, err
		}
		out.keys = append(out.keys, mk)
	}
	return out, nil
}

// DeleteKey erases a key and its binding.
func (m *Manager) DeleteKey(kid string) error {
	ctx, cancel := m.ctx()
	defer cancel()
	_, err := m.m.Delete(ctx, manager.KID(kid))
	return toError(err)
}

// Migration is the result of MigrateKey.
type Migration struct {
	Migrated, ReEnrollmentRequired bool
	KID                            string
}

// MigrateKey moves a key to another plugin, or says that the credential
// must be issued again to a new key there.
func (m *Manager) MigrateKey(kid, to string) (*Migration, error) {
	ctx, cancel := m.ctx()
	defer cancel()
	r, _, err := m.m.Migrate(ctx, manager.KID(kid), to)
	if err != nil {
		return nil, toError(err)
	}
	return &Migration{Migrated: r.Migrated, ReEnrollmentRequired: r.ReEnrollmentRequired, KID: kid}, nil
}

// Properties returns the key's security properties as JSON.
func (m *Manager) Properties(kid string) (string, error) {
	ctx, cancel := m.ctx()
	defer cancel()
	p, _, err := m.m.Properties(ctx, manager.KID(kid))
	if err != nil {
		return "", toError(err)
	}
	b, err := json.Marshal(p)
	return string(b), toError(err)
}

// Attestation returns the plugin's attestation of a key (a
// key-attestation JWT for R2PS), bound to nonce.
func (m *Manager) Attestation(kid, nonce string) (string, error) {
	ctx, cancel := m.ctx()
	defer cancel()
	a, _, err := m.m.Attestation(ctx, []manager.KID{manager.KID(kid)}, nonce)
	if err != nil {
		return "", toError(err)
	}
	return a.JWT, nil
}

// Plugins lists the registered plugin ids, space-separated.
func (m *Manager) Plugins() string { return strings.Join(m.m.Plugins(), " ") }
