package manager

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"time"
)

// Env is what a plugin may use during one call: the host's callbacks.
type Env struct {
	Auth     AuthCallback
	Progress ProgressCallback
}

// progress reports p if the host listens.
func (e Env) progress(p Progress) {
	if e.Progress != nil {
		e.Progress.OnProgress(p)
	}
}

// PluginKey is a key as a plugin knows it.
type PluginKey struct {
	// Handle is the plugin's own name for the key; only the plugin reads
	// it. It must not be empty and must not change for the key's life.
	Handle string
	Public *ecdsa.PublicKey
	// Label is the label the manager gave when the key was made (empty for
	// a key made outside the manager).
	Label   string
	Created time.Time
}

// Plugin is one WSCD. Every method may be called concurrently. Errors the
// manager defines (ErrKeyNotFound, ErrAuthCancelled, ErrUnsupported...)
// keep their identity through the manager.
type Plugin interface {
	// ID is the plugin's unique, stable id ("softkey", "r2ps", ...).
	ID() string
	// DisplayName is for the user, e.g. in a PIN prompt.
	DisplayName() string
	// NewKeyProperties are the properties a key made now would have; the
	// manager matches them against an issuer's [Requirement].
	NewKeyProperties() Properties
	// Generate makes a P-256 key and stores label with it so that Lookup
	// finds it after a crash. It returns the factors that authorised it.
	Generate(ctx context.Context, label string, env Env) (PluginKey, []string, error)
	// Lookup finds the key made with label; found is false when none was.
	Lookup(ctx context.Context, label string, env Env) (key PluginKey, found bool, err error)
	// Sign signs a 32-byte SHA-256 digest and returns the raw r‖s
	// signature (64 bytes) and the factors that authorised it.
	Sign(ctx context.Context, handle string, digest []byte, env Env) ([]byte, []string, error)
	// PublicKey returns the key's public half.
	PublicKey(ctx context.Context, handle string, env Env) (*ecdsa.PublicKey, error)
	// Properties returns the key's security properties.
	Properties(ctx context.Context, handle string, env Env) (Properties, error)
	// List returns the plugin's keys.
	List(ctx context.Context, env Env) ([]PluginKey, error)
	// Delete erases the key; a key that does not exist is not an error.
	Delete(ctx context.Context, handle string, env Env) ([]string, error)
}

// ECDHPlugin is a plugin that can do key agreement.
type ECDHPlugin interface {
	// ECDH returns the 32-byte x-coordinate of d·peer.
	ECDH(ctx context.Context, handle string, peer *ecdh.PublicKey, env Env) ([]byte, []string, error)
}

// AssertionPlugin is a plugin whose keys sign WebAuthn assertions rather
// than bare digests: a FIDO2 authenticator without a signing extension.
// Its Sign returns ErrAssertionOnly.
type AssertionPlugin interface {
	// SignAssertion runs an assertion whose client data carries challenge
	// (base64url) as its challenge.
	SignAssertion(ctx context.Context, handle string, challenge []byte, env Env) (Assertion, []string, error)
}

// AttestingPlugin is a plugin that can attest its keys.
type AttestingPlugin interface {
	// Attestation returns an attestation of the keys (a key-attestation
	// JWT, a certificate chain...), bound to nonce when the format has one.
	Attestation(ctx context.Context, handles []string, nonce string, env Env) (Attestation, []string, error)
}

// Attestation is a plugin's statement about keys, in its own format.
type Attestation struct {
	// Format names the encoding: "key-attestation+jwt" (OpenID4VCI
	// Appendix D), "x5c" (DER certificates) or "webauthn".
	Format       string
	JWT          string
	Certificates [][]byte
}

// ExportingPlugin can hand out a key's private half for migration, in a
// form only an importing plugin reads. Hardware plugins do not implement
// it.
type ExportingPlugin interface {
	Export(ctx context.Context, handle string, env Env) (*ExportedKey, error)
}

// ImportingPlugin can take in a key exported by another plugin, keeping
// its public key and hence its kid.
type ImportingPlugin interface {
	Import(ctx context.Context, k *ExportedKey, label string, env Env) (PluginKey, []string, error)
}

// ExportedKey is a private key in transit between two plugins of one
// manager. It never leaves the process; Wipe clears it.
type ExportedKey struct {
	priv *ecdh.PrivateKey
}

// NewExportedKey wraps a private key for [ImportingPlugin.Import].
func NewExportedKey(priv *ecdh.PrivateKey) *ExportedKey { return &ExportedKey{priv: priv} }

// PrivateKey returns the key for an importing plugin.
func (k *ExportedKey) PrivateKey() *ecdh.PrivateKey { return k.priv }

// Wipe drops the reference to the key (Go cannot zero the value inside
// crypto/ecdh; the plugin that exported it zeroes its own copy).
func (k *ExportedKey) Wipe() { k.priv = nil }

// String never shows the key.
func (k *ExportedKey) String() string { return "[REDACTED]" }

// AskPIN asks the host for a PIN on behalf of a plugin, telling the host
// which plugin asks and why, and reporting that the operation waits for
// the user. No callback is ErrAuthRequired; an empty answer is
// ErrAuthCancelled. The caller wipes the secret.
func (e Env) AskPIN(ctx context.Context, plugin, displayName string, reason Reason) (*Secret, error) {
	if e.Auth == nil {
		return nil, ErrAuthRequired
	}
	e.progress(Progress{Plugin: plugin, Stage: StageWaitingForUser})
	s, err := e.Auth.RequestPIN(ctx, PINRequest{Plugin: plugin, DisplayName: displayName, Reason: reason, Attempts: -1})
	if err != nil {
		return nil, err
	}
	if s == nil || len(s.Bytes()) == 0 {
		return nil, ErrAuthCancelled
	}
	return s, nil
}

// Report tells the host of a step of a long operation, if it listens.
func (e Env) Report(p Progress) { e.progress(p) }

// RemoteProperties completes the properties a host declared for a remote
// WSCD: storage remote_hsm, never exportable, and PIN user verification
// unless the host named another.
func RemoteProperties(p Properties) Properties {
	p.Storage, p.Exportable = StorageRemoteHSM, false
	if len(p.UserVerification) == 0 {
		p.UserVerification = []string{"pin"}
	}
	return p
}
