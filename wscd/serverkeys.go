package wscd

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/store"
)

// ServerOwner owns the server's own device keys. Unit ids starting with
// ReservedPrefix are refused, so no wallet unit can claim them.
const (
	ServerOwner    device.Owner = "wsca.server"
	ReservedPrefix string       = "wsca."
)

// Purposes of the server's keys.
const (
	// PurposeR2PSSigning signs R2PS responses (the SSK).
	PurposeR2PSSigning = "r2ps-signing"
	// PurposeR2PSAgreement decrypts 1FA requests (the server's static ECDH key).
	PurposeR2PSAgreement = "r2ps-agreement"
	// PurposeSealing derives the key that seals secrets kept in the store.
	PurposeSealing = "sealing"
)

// sealPeerSecret names the public point the sealing key is agreed with.
const sealPeerSecret = "seal-peer"

// sealLabel is the HKDF info of the sealing key.
const sealLabel = "wsca-seal-v1"

// ServerKeyStore is what ServerKeys needs of the store.
type ServerKeyStore interface {
	GetServerKey(ctx context.Context, purpose string) (store.ServerKey, error)
	PutServerKey(ctx context.Context, k store.ServerKey) error
	GetServerSecret(ctx context.Context, name string) ([]byte, error)
	PutServerSecret(ctx context.Context, name string, value []byte, now time.Time) error
}

// ServerKeysConfig assembles a ServerKeys.
type ServerKeysConfig struct {
	Device device.Device
	Store  ServerKeyStore
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives security-relevant events and causes; default discards.
	Logger *slog.Logger
	// Prefix namespaces this role's server keys and secrets in the store,
	// so that two roles with devices of their own can share one store:
	// empty for the WSCD (and a process with both roles), WSCAPrefix for a
	// WSCA instance with a device of its own.
	Prefix string
}

// WSCAPrefix is the store namespace of a WSCA-only instance's server keys.
const WSCAPrefix = "wsca/"

// ServerKeys holds the server's own keys: device keys by purpose (owned by
// ServerOwner), the Sealer derived from one of them, software keys sealed
// in the store, and the MAC that keeps activation codes. Units and the
// R2PS dispatcher share one. It is safe for concurrent use.
type ServerKeys struct {
	base
	dev device.Device
	st  ServerKeyStore

	prefix string

	sealMu sync.Mutex
	sealer *Sealer // derived on first use
}

// NewServerKeys returns a ServerKeys over cfg's device and store.
func NewServerKeys(cfg ServerKeysConfig) (*ServerKeys, error) {
	if cfg.Device == nil || cfg.Store == nil {
		return nil, errors.New("wscd: device and store are required")
	}
	return &ServerKeys{base: newBase(cfg.Now, cfg.Logger), dev: cfg.Device, st: cfg.Store, prefix: cfg.Prefix}, nil
}

// ServerKey is one of the server's device keys.
type ServerKey struct {
	Purpose string
	KID     device.KID
	Public  *ecdsa.PublicKey
	// Wrapped is the key's blob on a device in wrapped storage. A server
	// key's blob needs no MAC: its owner is fixed (ServerOwner) and the
	// device checks that the blob is the kid's key.
	Wrapped []byte
}

// ref is the key's device reference.
func (k ServerKey) ref() device.Ref {
	return device.Ref{Owner: ServerOwner, KID: k.KID, Wrapped: k.Wrapped}
}

// Key returns the server's key for a purpose, generating it on the device
// the first time. Instances sharing a store agree on one key: if
// another instance records its key first, ours is destroyed and theirs used.
func (s *ServerKeys) Key(ctx context.Context, purpose string) (ServerKey, error) {
	purpose = s.prefix + purpose
	rec, err := s.st.GetServerKey(ctx, purpose)
	if err == nil {
		return serverKeyFromRecord(rec)
	}
	if !errors.Is(err, store.ErrNotFound) {
		return ServerKey{}, storeErr(err)
	}
	k, err := s.dev.Generate(ctx, ServerOwner)
	if err != nil {
		return ServerKey{}, s.deviceErr(ctx, err)
	}
	pub, err := k.Public.Bytes()
	if err != nil {
		return ServerKey{}, s.deviceErr(ctx, err)
	}
	err = s.st.PutServerKey(ctx, store.ServerKey{Purpose: purpose, KID: string(k.KID), PublicKey: pub, Wrapped: k.Wrapped, CreatedAt: s.now().UTC()})
	if errors.Is(err, store.ErrExists) {
		if derr := s.dev.Destroy(ctx, k.Ref()); derr != nil {
			s.log.WarnContext(ctx, "lost server key race; destroying ours failed", "purpose", purpose, "kid", k.KID, "err", derr)
		}
		rec, err := s.st.GetServerKey(ctx, purpose)
		if err != nil {
			return ServerKey{}, storeErr(err)
		}
		return serverKeyFromRecord(rec)
	}
	if err != nil {
		return ServerKey{}, storeErr(err)
	}
	s.log.InfoContext(ctx, "server key generated", "purpose", purpose, "kid", k.KID)
	return ServerKey{Purpose: purpose, KID: k.KID, Public: k.Public, Wrapped: k.Wrapped}, nil
}

func serverKeyFromRecord(rec store.ServerKey) (ServerKey, error) {
	kid, err := device.ParseKID(rec.KID)
	if err != nil {
		return ServerKey{}, fmt.Errorf("%w: server key record: %v", ErrUnavailable, err)
	}
	pub, err := device.PublicKeyFromBytes(rec.PublicKey)
	if err != nil {
		return ServerKey{}, fmt.Errorf("%w: server key record: %v", ErrUnavailable, err)
	}
	var wrapped []byte
	if len(rec.Wrapped) > 0 {
		wrapped = rec.Wrapped
	}
	return ServerKey{Purpose: rec.Purpose, KID: kid, Public: pub, Wrapped: wrapped}, nil
}

// Sign signs a digest with a server key (raw r‖s).
func (s *ServerKeys) Sign(ctx context.Context, k ServerKey, digest []byte) ([]byte, error) {
	sig, err := s.dev.Sign(ctx, k.ref(), digest)
	if err != nil {
		return nil, s.deviceErr(ctx, err)
	}
	return sig, nil
}

// ECDH agrees a secret between a server key and a validated peer.
func (s *ServerKeys) ECDH(ctx context.Context, k ServerKey, peer *ecdh.PublicKey) ([]byte, error) {
	z, err := s.dev.ECDH(ctx, k.ref(), peer)
	if err != nil {
		return nil, s.deviceErr(ctx, err)
	}
	return z, nil
}

// Signer returns a crypto.Signer over a server key, for JOSE libraries. Its
// Sign takes a SHA-256 digest and returns an ASN.1 DER signature, as
// crypto.Signer for ECDSA does.
func (s *ServerKeys) Signer(ctx context.Context, k ServerKey) crypto.Signer {
	return &serverSigner{ctx: ctx, svc: s, key: k}
}

type serverSigner struct {
	// ctx is the request's: crypto.Signer has no context parameter, so a
	// signer is made per request and carries it.
	ctx context.Context
	svc *ServerKeys
	key ServerKey
}

func (g *serverSigner) Public() crypto.PublicKey { return g.key.Public }

func (g *serverSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts != nil && opts.HashFunc() != crypto.SHA256 {
		return nil, fmt.Errorf("%w: server keys sign SHA-256 digests only", ErrInvalidInput)
	}
	raw, err := g.svc.Sign(g.ctx, g.key, digest)
	if err != nil {
		return nil, err
	}
	return device.RawToDER(raw)
}

// Sealer encrypts secrets the store keeps (OPAQUE key material, session
// keys) with AES-256-GCM under a key derived from an HSM key: HKDF-SHA256
// of the ECDH between the server's sealing key and a public point kept in
// the store. Every instance derives the same key; the store alone opens
// nothing.
type Sealer struct {
	aead   cipher.AEAD
	macKey []byte // HMAC-SHA256 key, from the same agreement
	rand   io.Reader
}

// macLabel is the HKDF info of the MAC key.
const macLabel = "wsca-mac-v1"

// Sealer returns the sealer, deriving the sealing key (one device ECDH)
// on first use; later calls return the same sealer.
func (s *ServerKeys) Sealer(ctx context.Context) (*Sealer, error) {
	s.sealMu.Lock()
	defer s.sealMu.Unlock()
	if s.sealer != nil {
		return s.sealer, nil
	}
	sl, err := s.deriveSealer(ctx)
	if err != nil {
		return nil, err
	}
	s.sealer = sl
	return sl, nil
}

func (s *ServerKeys) deriveSealer(ctx context.Context) (*Sealer, error) {
	k, err := s.Key(ctx, PurposeSealing)
	if err != nil {
		return nil, err
	}
	peer, err := s.sealPeer(ctx)
	if err != nil {
		return nil, err
	}
	z, err := s.ECDH(ctx, k, peer)
	if err != nil {
		return nil, err
	}
	defer clear(z)
	key, err := hkdf.Key(sha256.New, z, nil, sealLabel, 32)
	if err != nil {
		return nil, fmt.Errorf("wscd: sealing key: %w", err)
	}
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("wscd: sealing key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("wscd: sealing key: %w", err)
	}
	macKey, err := hkdf.Key(sha256.New, z, nil, macLabel, 32)
	if err != nil {
		return nil, fmt.Errorf("wscd: MAC key: %w", err)
	}
	return &Sealer{aead: aead, macKey: macKey, rand: rand.Reader}, nil
}

// sealPeer returns the public point of the sealing agreement, making it
// once. Only its public half is kept; its private half is discarded, so
// the agreed secret can be computed only with the HSM's sealing key.
func (s *ServerKeys) sealPeer(ctx context.Context) (*ecdh.PublicKey, error) {
	for range 2 {
		b, err := s.st.GetServerSecret(ctx, s.prefix+sealPeerSecret)
		if err == nil {
			p, err := device.ParsePoint(b)
			if err != nil {
				return nil, fmt.Errorf("%w: seal peer: %v", ErrUnavailable, err)
			}
			return p, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, storeErr(err)
		}
		priv, err := ecdh.P256().GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		err = s.st.PutServerSecret(ctx, s.prefix+sealPeerSecret, priv.PublicKey().Bytes(), s.now().UTC())
		if err != nil && !errors.Is(err, store.ErrExists) {
			return nil, storeErr(err)
		}
	}
	return nil, fmt.Errorf("%w: seal peer not recorded", ErrUnavailable)
}

// ErrSealed is returned for sealed data that does not open.
var ErrSealed = errors.New("wscd: sealed data does not open")

// Seal encrypts plaintext; ad binds it to its use.
func (s *Sealer) Seal(plaintext, ad []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := io.ReadFull(s.rand, nonce); err != nil {
		return nil, fmt.Errorf("wscd: seal: %w", err)
	}
	return s.aead.Seal(nonce, nonce, plaintext, ad), nil
}

// Open decrypts what Seal made with the same ad.
func (s *Sealer) Open(sealed, ad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, ErrSealed
	}
	out, err := s.aead.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, ErrSealed
	}
	return out, nil
}

// MAC returns HMAC-SHA256, under a key derived from the HSM's sealing key,
// over the domain and each part, each prefixed by its 4-byte big-endian
// length, so no two different inputs collide. The store keeps MACs beside
// the state that someone able to write the database must not be able to
// forge (activation codes, client keys, PIN records).
func (s *Sealer) MAC(domain string, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, s.macKey)
	var n [4]byte
	for _, p := range append([][]byte{[]byte(domain)}, parts...) {
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		m.Write(n[:])
		m.Write(p)
	}
	return m.Sum(nil)
}

// VerifyMAC reports, in constant time, whether mac is MAC(domain, parts...).
func (s *Sealer) VerifyMAC(mac []byte, domain string, parts ...[]byte) bool {
	return hmac.Equal(mac, s.MAC(domain, parts...))
}

// codeMACDomain separates activation-code MACs from other MACs.
const codeMACDomain = "wsca-activation-code-v1"

// CodeHash returns what the store keeps of an activation code: its MAC
// under the HSM-derived key, so someone who can write the database cannot
// plant a code of their own. Codes are compared case-insensitively and
// without separators.
func (s *Sealer) CodeHash(code string) []byte {
	norm := strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(code))
	return s.MAC(codeMACDomain, []byte(norm))
}

// HashActivationCode returns the store's form of a code (Sealer.CodeHash),
// deriving the sealer on first use.
func (s *ServerKeys) HashActivationCode(ctx context.Context, code string) ([]byte, error) {
	sl, err := s.Sealer(ctx)
	if err != nil {
		return nil, err
	}
	return sl.CodeHash(code), nil
}

func reservedUnit(unit string) bool { return strings.HasPrefix(unit, ReservedPrefix) }
