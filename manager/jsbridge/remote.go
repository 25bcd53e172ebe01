package jsbridge

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/kv"
	"github.com/wsca/wsca/manager/remote"
	"github.com/wsca/wsca/r2ps/client"
)

// RemoteConfig is the host's configuration of the R2PS plugin.
type RemoteConfig struct {
	// URL is the wscad base URL; Unit the wallet unit; Context the
	// security context ("hsm" when empty).
	URL     string `json:"url"`
	Unit    string `json:"unit"`
	Context string `json:"context,omitempty"`
	// Properties are what the host states of the remote WSCD.
	Properties  manager.Properties `json:"properties"`
	DisplayName string             `json:"displayName,omitempty"`
	// Transport carries the requests (nil: the host's fetch in the
	// browser, net/http elsewhere).
	Transport client.Transport `json:"-"`
}

// Keys of the plugin's records in the store.
const (
	deviceKey        = "r2ps/device"
	devicePendingKey = "r2ps/device-pending"
	journalPrefix    = "r2ps/journal/"
	sessionKey       = "r2ps/session"
)

// ErrDeviceDecrypt: the stored device keys do not open under the KEK, or
// belong to another unit.
var ErrDeviceDecrypt = errors.New("jsbridge: the stored R2PS device keys do not open")

// Remote is the R2PS plugin as a browser runs it: the unit's device keys
// (CSK, CAK) are made at the first [Remote.Enrol] and kept in the store
// encrypted under the KEK (a JWE, like softkey's keys); the server's keys
// are fetched from its well-known URL when the plugin is first used; the
// session and the generation journal are kept in the store too. Until the
// unit is enrolled, every operation is remote.ErrNotEnrolled and the
// plugin lists no key.
type Remote struct {
	cfg   RemoteConfig
	store kv.Store
	kek   []byte

	mu sync.Mutex
	p  *remote.Plugin
}

// NewRemote returns the plugin over store with the KEK (copied).
func NewRemote(cfg RemoteConfig, store kv.Store, kek []byte) (*Remote, error) {
	if cfg.URL == "" || cfg.Unit == "" || store == nil || len(kek) != 32 {
		return nil, fmt.Errorf("%w: r2ps needs url, unit, a store and a 32-byte KEK", manager.ErrInvalidInput)
	}
	if cfg.Context == "" {
		cfg.Context = "hsm"
	}
	if cfg.DisplayName == "" {
		cfg.DisplayName = "Wallet Provider HSM"
	}
	cfg.Properties = manager.RemoteProperties(cfg.Properties)
	return &Remote{cfg: cfg, store: store, kek: append([]byte(nil), kek...)}, nil
}

// Close zeroes the KEK.
func (r *Remote) Close() error { clear(r.kek); return nil }

// deviceRecord is the plaintext of the stored device keys.
type deviceRecord struct {
	Unit    string `json:"unit"`
	Context string `json:"context"`
	CSK     []byte `json:"csk"`
	CAK     []byte `json:"cak"`
}

func (r *Remote) seal(name string, rec deviceRecord) ([]byte, error) {
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.A256KW, Key: r.kek, KeyID: name},
		(&jose.EncrypterOptions{}).WithContentType("wsca-r2ps-device+json"))
	if err != nil {
		return nil, err
	}
	pt, err := json.Marshal(rec)
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

// open decrypts the device keys stored under name; found is false when
// none are.
func (r *Remote) open(ctx context.Context, name string) (*ecdsa.PrivateKey, *ecdh.PrivateKey, bool, error) {
	b, err := r.store.Get(ctx, name)
	if errors.Is(err, kv.ErrNotFound) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("jsbridge: r2ps device keys: %w", err)
	}
	obj, err := jose.ParseEncryptedCompact(string(b), []jose.KeyAlgorithm{jose.A256KW}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil || obj.Header.KeyID != name {
		return nil, nil, false, ErrDeviceDecrypt
	}
	pt, err := obj.Decrypt(r.kek)
	if err != nil {
		return nil, nil, false, ErrDeviceDecrypt
	}
	defer clear(pt)
	var rec deviceRecord
	if err := json.Unmarshal(pt, &rec); err != nil || rec.Unit != r.cfg.Unit || rec.Context != r.cfg.Context {
		return nil, nil, false, ErrDeviceDecrypt
	}
	defer clear(rec.CSK)
	defer clear(rec.CAK)
	csk, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), rec.CSK)
	if err != nil {
		return nil, nil, false, ErrDeviceDecrypt
	}
	cak, err := ecdh.P256().NewPrivateKey(rec.CAK)
	if err != nil {
		return nil, nil, false, ErrDeviceDecrypt
	}
	return csk, cak, true, nil
}

// build makes the remote plugin for device keys (fetching the server's
// keys).
func (r *Remote) build(ctx context.Context, csk *ecdsa.PrivateKey, cak *ecdh.PrivateKey) (*remote.Plugin, error) {
	t := r.cfg.Transport
	if t == nil {
		t = newTransport()
	}
	keys, err := client.FetchServerKeys(ctx, t, r.cfg.URL)
	if err != nil {
		return nil, err
	}
	c, err := client.New(client.Config{URL: r.cfg.URL, Transport: t, Unit: r.cfg.Unit, Context: r.cfg.Context,
		SigningKey: csk, AgreementKey: cak, Server: keys})
	if err != nil {
		return nil, err
	}
	sessions, err := remote.NewKVSessions(r.store, sessionKey, r.kek)
	if err != nil {
		return nil, err
	}
	return remote.New(remote.Config{Client: c, DisplayName: r.cfg.DisplayName, Properties: r.cfg.Properties,
		JournalStore: r.store, JournalPrefix: journalPrefix, Sessions: sessions})
}

// plugin returns the enrolled plugin, loading it at first use.
func (r *Remote) plugin(ctx context.Context) (*remote.Plugin, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p != nil {
		return r.p, nil
	}
	csk, cak, ok, err := r.open(ctx, deviceKey)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, remote.ErrNotEnrolled
	}
	p, err := r.build(ctx, csk, cak)
	if err != nil {
		return nil, err
	}
	r.p = p
	return p, nil
}

// Enrol makes new device keys, registers the unit with the activation
// code and a PIN the host is asked for, and keeps the keys. The keys are
// stored (as pending) before the server sees them, so an enrolment that
// succeeds is never left without its keys.
func (r *Remote) Enrol(ctx context.Context, activationCode string, env manager.Env) error {
	csk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	cak, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	cskRaw, err := csk.Bytes()
	if err != nil {
		return err
	}
	rec := deviceRecord{Unit: r.cfg.Unit, Context: r.cfg.Context, CSK: cskRaw, CAK: cak.Bytes()}
	defer clear(rec.CSK)
	defer clear(rec.CAK)
	pending, err := r.seal(devicePendingKey, rec)
	if err != nil {
		return err
	}
	if err := r.store.Put(ctx, devicePendingKey, pending); err != nil {
		return fmt.Errorf("jsbridge: r2ps device keys: %w", err)
	}
	p, err := r.build(ctx, csk, cak)
	if err != nil {
		return err
	}
	if err := p.Enrol(ctx, activationCode, env); err != nil {
		return err
	}
	final, err := r.seal(deviceKey, rec)
	if err != nil {
		return err
	}
	if err := r.store.Put(ctx, deviceKey, final); err != nil {
		return fmt.Errorf("jsbridge: r2ps device keys: %w", err)
	}
	_ = r.store.Delete(ctx, devicePendingKey)
	r.mu.Lock()
	r.p = p
	r.mu.Unlock()
	return nil
}

// ID implements manager.Plugin.
func (r *Remote) ID() string { return remote.DefaultID }

// DisplayName implements manager.Plugin.
func (r *Remote) DisplayName() string { return r.cfg.DisplayName }

// NewKeyProperties implements manager.Plugin.
func (r *Remote) NewKeyProperties() manager.Properties {
	r.mu.Lock()
	p := r.p
	r.mu.Unlock()
	if p != nil {
		return p.NewKeyProperties()
	}
	return r.cfg.Properties
}

// Generate implements manager.Plugin.
func (r *Remote) Generate(ctx context.Context, label string, env manager.Env) (manager.PluginKey, []string, error) {
	p, err := r.plugin(ctx)
	if err != nil {
		return manager.PluginKey{}, nil, err
	}
	return p.Generate(ctx, label, env)
}

// Lookup implements manager.Plugin.
func (r *Remote) Lookup(ctx context.Context, label string, env manager.Env) (manager.PluginKey, bool, error) {
	p, err := r.plugin(ctx)
	if errors.Is(err, remote.ErrNotEnrolled) {
		return manager.PluginKey{}, false, nil
	}
	if err != nil {
		return manager.PluginKey{}, false, err
	}
	return p.Lookup(ctx, label, env)
}

// Sign implements manager.Plugin.
func (r *Remote) Sign(ctx context.Context, handle string, digest []byte, env manager.Env) ([]byte, []string, error) {
	p, err := r.plugin(ctx)
	if err != nil {
		return nil, nil, err
	}
	return p.Sign(ctx, handle, digest, env)
}

// ECDH implements manager.ECDHPlugin.
func (r *Remote) ECDH(ctx context.Context, handle string, peer *ecdh.PublicKey, env manager.Env) ([]byte, []string, error) {
	p, err := r.plugin(ctx)
	if err != nil {
		return nil, nil, err
	}
	return p.ECDH(ctx, handle, peer, env)
}

// PublicKey implements manager.Plugin.
func (r *Remote) PublicKey(ctx context.Context, handle string, env manager.Env) (*ecdsa.PublicKey, error) {
	p, err := r.plugin(ctx)
	if err != nil {
		return nil, err
	}
	return p.PublicKey(ctx, handle, env)
}

// Properties implements manager.Plugin.
func (r *Remote) Properties(ctx context.Context, handle string, env manager.Env) (manager.Properties, error) {
	p, err := r.plugin(ctx)
	if err != nil {
		return manager.Properties{}, err
	}
	return p.Properties(ctx, handle, env)
}

// List implements manager.Plugin: no keys before enrolment.
func (r *Remote) List(ctx context.Context, env manager.Env) ([]manager.PluginKey, error) {
	p, err := r.plugin(ctx)
	if errors.Is(err, remote.ErrNotEnrolled) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return p.List(ctx, env)
}

// Delete implements manager.Plugin.
func (r *Remote) Delete(ctx context.Context, handle string, env manager.Env) ([]string, error) {
	p, err := r.plugin(ctx)
	if err != nil {
		return nil, err
	}
	return p.Delete(ctx, handle, env)
}

// Attestation implements manager.AttestingPlugin.
func (r *Remote) Attestation(ctx context.Context, handles []string, nonce string, env manager.Env) (manager.Attestation, []string, error) {
	p, err := r.plugin(ctx)
	if err != nil {
		return manager.Attestation{}, nil, err
	}
	return p.Attestation(ctx, handles, nonce, env)
}

var (
	_ manager.ECDHPlugin      = (*Remote)(nil)
	_ manager.AttestingPlugin = (*Remote)(nil)
)
