package manager

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Config configures a Manager.
type Config struct {
	// Store keeps bindings, intents, claims and choices (required).
	Store BindingStore
	// Default is the global default plugin id (may be empty).
	Default string
	// OperationDefaults name a plugin per operation.
	OperationDefaults map[Op]string
	// Auth and Progress are the host's callbacks (Auth may be nil when no
	// plugin asks the user).
	Auth     AuthCallback
	Progress ProgressCallback
	// RecoverAfter: Recover leaves intents and claims younger than this
	// alone (another process sharing the store may still be working on
	// them). Zero recovers everything, right for one process.
	RecoverAfter time.Duration
	Now          func() time.Time
}

// Manager routes key operations to plugins and keeps their bindings. It
// is safe for concurrent use, and several processes may share its store.
type Manager struct {
	cfg     Config
	mu      sync.RWMutex
	plugins map[string]Plugin
	order   []string
	// bound caches bindings for the operations that only use a key (sign,
	// ECDH, public key, properties, attestation). Another process may move
	// or delete a key: a plugin answering ErrKeyNotFound for a cached
	// binding makes the manager read the store again and retry once.
	// Delete and Migrate always read the store.
	bound sync.Map // KID -> Binding
}

// New makes a manager with plugins registered in order (order matters for
// requirement-based selection) and runs [Manager.Recover].
func New(ctx context.Context, cfg Config, plugins ...Plugin) (*Manager, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: no binding store", ErrInvalidInput)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Manager{cfg: cfg, plugins: map[string]Plugin{}}
	for _, p := range plugins {
		if err := m.Register(p); err != nil {
			return nil, err
		}
	}
	if err := m.Recover(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// Register adds p, replacing a plugin with the same id.
func (m *Manager) Register(p Plugin) error {
	if p == nil || p.ID() == "" {
		return fmt.Errorf("%w: a plugin needs an id", ErrInvalidInput)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.plugins[p.ID()]; !ok {
		m.order = append(m.order, p.ID())
	}
	m.plugins[p.ID()] = p
	return nil
}

// Plugins returns the registered plugin ids in registration order.
func (m *Manager) Plugins() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]string(nil), m.order...)
}

func (m *Manager) plugin(id string) (Plugin, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	p, ok := m.plugins[id]
	if !ok {
		return nil, &NoPluginError{Plugin: id}
	}
	return p, nil
}

func (m *Manager) env() Env { return Env{Auth: m.cfg.Auth, Progress: m.cfg.Progress} }

// byDefault resolves levels 2 and 3 for op.
func (m *Manager) byDefault(op Op) (Plugin, error) {
	if id, ok := m.cfg.OperationDefaults[op]; ok && id != "" {
		return m.plugin(id)
	}
	if m.cfg.Default != "" {
		return m.plugin(m.cfg.Default)
	}
	return nil, fmt.Errorf("%w: %s", ErrNoDefault, op)
}

// GenerateRequest says where a new key should go; every field is optional.
type GenerateRequest struct {
	// Plugin names the plugin outright.
	Plugin string
	// Requirement, with Issuer and CredentialType, selects a plugin that
	// meets an issuer's key_attestations_required and remembers it.
	Requirement    Requirement
	Issuer         string
	CredentialType string
}

func (m *Manager) generatePlugin(ctx context.Context, req GenerateRequest) (Plugin, error) {
	if req.Plugin != "" {
		p, err := m.plugin(req.Plugin)
		if err == nil && !req.Requirement.IsZero() && !req.Requirement.Admits(p.NewKeyProperties()) {
			return nil, fmt.Errorf("%w: plugin %q", ErrNoEligiblePlugin, req.Plugin)
		}
		return p, err
	}
	if req.Requirement.IsZero() {
		return m.byDefault(OpGenerate)
	}
	remember := req.Issuer != "" || req.CredentialType != ""
	if remember {
		// A choice made earlier wins if it still qualifies.
		var first Plugin
		for _, id := range m.Plugins() {
			p, err := m.plugin(id)
			if err == nil && req.Requirement.Admits(p.NewKeyProperties()) {
				first = p
				break
			}
		}
		candidate := ""
		if first != nil {
			candidate = first.ID()
		}
		if candidate == "" {
			return nil, ErrNoEligiblePlugin
		}
		got, err := m.cfg.Store.Choose(ctx, Choice{Issuer: req.Issuer, CredentialType: req.CredentialType, Plugin: candidate, Created: m.cfg.Now().UTC()})
		if err != nil {
			return nil, err
		}
		p, err := m.plugin(got.Plugin)
		if err != nil {
			return nil, err
		}
		if !req.Requirement.Admits(p.NewKeyProperties()) {
			return nil, fmt.Errorf("%w: the plugin chosen for this issuer (%q) no longer meets it", ErrNoEligiblePlugin, got.Plugin)
		}
		return p, nil
	}
	for _, id := range m.Plugins() {
		if p, err := m.plugin(id); err == nil && req.Requirement.Admits(p.NewKeyProperties()) {
			return p, nil
		}
	}
	return nil, ErrNoEligiblePlugin
}

func newLabel() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Generate makes a P-256 key on the plugin the request resolves to and
// binds it.
func (m *Manager) Generate(ctx context.Context, req GenerateRequest) (Key, Result, error) {
	p, err := m.generatePlugin(ctx, req)
	if err != nil {
		return Key{}, Result{}, err
	}
	env := m.env()
	env.progress(Progress{Plugin: p.ID(), Op: OpGenerate, Stage: StageStarted})
	label := newLabel()
	now := m.cfg.Now().UTC()
	if err := m.cfg.Store.PutIntent(ctx, Intent{Label: label, Plugin: p.ID(), Created: now}); err != nil {
		return Key{}, Result{}, err
	}
	pk, amr, err := p.Generate(ctx, label, env)
	if err != nil {
		// The plugin may have made the key before failing (a network
		// error after the server acted): settle the intent as a crash
		// would be.
		_, _ = m.settleIntent(context.WithoutCancel(ctx), Intent{Label: label, Plugin: p.ID(), Created: now})
		return Key{}, Result{}, &PluginError{Plugin: p.ID(), Op: OpGenerate, Err: err}
	}
	k, err := m.bind(ctx, p, pk, label)
	if err != nil {
		return Key{}, Result{}, err
	}
	if err := m.cfg.Store.DeleteIntent(ctx, label); err != nil && !errors.Is(err, ErrNotFound) {
		return Key{}, Result{}, err
	}
	env.progress(Progress{Plugin: p.ID(), Op: OpGenerate, Stage: StageComplete})
	return k, Result{Plugin: p.ID(), AMR: amr}, nil
}

// bind writes the binding of a key p made; a kid bound to another key of
// another plugin or handle is a collision, and the new key is deleted.
func (m *Manager) bind(ctx context.Context, p Plugin, pk PluginKey, label string) (Key, error) {
	if pk.Handle == "" {
		return Key{}, &PluginError{Plugin: p.ID(), Op: OpGenerate, Err: errors.New("empty handle")}
	}
	kid, err := Thumbprint(pk.Public)
	if err != nil {
		return Key{}, &PluginError{Plugin: p.ID(), Op: OpGenerate, Err: err}
	}
	created := pk.Created
	if created.IsZero() {
		created = m.cfg.Now().UTC()
	}
	b := Binding{KID: kid, Plugin: p.ID(), Handle: pk.Handle, Label: label, Created: created}
	err = m.cfg.Store.Bind(ctx, b)
	if errors.Is(err, ErrExists) {
		old, gerr := m.cfg.Store.Binding(ctx, kid)
		if gerr != nil {
			return Key{}, gerr
		}
		if old.Plugin != b.Plugin || old.Handle != b.Handle {
			_, _ = p.Delete(context.WithoutCancel(ctx), pk.Handle, m.env())
			return Key{}, fmt.Errorf("%w: %s is bound to plugin %q", ErrKIDCollision, kid, old.Plugin)
		}
		b = old
	} else if err != nil {
		return Key{}, err
	}
	m.bound.Store(kid, b)
	return Key{KID: kid, Plugin: p.ID(), Handle: b.Handle, Public: pk.Public, Created: b.Created}, nil
}

// target is a resolved existing key.
type target struct {
	p      Plugin
	handle string
	bound  bool
	cached bool
}

// use runs fn on the key's plugin; when a cached binding turns out stale
// (the plugin no longer has the key), it reads the store and runs fn again.
func (m *Manager) use(ctx context.Context, kid KID, op Op, fn func(t target) error) (target, error) {
	t, err := m.resolveCached(ctx, kid, op)
	if err != nil {
		return t, err
	}
	err = fn(t)
	if err != nil && t.cached && errors.Is(err, ErrKeyNotFound) {
		m.bound.Delete(kid)
		if t, err = m.resolve(ctx, kid, op); err != nil {
			return t, err
		}
		err = fn(t)
	}
	return t, err
}

// resolve finds the plugin and handle of an existing key: its binding,
// else the operation default, else the global default (where the key is
// looked up by its thumbprint among the plugin's keys).
func (m *Manager) resolve(ctx context.Context, kid KID, op Op) (target, error) {
	return m.resolveFrom(ctx, kid, op, false)
}

// resolveCached is resolve for the operations that only use a key.
func (m *Manager) resolveCached(ctx context.Context, kid KID, op Op) (target, error) {
	return m.resolveFrom(ctx, kid, op, true)
}

func (m *Manager) resolveFrom(ctx context.Context, kid KID, op Op, cached bool) (target, error) {
	if !kid.Valid() {
		return target{}, fmt.Errorf("%w: malformed kid", ErrInvalidInput)
	}
	if cached {
		if v, ok := m.bound.Load(kid); ok {
			b := v.(Binding)
			if p, err := m.plugin(b.Plugin); err == nil {
				return target{p: p, handle: b.Handle, bound: true, cached: true}, nil
			}
		}
	}
	b, err := m.cfg.Store.Binding(ctx, kid)
	switch {
	case err == nil:
		m.bound.Store(kid, b)
		p, err := m.plugin(b.Plugin)
		if err != nil {
			return target{}, err
		}
		return target{p: p, handle: b.Handle, bound: true}, nil
	case !errors.Is(err, ErrNotFound):
		return target{}, err
	}
	p, err := m.byDefault(op)
	if err != nil {
		if errors.Is(err, ErrNoDefault) {
			return target{}, fmt.Errorf("%w: %s", ErrKeyNotFound, kid)
		}
		return target{}, err
	}
	keys, err := p.List(ctx, m.env())
	if err != nil {
		return target{}, &PluginError{Plugin: p.ID(), Op: op, Err: err}
	}
	for _, k := range keys {
		if t, err := Thumbprint(k.Public); err == nil && t == kid {
			return target{p: p, handle: k.Handle}, nil
		}
	}
	return target{}, fmt.Errorf("%w: %s", ErrKeyNotFound, kid)
}

// wrapT wraps a plugin's error; errors from resolving (no plugin) pass.
func wrapT(t target, op Op, err error) error {
	var pe *PluginError
	var ue *UnsupportedError
	if t.p == nil || errors.As(err, &pe) || errors.As(err, &ue) {
		return err
	}
	return wrap(t.p, op, err)
}

func wrap(p Plugin, op Op, err error) error {
	if err == nil {
		return nil
	}
	return &PluginError{Plugin: p.ID(), Op: op, Err: err}
}

// Sign signs a SHA-256 digest with the key and returns raw r‖s.
func (m *Manager) Sign(ctx context.Context, kid KID, digest []byte) ([]byte, Result, error) {
	if len(digest) != 32 {
		return nil, Result{}, fmt.Errorf("%w: a digest is 32 bytes", ErrInvalidInput)
	}
	var sig []byte
	var amr []string
	t, err := m.use(ctx, kid, OpSign, func(t target) (err error) {
		sig, amr, err = t.p.Sign(ctx, t.handle, digest, m.env())
		return err
	})
	if err != nil {
		return nil, Result{}, wrapT(t, OpSign, err)
	}
	if len(sig) != 64 {
		return nil, Result{}, wrap(t.p, OpSign, errors.New("signature is not 64 bytes"))
	}
	return sig, Result{Plugin: t.p.ID(), AMR: amr}, nil
}

// ECDH returns the x-coordinate of the key's scalar times peer.
func (m *Manager) ECDH(ctx context.Context, kid KID, peer *ecdh.PublicKey) ([]byte, Result, error) {
	if peer == nil || peer.Curve() != ecdh.P256() {
		return nil, Result{}, fmt.Errorf("%w: the peer is not a P-256 key", ErrInvalidInput)
	}
	var z []byte
	var amr []string
	t, err := m.use(ctx, kid, OpECDH, func(t target) (err error) {
		e, ok := t.p.(ECDHPlugin)
		if !ok {
			return &UnsupportedError{Plugin: t.p.ID(), Op: OpECDH}
		}
		z, amr, err = e.ECDH(ctx, t.handle, peer, m.env())
		return err
	})
	if err != nil {
		return nil, Result{}, wrapT(t, OpECDH, err)
	}
	return z, Result{Plugin: t.p.ID(), AMR: amr}, nil
}

// PublicKey returns the key's public half; it checks that the plugin's key
// still has the kid.
func (m *Manager) PublicKey(ctx context.Context, kid KID) (*ecdsa.PublicKey, Result, error) {
	var pub *ecdsa.PublicKey
	t, err := m.use(ctx, kid, OpPublicKey, func(t target) (err error) {
		pub, err = t.p.PublicKey(ctx, t.handle, m.env())
		return err
	})
	if err != nil {
		return nil, Result{}, wrapT(t, OpPublicKey, err)
	}
	if got, err := Thumbprint(pub); err != nil || got != kid {
		return nil, Result{}, wrap(t.p, OpPublicKey, ErrKeyMismatch)
	}
	return pub, Result{Plugin: t.p.ID()}, nil
}

// Properties returns the key's security properties.
func (m *Manager) Properties(ctx context.Context, kid KID) (Properties, Result, error) {
	var p Properties
	t, err := m.use(ctx, kid, OpProperties, func(t target) (err error) {
		p, err = t.p.Properties(ctx, t.handle, m.env())
		return err
	})
	if err != nil {
		return Properties{}, Result{}, wrapT(t, OpProperties, err)
	}
	return p, Result{Plugin: t.p.ID()}, nil
}

// Attestation asks the plugin holding the keys for an attestation of all of
// them; they must all be on one plugin.
func (m *Manager) Attestation(ctx context.Context, kids []KID, nonce string) (Attestation, Result, error) {
	if len(kids) == 0 {
		return Attestation{}, Result{}, fmt.Errorf("%w: no key", ErrInvalidInput)
	}
	var p Plugin
	handles := make([]string, 0, len(kids))
	for _, kid := range kids {
		t, err := m.resolve(ctx, kid, OpAttestation)
		if err != nil {
			return Attestation{}, Result{}, err
		}
		if p != nil && t.p.ID() != p.ID() {
			return Attestation{}, Result{}, fmt.Errorf("%w: the keys are on different plugins", ErrInvalidInput)
		}
		p = t.p
		handles = append(handles, t.handle)
	}
	a, ok := p.(AttestingPlugin)
	if !ok {
		return Attestation{}, Result{}, &UnsupportedError{Plugin: p.ID(), Op: OpAttestation}
	}
	att, amr, err := a.Attestation(ctx, handles, nonce, m.env())
	if err != nil {
		return Attestation{}, Result{}, wrap(p, OpAttestation, err)
	}
	return att, Result{Plugin: p.ID(), AMR: amr}, nil
}

// Delete erases the key and its binding.
func (m *Manager) Delete(ctx context.Context, kid KID) (Result, error) {
	t, err := m.resolve(ctx, kid, OpDelete)
	if err != nil {
		return Result{}, err
	}
	if !t.bound {
		amr, err := t.p.Delete(ctx, t.handle, m.env())
		return Result{Plugin: t.p.ID(), AMR: amr}, wrap(t.p, OpDelete, err)
	}
	if err := m.cfg.Store.Claim(ctx, Claim{KID: kid, Kind: ClaimDelete, Created: m.cfg.Now().UTC()}); err != nil {
		if errors.Is(err, ErrExists) {
			return Result{}, ErrBusy
		}
		return Result{}, err
	}
	amr, err := t.p.Delete(ctx, t.handle, m.env())
	if err != nil {
		// The key may be gone or not: keep the binding and release the
		// claim so the caller can try again.
		_ = m.cfg.Store.Release(context.WithoutCancel(ctx), kid)
		return Result{}, wrap(t.p, OpDelete, err)
	}
	m.bound.Delete(kid)
	if err := m.cfg.Store.Unbind(ctx, kid); err != nil && !errors.Is(err, ErrNotFound) {
		return Result{}, err
	}
	if err := m.cfg.Store.Release(ctx, kid); err != nil && !errors.Is(err, ErrNotFound) {
		return Result{}, err
	}
	return Result{Plugin: t.p.ID(), AMR: amr}, nil
}

// List returns the keys of every plugin. When some plugins fail, the others'
// keys are returned with a *ListError naming the failures.
func (m *Manager) List(ctx context.Context) ([]Key, error) {
	var out []Key
	failed := map[string]error{}
	for _, id := range m.Plugins() {
		p, err := m.plugin(id)
		if err != nil {
			continue
		}
		keys, err := p.List(ctx, m.env())
		if err != nil {
			failed[id] = wrap(p, "list", err)
			continue
		}
		for _, k := range keys {
			kid, err := Thumbprint(k.Public)
			if err != nil {
				failed[id] = wrap(p, "list", err)
				continue
			}
			out = append(out, Key{KID: kid, Plugin: id, Handle: k.Handle, Public: k.Public, Created: k.Created})
		}
	}
	if len(failed) > 0 {
		return out, &ListError{Failed: failed}
	}
	return out, nil
}
