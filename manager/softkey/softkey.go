// Package softkey is the manager's software WSCD: P-256 keys kept in a
// directory ([Open]) or a key-value store ([OpenStore], the browser's
// storage), each in its own JWE (A256KW + A256GCM) under a 32-byte key the
// host supplies (from the platform keystore) or derives from a passphrase
// with [KEKFromPassphrase]. Nothing is ever written in the clear; an export
// is a JWE too.
//
// One file (or value) per key, created atomically, so two processes sharing the
// directory never lose each other's keys. A key's plaintext lives only for
// the duration of one operation and its bytes are zeroed after (the copy
// inside crypto/ecdsa cannot be).
//
// Keys here are software keys: Properties says so and claims no attack
// potential resistance, so an issuer requiring one never gets a softkey.
package softkey

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/argon2"

	"github.com/wsca/wsca/ecp256"
	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/kv"
)

// ID is the plugin id.
const ID = "softkey"

// KEKSize is the size of the key-encryption key.
const KEKSize = 32

// maxFile bounds a key file.
const maxFile = 8 << 10

// labelHeader carries the manager's label in the JWE protected header (it
// is not secret, and the header is authenticated by A256GCM).
const labelHeader = "wsca-label"

// ErrDecrypt: a key file does not open under the KEK (wrong KEK, altered
// or moved file).
var ErrDecrypt = errors.New("softkey: key file does not decrypt")

// Plugin is the softkey WSCD.
type Plugin struct {
	id    string
	files files
	kek   []byte
	now   func() time.Time
}

// Open opens (creating) the keystore in dir with the KEK: one file
// <handle>.jwe per key. The KEK is copied; Close zeroes the copy.
func Open(dir string, kek []byte) (*Plugin, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("softkey: the key-encryption key must be %d bytes", KEKSize)
	}
	st, err := kv.OpenFiles(dir, ".jwe")
	if err != nil {
		return nil, fmt.Errorf("softkey: %w", err)
	}
	return &Plugin{id: ID, files: kvFiles{kv: st}, kek: append([]byte(nil), kek...), now: time.Now}, nil
}

// OpenStore opens the keystore kept in s under prefix (one value
// prefix+handle per key, the same JWE as a file of [Open]) with the KEK.
func OpenStore(s kv.Store, prefix string, kek []byte) (*Plugin, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("softkey: the key-encryption key must be %d bytes", KEKSize)
	}
	if s == nil || len(prefix)+22 > kv.MaxKey {
		return nil, fmt.Errorf("%w: softkey: no store, or a prefix too long", manager.ErrInvalidInput)
	}
	return &Plugin{id: ID, files: kvFiles{kv: s, prefix: prefix}, kek: append([]byte(nil), kek...), now: time.Now}, nil
}

// WithID returns the plugin under another id, for a host that keeps two
// software keystores (say, one per profile).
func (p *Plugin) WithID(id string) *Plugin {
	q := *p
	q.id = id
	return &q
}

// KEKFromPassphrase derives a KEK with Argon2id (RFC 9106 second
// recommended option: t=3, m=64 MiB, p=4) and a 16-byte salt the caller
// stores beside the keystore.
func KEKFromPassphrase(passphrase, salt []byte) ([]byte, error) {
	if len(salt) < 16 {
		return nil, errors.New("softkey: the salt must be at least 16 bytes")
	}
	return argon2.IDKey(passphrase, salt, 3, 64<<10, 4, KEKSize), nil
}

// Close zeroes the KEK.
func (p *Plugin) Close() error { clear(p.kek); return nil }

// ID implements manager.Plugin.
func (p *Plugin) ID() string { return p.id }

// DisplayName implements manager.Plugin.
func (p *Plugin) DisplayName() string { return "Software keys on this device" }

// NewKeyProperties implements manager.Plugin.
func (p *Plugin) NewKeyProperties() manager.Properties {
	return manager.Properties{Storage: manager.StorageSoftware, Exportable: true}
}

var amr = []string{"swk"}

// record is a key file's plaintext.
type record struct {
	D       []byte    `json:"d"`
	Created time.Time `json:"created"`
}

func validHandle(h string) bool {
	if len(h) != 22 {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(h)
	return err == nil && len(b) == 16
}

// seal encrypts priv under the KEK, naming handle (as kid) and label in the
// authenticated header.
func (p *Plugin) seal(handle, label string, d []byte, created time.Time) ([]byte, error) {
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.A256KW, Key: p.kek, KeyID: handle},
		(&jose.EncrypterOptions{}).WithHeader(labelHeader, label).WithContentType("wsca-softkey+json"))
	if err != nil {
		return nil, err
	}
	pt, err := json.Marshal(record{D: d, Created: created})
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	obj, err := enc.Encrypt(pt)
	if err != nil {
		return nil, err
	}
	s, err := obj.CompactSerialize()
	return []byte(s), err
}

// header reads a key file's handle and label without decrypting it.
func header(b []byte) (kid, label string, err error) {
	obj, err := jose.ParseEncryptedCompact(string(b), []jose.KeyAlgorithm{jose.A256KW}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		return "", "", err
	}
	l, _ := obj.Header.ExtraHeaders[labelHeader].(string)
	return obj.Header.KeyID, l, nil
}

// open decrypts a key file and checks it names handle.
func (p *Plugin) open(b []byte, handle string) (*record, string, error) {
	obj, err := jose.ParseEncryptedCompact(string(b), []jose.KeyAlgorithm{jose.A256KW}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	if obj.Header.KeyID != handle {
		return nil, "", fmt.Errorf("%w: the file names another key", ErrDecrypt)
	}
	pt, err := obj.Decrypt(p.kek)
	if err != nil {
		return nil, "", ErrDecrypt
	}
	defer clear(pt)
	var r record
	if err := json.Unmarshal(pt, &r); err != nil || len(r.D) != 32 {
		clear(r.D)
		return nil, "", fmt.Errorf("%w: malformed record", ErrDecrypt)
	}
	label, _ := obj.Header.ExtraHeaders[labelHeader].(string)
	return &r, label, nil
}

func (p *Plugin) read(ctx context.Context, handle string) ([]byte, error) {
	if !validHandle(handle) {
		return nil, manager.ErrKeyNotFound
	}
	b, err := p.files.read(ctx, handle)
	if err != nil {
		return nil, err
	}
	if len(b) > maxFile {
		return nil, fmt.Errorf("%w: file too large", ErrDecrypt)
	}
	return b, nil
}

// load returns the key's private scalar; the caller zeroes it.
func (p *Plugin) load(ctx context.Context, handle string) (*record, string, error) {
	b, err := p.read(ctx, handle)
	if err != nil {
		return nil, "", err
	}
	return p.open(b, handle)
}

func newHandle() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (p *Plugin) store(ctx context.Context, label string, d []byte) (manager.PluginKey, error) {
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		return manager.PluginKey{}, fmt.Errorf("softkey: %w", err)
	}
	handle := newHandle()
	created := p.now().UTC().Truncate(time.Second)
	b, err := p.seal(handle, label, d, created)
	if err != nil {
		return manager.PluginKey{}, fmt.Errorf("softkey: %w", err)
	}
	if err := p.files.create(ctx, handle, b); err != nil {
		return manager.PluginKey{}, err
	}
	return manager.PluginKey{Handle: handle, Public: &priv.PublicKey, Label: label, Created: created}, nil
}

// Generate implements manager.Plugin.
func (p *Plugin) Generate(ctx context.Context, label string, _ manager.Env) (manager.PluginKey, []string, error) {
	if err := ctx.Err(); err != nil {
		return manager.PluginKey{}, nil, err
	}
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return manager.PluginKey{}, nil, fmt.Errorf("softkey: %w", err)
	}
	d := priv.Bytes()
	defer clear(d)
	k, err := p.store(ctx, label, d)
	return k, amr, err
}

// Import implements manager.ImportingPlugin.
func (p *Plugin) Import(ctx context.Context, k *manager.ExportedKey, label string, _ manager.Env) (manager.PluginKey, []string, error) {
	if err := ctx.Err(); err != nil {
		return manager.PluginKey{}, nil, err
	}
	if k == nil || k.PrivateKey() == nil || k.PrivateKey().Curve() != ecdh.P256() {
		return manager.PluginKey{}, nil, fmt.Errorf("%w: not a P-256 key", manager.ErrInvalidInput)
	}
	d := k.PrivateKey().Bytes()
	defer clear(d)
	pk, err := p.store(ctx, label, d)
	return pk, amr, err
}

// Export implements manager.ExportingPlugin.
func (p *Plugin) Export(ctx context.Context, handle string, _ manager.Env) (*manager.ExportedKey, error) {
	r, _, err := p.load(ctx, handle)
	if err != nil {
		return nil, err
	}
	defer clear(r.D)
	priv, err := ecdh.P256().NewPrivateKey(r.D)
	if err != nil {
		return nil, fmt.Errorf("softkey: %w", err)
	}
	return manager.NewExportedKey(priv), nil
}

// Lookup implements manager.Plugin.
func (p *Plugin) Lookup(ctx context.Context, label string, _ manager.Env) (manager.PluginKey, bool, error) {
	if label == "" {
		return manager.PluginKey{}, false, nil
	}
	keys, err := p.list(ctx, label)
	if err != nil || len(keys) == 0 {
		return manager.PluginKey{}, false, err
	}
	return keys[0], true, nil
}

// Sign implements manager.Plugin.
func (p *Plugin) Sign(ctx context.Context, handle string, digest []byte, _ manager.Env) ([]byte, []string, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if len(digest) != 32 {
		return nil, nil, fmt.Errorf("%w: a digest is 32 bytes", manager.ErrInvalidInput)
	}
	r, _, err := p.load(ctx, handle)
	if err != nil {
		return nil, nil, err
	}
	defer clear(r.D)
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), r.D)
	if err != nil {
		return nil, nil, fmt.Errorf("softkey: %w", err)
	}
	der, err := ecdsa.SignASN1(rand.Reader, priv, digest)
	if err != nil {
		return nil, nil, fmt.Errorf("softkey: %w", err)
	}
	sig, err := ecp256.DERToRaw(der)
	return sig, amr, err
}

// ECDH implements manager.ECDHPlugin.
func (p *Plugin) ECDH(ctx context.Context, handle string, peer *ecdh.PublicKey, _ manager.Env) ([]byte, []string, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	r, _, err := p.load(ctx, handle)
	if err != nil {
		return nil, nil, err
	}
	defer clear(r.D)
	priv, err := ecdh.P256().NewPrivateKey(r.D)
	if err != nil {
		return nil, nil, fmt.Errorf("softkey: %w", err)
	}
	z, err := priv.ECDH(peer)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", manager.ErrInvalidInput, err)
	}
	return z, amr, nil
}

// PublicKey implements manager.Plugin.
func (p *Plugin) PublicKey(ctx context.Context, handle string, _ manager.Env) (*ecdsa.PublicKey, error) {
	r, _, err := p.load(ctx, handle)
	if err != nil {
		return nil, err
	}
	defer clear(r.D)
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), r.D)
	if err != nil {
		return nil, fmt.Errorf("softkey: %w", err)
	}
	return &priv.PublicKey, nil
}

// Properties implements manager.Plugin.
func (p *Plugin) Properties(ctx context.Context, handle string, _ manager.Env) (manager.Properties, error) {
	if _, err := p.read(ctx, handle); err != nil {
		return manager.Properties{}, err
	}
	return p.NewKeyProperties(), nil
}

// List implements manager.Plugin.
func (p *Plugin) List(ctx context.Context, _ manager.Env) ([]manager.PluginKey, error) {
	return p.list(ctx, "")
}

// list returns the keys, only those made under label when it is set.
func (p *Plugin) list(ctx context.Context, label string) ([]manager.PluginKey, error) {
	handles, err := p.files.list(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, h := range handles {
		if validHandle(h) {
			names = append(names, h)
		}
	}
	sort.Strings(names)
	var out []manager.PluginKey
	for _, h := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, err := p.read(ctx, h)
		if errors.Is(err, manager.ErrKeyNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		if label != "" {
			if _, l, err := header(b); err != nil || l != label {
				continue
			}
		}
		r, l, err := p.open(b, h)
		if err != nil {
			return nil, fmt.Errorf("softkey: key %s: %w", h, err)
		}
		priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), r.D)
		clear(r.D)
		if err != nil {
			return nil, fmt.Errorf("softkey: key %s: %w", h, err)
		}
		out = append(out, manager.PluginKey{Handle: h, Public: &priv.PublicKey, Label: l, Created: r.Created})
	}
	return out, nil
}

// Delete implements manager.Plugin.
func (p *Plugin) Delete(ctx context.Context, handle string, _ manager.Env) ([]string, error) {
	if !validHandle(handle) {
		return nil, nil
	}
	if err := p.files.remove(ctx, handle); err != nil {
		return nil, err
	}
	return amr, nil
}
