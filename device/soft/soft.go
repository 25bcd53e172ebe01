// Package soft is a software WSCD: P-256 keys sealed with AES-256-GCM under
// a master key file, one file per key in a directory.
//
// It exists for development and for zero-setup runs. It always reports
// itself as software ([device.AssuranceSoftware]), so nothing it backs may claim
// an HSM's assurance level. Keys are held in process memory while in use;
// Go cannot promise that a parsed private key is erased, so plaintext key
// bytes are zeroed where the code owns them and nowhere else. It has no
// wrapped storage ([device.StorageToken] only): a [device.Ref] carrying a
// blob is refused with [device.ErrWrappedUnsupported].
//
// On-disk format (version 1), one JSON file per key named <kid>.key:
//
//	{"v":1,"kid":"…","owner":"…","pub":"<base64url SEC1 uncompressed>",
//	 "imported":false,"sealed":"<base64url nonce‖AES-256-GCM(scalar)>"}
//
// The GCM additional data is "wsca-soft-v1\x00" ‖ kid ‖ "\x00" ‖ owner, so a
// sealed scalar cannot be moved to another kid or owner by editing the file.
package soft

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/wsca/wsca/device"
)

// Backend is the name this device reports in [device.Info].
const Backend = "soft"

// MasterKeyFile is the default master key file name inside the keystore.
const MasterKeyFile = "master.key"

const (
	aadLabel    = "wsca-soft-v1"
	fileVersion = 1
	keySuffix   = ".key"
)

// Call names counted by this device.
const (
	CallGenerate = "soft_generate"
	CallSign     = "soft_sign"
	CallECDH     = "soft_ecdh"
	CallUnseal   = "soft_unseal"
	CallSeal     = "soft_seal"
	CallDestroy  = "soft_destroy"
	CallList     = "soft_list"
)

// ErrNoKeystore is returned by Open when the directory or master key is
// missing; create it with Init.
var ErrNoKeystore = errors.New("soft: keystore not initialised")

// Config locates a keystore.
type Config struct {
	// Dir holds the key files.
	Dir string
	// MasterKey is the path of the 32-byte master key; default Dir/master.key.
	MasterKey string
	// Rand is the randomness source; default crypto/rand.
	Rand io.Reader
}

func (c *Config) masterKeyPath() string {
	if c.MasterKey != "" {
		return c.MasterKey
	}
	return filepath.Join(c.Dir, MasterKeyFile)
}

// Init creates the keystore directory and a fresh master key. It refuses to
// overwrite an existing master key; created reports whether one was made.
func Init(cfg Config) (created bool, err error) {
	if cfg.Dir == "" {
		return false, errors.New("soft: no keystore directory")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return false, fmt.Errorf("soft: %w", err)
	}
	path := cfg.masterKeyPath()
	if _, err := os.Stat(path); err == nil {
		return false, nil
	}
	mk := make([]byte, 32)
	defer clear(mk)
	if _, err := io.ReadFull(randOr(cfg.Rand), mk); err != nil {
		return false, fmt.Errorf("soft: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return false, fmt.Errorf("soft: %w", err)
	}
	if _, err := f.Write(mk); err != nil {
		f.Close()
		return false, fmt.Errorf("soft: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return false, fmt.Errorf("soft: %w", err)
	}
	return true, f.Close()
}

// Device is the software WSCD.
type Device struct {
	dir   string
	aead  cipher.AEAD
	rand  io.Reader
	calls *device.CallCounter

	mu     sync.RWMutex
	cache  map[device.KID]*entry
	closed bool
}

type entry struct {
	owner device.Owner
	sign  *ecdsa.PrivateKey
	dh    *ecdh.PrivateKey
	// deriveOnly: ECDH only (GenerateDeriveOnly); Sign is refused.
	deriveOnly bool
}

var (
	_ device.Device   = (*Device)(nil)
	_ device.Importer = (*Device)(nil)
)

// Open opens an initialised keystore.
func Open(cfg Config) (*Device, error) {
	if cfg.Dir == "" {
		return nil, errors.New("soft: no keystore directory")
	}
	mk, err := os.ReadFile(cfg.masterKeyPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoKeystore, cfg.Dir)
	}
	if err != nil {
		return nil, fmt.Errorf("soft: reading master key: %w", err)
	}
	defer clear(mk)
	if len(mk) != 32 {
		return nil, errors.New("soft: master key must be 32 bytes")
	}
	block, err := aes.NewCipher(mk)
	if err != nil {
		return nil, fmt.Errorf("soft: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("soft: %w", err)
	}
	return &Device{
		dir:   cfg.Dir,
		aead:  aead,
		rand:  randOr(cfg.Rand),
		calls: device.NewCallCounter(CallGenerate, CallSign, CallECDH, CallUnseal, CallSeal, CallDestroy, CallList),
		cache: make(map[device.KID]*entry),
	}, nil
}

func randOr(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}

// Info implements device.Device.
func (d *Device) Info() device.Info {
	return device.Info{Backend: Backend, Assurance: device.AssuranceSoftware, Description: "software keystore " + d.dir,
		Storage: device.StorageToken}
}

// Calls implements device.Device.
func (d *Device) Calls() map[string]uint64 { return d.calls.Snapshot() }

// Ping checks that the keystore directory is readable.
func (d *Device) Ping(ctx context.Context) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	if _, err := os.Stat(d.dir); err != nil {
		return fmt.Errorf("%w: %v", device.ErrUnavailable, err)
	}
	return nil
}

// Close drops the cached keys.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	clear(d.cache)
	return nil
}

func (d *Device) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.RLock()
	closed := d.closed
	d.mu.RUnlock()
	if closed {
		return device.ErrClosed
	}
	return nil
}

// Generate implements device.Device.
func (d *Device) Generate(ctx context.Context, owner device.Owner) (device.Key, error) {
	if err := d.check(ctx); err != nil {
		return device.Key{}, err
	}
	if _, err := device.ParseOwner(string(owner)); err != nil {
		return device.Key{}, err
	}
	d.calls.Inc(CallGenerate)
	priv, err := ecdh.P256().GenerateKey(d.rand)
	if err != nil {
		return device.Key{}, fmt.Errorf("%w: %v", device.ErrUnavailable, err)
	}
	return d.store(owner, priv, false, false)
}

// Import implements device.Importer.
func (d *Device) Import(ctx context.Context, owner device.Owner, priv *ecdh.PrivateKey) (device.Key, error) {
	if err := d.check(ctx); err != nil {
		return device.Key{}, err
	}
	if _, err := device.ParseOwner(string(owner)); err != nil {
		return device.Key{}, err
	}
	if priv.Curve() != ecdh.P256() {
		return device.Key{}, errors.New("soft: not a P-256 key")
	}
	return d.store(owner, priv, true, false)
}

type keyFile struct {
	V        int    `json:"v"`
	KID      string `json:"kid"`
	Owner    string `json:"owner"`
	Pub      string `json:"pub"`
	Imported bool   `json:"imported"`
	// Usage is "derive" for a derive-only key, absent otherwise; it is
	// part of the sealed key's additional data, so it cannot be dropped.
	Usage  string `json:"usage,omitempty"`
	Sealed string `json:"sealed"`
}

// usageDerive is keyFile.Usage of a derive-only key.
const usageDerive = "derive"

func aad(kid device.KID, owner device.Owner, usage string) []byte {
	a := aadLabel + "\x00" + string(kid) + "\x00" + string(owner)
	if usage != "" {
		a += "\x00" + usage
	}
	return []byte(a)
}

func (d *Device) store(owner device.Owner, priv *ecdh.PrivateKey, imported, deriveOnly bool) (device.Key, error) {
	e, err := newEntry(owner, priv)
	if err != nil {
		return device.Key{}, err
	}
	e.deriveOnly = deriveOnly
	usage := ""
	if deriveOnly {
		usage = usageDerive
	}
	kid, err := device.KIDOf(&e.sign.PublicKey)
	if err != nil {
		return device.Key{}, err
	}
	scalar := priv.Bytes()
	defer clear(scalar)
	nonce := make([]byte, d.aead.NonceSize())
	if _, err := io.ReadFull(d.rand, nonce); err != nil {
		return device.Key{}, fmt.Errorf("%w: %v", device.ErrUnavailable, err)
	}
	d.calls.Inc(CallSeal)
	sealed := d.aead.Seal(nonce, nonce, scalar, aad(kid, owner, usage))
	b64 := base64.RawURLEncoding
	f := keyFile{
		V: fileVersion, KID: string(kid), Owner: string(owner),
		Pub: b64.EncodeToString(priv.PublicKey().Bytes()), Imported: imported,
		Usage: usage, Sealed: b64.EncodeToString(sealed),
	}
	data, err := json.Marshal(f)
	if err != nil {
		return device.Key{}, fmt.Errorf("soft: %w", err)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return device.Key{}, device.ErrClosed
	}
	path := d.path(kid)
	if _, err := os.Stat(path); err == nil {
		return device.Key{}, fmt.Errorf("soft: key %s already exists", kid)
	}
	if err := writeFileAtomic(path, data); err != nil {
		return device.Key{}, fmt.Errorf("%w: %v", device.ErrUnavailable, err)
	}
	d.cache[kid] = e
	return device.Key{KID: kid, Owner: owner, Public: &e.sign.PublicKey}, nil
}

func newEntry(owner device.Owner, priv *ecdh.PrivateKey) (*entry, error) {
	scalar := priv.Bytes()
	defer clear(scalar)
	sk, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar)
	if err != nil {
		return nil, fmt.Errorf("soft: %w", err)
	}
	return &entry{owner: owner, sign: sk, dh: priv}, nil
}

func (d *Device) path(kid device.KID) string {
	return filepath.Join(d.dir, string(kid)+keySuffix)
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// lookup returns the key if it exists on disk and belongs to owner. The
// file is checked on every call so that a key destroyed by another process
// sharing the keystore (the CLI next to the server) is gone here too.
func (d *Device) lookup(ctx context.Context, ref device.Ref) (*entry, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	if _, err := device.ParseKID(string(ref.KID)); err != nil {
		return nil, err
	}
	if _, err := device.ParseOwner(string(ref.Owner)); err != nil {
		return nil, err
	}
	if ref.Wrapped != nil {
		// The keystore has no wrapped mode (device.StorageToken only).
		return nil, device.ErrWrappedUnsupported
	}
	path := d.path(ref.KID)
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			d.mu.Lock()
			delete(d.cache, ref.KID)
			d.mu.Unlock()
			return nil, device.ErrKeyNotFound
		}
		return nil, fmt.Errorf("%w: %v", device.ErrUnavailable, err)
	}
	d.mu.RLock()
	e := d.cache[ref.KID]
	d.mu.RUnlock()
	if e == nil {
		var err error
		if e, err = d.load(ref.KID); err != nil {
			return nil, err
		}
	}
	if e.owner != ref.Owner {
		return nil, device.ErrKeyNotFound
	}
	return e, nil
}

func (d *Device) load(kid device.KID) (*entry, error) {
	data, err := os.ReadFile(d.path(kid))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, device.ErrKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", device.ErrUnavailable, err)
	}
	f, err := parseKeyFile(data)
	if err != nil {
		return nil, err
	}
	if f.KID != string(kid) {
		return nil, fmt.Errorf("soft: key file %s names kid %s", kid, f.KID)
	}
	sealed, err := base64.RawURLEncoding.DecodeString(f.Sealed)
	if err != nil || len(sealed) < d.aead.NonceSize()+d.aead.Overhead() {
		return nil, fmt.Errorf("soft: key file %s: malformed sealed key", kid)
	}
	owner := device.Owner(f.Owner)
	d.calls.Inc(CallUnseal)
	ns := d.aead.NonceSize()
	scalar, err := d.aead.Open(nil, sealed[:ns], sealed[ns:], aad(kid, owner, f.Usage))
	if err != nil {
		return nil, fmt.Errorf("soft: key file %s does not open under this master key", kid)
	}
	defer clear(scalar)
	priv, err := ecdh.P256().NewPrivateKey(scalar)
	if err != nil {
		return nil, fmt.Errorf("soft: key file %s: %v", kid, err)
	}
	e, err := newEntry(owner, priv)
	if err != nil {
		return nil, err
	}
	if got, err := device.KIDOf(&e.sign.PublicKey); err != nil || got != kid {
		return nil, fmt.Errorf("soft: key file %s holds another key", kid)
	}
	e.deriveOnly = f.Usage == usageDerive
	d.mu.Lock()
	d.cache[kid] = e
	d.mu.Unlock()
	return e, nil
}

// parseKeyFile decodes a key file strictly: known fields only, version 1,
// valid kid and owner.
func parseKeyFile(data []byte) (keyFile, error) {
	var f keyFile
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return f, fmt.Errorf("soft: malformed key file: %v", err)
	}
	if dec.More() {
		return f, errors.New("soft: malformed key file: trailing data")
	}
	if f.V != fileVersion {
		return f, fmt.Errorf("soft: key file version %d not supported", f.V)
	}
	if _, err := device.ParseKID(f.KID); err != nil {
		return f, fmt.Errorf("soft: key file: %w", err)
	}
	if _, err := device.ParseOwner(f.Owner); err != nil {
		return f, fmt.Errorf("soft: key file: %w", err)
	}
	if f.Usage != "" && f.Usage != usageDerive {
		return f, fmt.Errorf("soft: key file: usage %q", f.Usage)
	}
	return f, nil
}

// PublicKey implements device.Device.
func (d *Device) PublicKey(ctx context.Context, ref device.Ref) (device.Key, error) {
	e, err := d.lookup(ctx, ref)
	if err != nil {
		return device.Key{}, err
	}
	return device.Key{KID: ref.KID, Owner: e.owner, Public: &e.sign.PublicKey}, nil
}

// Sign implements device.Device.
func (d *Device) Sign(ctx context.Context, ref device.Ref, digest []byte) ([]byte, error) {
	if err := device.CheckDigest(digest); err != nil {
		return nil, err
	}
	e, err := d.lookup(ctx, ref)
	if err != nil {
		return nil, err
	}
	if e.deriveOnly {
		return nil, device.ErrKeyUsage
	}
	d.calls.Inc(CallSign)
	r, s, err := ecdsa.Sign(d.rand, e.sign, digest)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", device.ErrUnavailable, err)
	}
	sig := make([]byte, device.SignatureSize)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return sig, nil
}

// ECDH implements device.Device.
func (d *Device) ECDH(ctx context.Context, ref device.Ref, peer *ecdh.PublicKey) ([]byte, error) {
	if peer == nil || peer.Curve() != ecdh.P256() {
		return nil, device.ErrInvalidPoint
	}
	e, err := d.lookup(ctx, ref)
	if err != nil {
		return nil, err
	}
	d.calls.Inc(CallECDH)
	z, err := e.dh.ECDH(peer)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", device.ErrInvalidPoint, err)
	}
	return z, nil
}

// List implements device.Device. It reads the key files' public parts
// without unsealing them.
func (d *Device) List(ctx context.Context, owner device.Owner) ([]device.Key, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	if _, err := device.ParseOwner(string(owner)); err != nil {
		return nil, err
	}
	d.calls.Inc(CallList)
	names, err := filepath.Glob(filepath.Join(d.dir, "*"+keySuffix))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", device.ErrUnavailable, err)
	}
	sort.Strings(names)
	var keys []device.Key
	for _, name := range names {
		if _, err := device.ParseKID(strings.TrimSuffix(filepath.Base(name), keySuffix)); err != nil {
			continue // not a key file (the master key, for one)
		}
		data, err := os.ReadFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // destroyed while listing
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", device.ErrUnavailable, err)
		}
		f, err := parseKeyFile(data)
		if err != nil {
			return nil, err
		}
		if f.Owner != string(owner) {
			continue
		}
		raw, err := base64.RawURLEncoding.DecodeString(f.Pub)
		if err != nil {
			return nil, fmt.Errorf("soft: key file %s: malformed public key", f.KID)
		}
		pub, err := device.PublicKeyFromBytes(raw)
		if err != nil {
			return nil, fmt.Errorf("soft: key file %s: %w", f.KID, err)
		}
		if kid, err := device.KIDOf(pub); err != nil || string(kid) != f.KID {
			return nil, fmt.Errorf("soft: key file %s holds another key", f.KID)
		}
		keys = append(keys, device.Key{KID: device.KID(f.KID), Owner: owner, Public: pub})
	}
	return keys, nil
}

// Destroy implements device.Device.
func (d *Device) Destroy(ctx context.Context, ref device.Ref) error {
	if _, err := d.lookup(ctx, ref); err != nil {
		return err
	}
	d.calls.Inc(CallDestroy)
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.cache, ref.KID)
	if err := os.Remove(d.path(ref.KID)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return device.ErrKeyNotFound
		}
		return fmt.Errorf("%w: %v", device.ErrUnavailable, err)
	}
	return nil
}
