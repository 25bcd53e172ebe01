// Package device is the contract between wsca and a Wallet Secure
// Cryptographic Device (WSCD): a store of P-256 keys that never leave it.
//
// A Device generates keys, signs 32-byte digests (raw r‖s, the form JOSE and
// PKCS#11 CKM_ECDSA use), performs ECDH with a validated peer point, lists and
// destroys keys. Every call names the owning wallet unit; a device refuses
// to touch a key that belongs to another unit and answers as if the key did
// not exist, so a caller cannot probe for other units' kids.
//
// Inputs from the network reach a device only as validated types: a [KID]
// from [ParseKID], an [Owner] from [ParseOwner], a peer point from
// [ParsePoint]. Backends live in the subpackages pkcs11 and soft.
package device

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"errors"

	"github.com/wsca/wsca/ecp256"
)

// Errors returned by every backend. Callers test them with errors.Is.
var (
	// ErrKeyNotFound means no key with that kid belongs to that owner; it is
	// also the answer when the key exists but belongs to someone else.
	ErrKeyNotFound = errors.New("device: key not found")
	ErrInvalidKID  = errors.New("device: invalid kid")
	// ErrInvalidOwner means the owner is empty or has characters a device
	// label cannot carry.
	ErrInvalidOwner = errors.New("device: invalid owner")
	// ErrInvalidPoint is [ecp256.ErrInvalidPoint]: a peer or public point
	// that is not on P-256 or not a SEC1 encoding.
	ErrInvalidPoint  = ecp256.ErrInvalidPoint
	ErrInvalidDigest = errors.New("device: digest must be 32 bytes")
	// ErrUnavailable means the device could not be reached or failed; the
	// operation may succeed if retried later.
	ErrUnavailable = errors.New("device: unavailable")
	ErrClosed      = errors.New("device: closed")
	// ErrWrappedUnsupported means a [Ref] carries a key blob for a device
	// that does not run in [StorageWrapped] (the soft keystore never
	// does; a PKCS#11 token only when configured so).
	ErrWrappedUnsupported = errors.New("device: wrapped keys not supported by this device")
	// ErrInvalidBlob means a [Ref]'s key blob cannot be used: malformed,
	// truncated, altered, made under a wrapping key this device does not
	// hold, or holding another key than the one the kid names. The device
	// refuses it before any signature or derivation with it.
	ErrInvalidBlob = errors.New("device: invalid key blob")
	// ErrNotExtractable means a token object cannot be wrapped: the token
	// made it with CKA_EXTRACTABLE false, which PKCS#11 never lets anyone
	// turn back on, or lets only a trusted key wrap it and the wrapping
	// key is not trusted. The key keeps working as a token object.
	ErrNotExtractable = errors.New("device: key cannot be wrapped")
	// ErrWrappingKeyInUse means the wrapping key to delete is the one the
	// device wraps new keys under.
	ErrWrappingKeyInUse = errors.New("device: the wrapping key is the current one")
	// ErrKeyUsage means the key may not be used for the operation: a
	// signature with a derive-only key ([DeriveOnlyGenerator]).
	ErrKeyUsage = errors.New("device: operation not permitted for this key")
)

// Storage is where a device keeps the private keys it generates.
type Storage string

const (
	// StorageToken: every key is an object on the device, addressed by
	// owner and kid; [Key.Wrapped] is nil. The default, and the only mode
	// of the soft keystore.
	StorageToken Storage = "token"
	// StorageWrapped: [Device.Generate] returns the private key wrapped
	// under a key that never leaves the device ([Key.Wrapped], an opaque
	// blob) and keeps no object of it. The caller stores the blob and
	// passes it back in [Ref.Wrapped] on every use; the device unwraps it
	// (or finds it in a bounded cache of unwrapped objects) and refuses a
	// blob that does not hold the key the kid names. The device cannot
	// tell owners apart for such a key: binding the blob to its owner is
	// the caller's (an authenticated record). A Ref without a blob still
	// addresses a token object, so keys made before the switch keep
	// working.
	StorageWrapped Storage = "wrapped"
)

// DigestSize is the only digest length a device signs: SHA-256 for ES256.
const DigestSize = 32

// SignatureSize is the length of a raw r‖s P-256 signature.
const SignatureSize = ecp256.SignatureSize

// Ref addresses one key of one wallet unit.
type Ref struct {
	Owner Owner
	KID   KID
	// Wrapped is the key's blob ([Key.Wrapped]) for a key generated in
	// [StorageWrapped]; nil for a token object. The device only reads it.
	Wrapped []byte
}

// Key describes a key held by a device.
type Key struct {
	KID    KID
	Owner  Owner
	Public *ecdsa.PublicKey
	// Wrapped is the private key wrapped by the device, for a key made in
	// [StorageWrapped]: opaque to the caller, who stores it and passes it
	// in [Ref.Wrapped]. Nil for a token object.
	Wrapped []byte
}

// Ref returns the reference that addresses k.
func (k Key) Ref() Ref { return Ref{Owner: k.Owner, KID: k.KID, Wrapped: k.Wrapped} }

// Info describes a device for logs, metrics, readiness and attestations.
type Info struct {
	// Backend is "pkcs11" or "soft".
	Backend string
	// Assurance is how the device protects keys, as configured (never
	// detected): the soft keystore is always AssuranceSoftware, a PKCS#11
	// token AssuranceNotCertified unless its operator declared more. An
	// attestation backed by the device claims no more than this.
	Assurance Assurance
	// Description names the token or keystore, without secrets.
	Description string
	// Storage is where generated keys live; empty means StorageToken.
	Storage Storage
}

// SoftwareOnly reports whether keys are known to be protected by software
// only.
func (i Info) SoftwareOnly() bool { return i.Assurance == AssuranceSoftware }

// Device is a WSCD. Implementations are safe for concurrent use.
type Device interface {
	Info() Info
	// Generate creates a new P-256 key owned by owner. The private key is
	// sensitive and cannot be extracted, except wrapped under the device's
	// own wrapping key in [StorageWrapped] (then Key.Wrapped is set).
	Generate(ctx context.Context, owner Owner) (Key, error)
	// PublicKey returns the key's public half.
	PublicKey(ctx context.Context, ref Ref) (Key, error)
	// Sign signs a 32-byte digest and returns the raw 64-byte r‖s signature.
	Sign(ctx context.Context, ref Ref, digest []byte) ([]byte, error)
	// ECDH returns the 32-byte x-coordinate of d·peer.
	ECDH(ctx context.Context, ref Ref, peer *ecdh.PublicKey) ([]byte, error)
	// List returns the owner's keys that are objects on the device,
	// ordered by kid. Wrapped keys are not objects and are never listed:
	// their list is the caller's record.
	List(ctx context.Context, owner Owner) ([]Key, error)
	// Destroy erases the key from the device. For a wrapped key it drops
	// any unwrapped copy; erasing the blob is the caller's.
	Destroy(ctx context.Context, ref Ref) error
	// Ping checks that the device answers; readiness probes call it.
	Ping(ctx context.Context) error
	// Calls returns how many primitive device calls each kind of call has
	// made since the device was opened (for PKCS#11, one per C_ function).
	Calls() map[string]uint64
	Close() error
}

// Importer is implemented by devices that can take in an existing private
// key, for migration from another device and for known-answer tests. An
// imported key is marked as not generated on the device.
type Importer interface {
	Import(ctx context.Context, owner Owner, priv *ecdh.PrivateKey) (Key, error)
}

// WrappingKey is a key-wrapping key of a device in [StorageWrapped].
type WrappingKey struct {
	// ID is the id blobs name it by (PKCS#11: its CKA_ID).
	ID    []byte
	Label string
	// Current: the device wraps new keys under it.
	Current bool
}

// Rewrapper is implemented by devices in [StorageWrapped] that move keys
// from one wrapping key to another (rotation) and from token objects to
// wrapped storage (migration). Neither leaves an object of the key on the
// device, and neither gives the caller anything but blobs.
type Rewrapper interface {
	// Rewrap returns ref's key (ref.Wrapped set) wrapped under the
	// current wrapping key with the current mechanism, after checking
	// that the blob holds the kid's key; a blob that already is current
	// comes back unchanged. Errors as for Sign.
	Rewrap(ctx context.Context, ref Ref) ([]byte, error)
	// WrapTokenKey returns a blob, under the current wrapping key, of the
	// token object ref (no blob) names, checked to unwrap to the kid's
	// key. The token object stays: the caller records the blob and then
	// destroys it (Destroy with a ref without blob). ErrNotExtractable if
	// the token does not let it be wrapped.
	WrapTokenKey(ctx context.Context, ref Ref) ([]byte, error)
	// CurrentBlobPrefix returns the bytes that every blob made now has
	// at offset 1 (after its version byte, which says the key's usage and
	// which a re-wrap keeps): they name the wrapping key and mechanism. A
	// blob whose bytes there differ needs Rewrap. Every blob's bytes at
	// that offset and of that length name its wrapping key
	// (WrappingKeyOf).
	CurrentBlobPrefix(ctx context.Context) ([]byte, error)
	// WrappingKeyOf returns the id of the wrapping key that a blob's
	// bytes from offset 1 (len(CurrentBlobPrefix) of them) name;
	// ErrInvalidBlob if malformed.
	WrappingKeyOf(prefix []byte) ([]byte, error)
	// WrappingKeys lists the wrapping keys on the device, by id.
	WrappingKeys(ctx context.Context) ([]WrappingKey, error)
	// DeleteWrappingKey destroys the wrapping key with that id, which
	// makes every blob under it useless for good: ErrWrappingKeyInUse
	// for the current one, ErrKeyNotFound if the device has none.
	DeleteWrappingKey(ctx context.Context, id []byte) error
}

// DeriveOnlyGenerator is implemented by devices that can generate a key
// for ECDH only: on a PKCS#11 token CKA_DERIVE without CKA_SIGN,
// sensitive and not extractable. Sign with such a key fails with
// [ErrKeyUsage]; ECDH, PublicKey, List and Destroy work as for any key.
// In [StorageWrapped] the blob records the usage and the key is
// unwrapped without CKA_SIGN; the blob's header is not authenticated by
// the token, so, as for its owner, the caller binds it with a MAC
// (docs/wrapped-keys.md). SECDSA's per-unit blinding key aU is one.
type DeriveOnlyGenerator interface {
	GenerateDeriveOnly(ctx context.Context, owner Owner) (Key, error)
}

// CheckDigest returns ErrInvalidDigest unless d is exactly DigestSize bytes.
func CheckDigest(d []byte) error {
	if len(d) != DigestSize {
		return ErrInvalidDigest
	}
	return nil
}
