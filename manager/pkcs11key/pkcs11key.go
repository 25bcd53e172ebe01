//go:build cgo

package pkcs11key

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	p11 "github.com/miekg/pkcs11"

	"github.com/wsca/wsca/manager"
)

// p256OID is the DER OID of P-256, the CKA_EC_PARAMS of our keys.
var p256OID = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}

// Plugin is the PKCS#11 plugin. One session, logged in at first use, is
// shared by all calls under a mutex (tokens serialise anyway).
type Plugin struct {
	cfg  Config
	ctx  *p11.Ctx
	slot uint

	mu       sync.Mutex
	sess     p11.SessionHandle
	loggedIn bool
}

// New loads the module and finds the token; it does not log in yet.
func New(cfg Config) (*Plugin, error) {
	if cfg.Module == "" || cfg.TokenLabel == "" {
		return nil, fmt.Errorf("%w: pkcs11key: module and token label are required", manager.ErrInvalidInput)
	}
	if cfg.ID == "" {
		cfg.ID = DefaultID
	}
	if cfg.DisplayName == "" {
		cfg.DisplayName = "Security token " + cfg.TokenLabel
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "wsca-manager"
	}
	if strings.Contains(cfg.Namespace, ":") {
		return nil, fmt.Errorf("%w: pkcs11key: the namespace must not contain ':'", manager.ErrInvalidInput)
	}
	props := cfg.Properties
	props.Storage, props.Exportable = manager.StorageHardware, false
	if len(props.UserVerification) == 0 {
		props.UserVerification = []string{"pin"}
	}
	cfg.Properties = props
	c := p11.New(cfg.Module)
	if c == nil {
		return nil, fmt.Errorf("pkcs11key: cannot load the module")
	}
	if err := c.Initialize(); err != nil && !errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		c.Destroy()
		return nil, fmt.Errorf("pkcs11key: initialize: %w", err)
	}
	slots, err := c.GetSlotList(true)
	if err != nil {
		return nil, fmt.Errorf("pkcs11key: slots: %w", err)
	}
	for _, s := range slots {
		ti, err := c.GetTokenInfo(s)
		if err == nil && strings.TrimRight(ti.Label, " \x00") == cfg.TokenLabel {
			return &Plugin{cfg: cfg, ctx: c, slot: s}, nil
		}
	}
	return nil, fmt.Errorf("pkcs11key: no token labelled %q", cfg.TokenLabel)
}

// Close logs out and closes the session (the module stays loaded: other
// users in the process may share it).
func (p *Plugin) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.loggedIn {
		_ = p.ctx.CloseSession(p.sess)
		p.loggedIn = false
	}
	return nil
}

// ID implements manager.Plugin.
func (p *Plugin) ID() string { return p.cfg.ID }

// DisplayName implements manager.Plugin.
func (p *Plugin) DisplayName() string { return p.cfg.DisplayName }

// NewKeyProperties implements manager.Plugin.
func (p *Plugin) NewKeyProperties() manager.Properties { return p.cfg.Properties }

var amr = []string{"hwk", "pin"}

// session runs fn in the logged-in session, logging in first (asking the
// host for the PIN) if needed.
func (p *Plugin) session(ctx context.Context, env manager.Env, fn func(s p11.SessionHandle) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.loggedIn {
		s, err := p.ctx.OpenSession(p.slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
		if err != nil {
			return fmt.Errorf("pkcs11key: open session: %w", err)
		}
		pin := []byte(p.cfg.PIN)
		if len(pin) == 0 {
			sec, err := env.AskPIN(ctx, p.cfg.ID, p.cfg.DisplayName, manager.ReasonUnlock)
			if err != nil {
				_ = p.ctx.CloseSession(s)
				return err
			}
			pin = append([]byte(nil), sec.Bytes()...)
			sec.Wipe()
		}
		err = p.ctx.Login(s, p11.CKU_USER, string(pin))
		clear(pin)
		if err != nil && !errors.Is(err, p11.Error(p11.CKR_USER_ALREADY_LOGGED_IN)) {
			_ = p.ctx.CloseSession(s)
			if errors.Is(err, p11.Error(p11.CKR_PIN_INCORRECT)) {
				return fmt.Errorf("%w: the token refused the PIN", manager.ErrAuthRequired)
			}
			return fmt.Errorf("pkcs11key: login: %w", err)
		}
		p.sess, p.loggedIn = s, true
	}
	return fn(p.sess)
}

func (p *Plugin) label(l string) string { return p.cfg.Namespace + ":" + l }

// parseHandle returns the CKA_ID a handle names.
func parseHandle(h string) ([]byte, bool) {
	if len(h) != 32 || strings.ToLower(h) != h {
		return nil, false
	}
	id, err := hex.DecodeString(h)
	return id, err == nil
}

func (p *Plugin) find(s p11.SessionHandle, tmpl []*p11.Attribute) ([]p11.ObjectHandle, error) {
	if err := p.ctx.FindObjectsInit(s, tmpl); err != nil {
		return nil, err
	}
	defer p.ctx.FindObjectsFinal(s)
	var out []p11.ObjectHandle
	for {
		hs, _, err := p.ctx.FindObjects(s, 64)
		if err != nil {
			return nil, err
		}
		if len(hs) == 0 {
			return out, nil
		}
		out = append(out, hs...)
	}
}

// object finds the key pair's object of class with the id, in our
// namespace.
func (p *Plugin) object(s p11.SessionHandle, class uint, id []byte) (p11.ObjectHandle, string, error) {
	hs, err := p.find(s, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, class), p11.NewAttribute(p11.CKA_ID, id)})
	if err != nil {
		return 0, "", err
	}
	for _, h := range hs {
		a, err := p.ctx.GetAttributeValue(s, h, []*p11.Attribute{p11.NewAttribute(p11.CKA_LABEL, nil)})
		if err != nil {
			continue
		}
		if l, ok := strings.CutPrefix(string(a[0].Value), p.cfg.Namespace+":"); ok {
			return h, l, nil
		}
	}
	return 0, "", manager.ErrKeyNotFound
}

func (p *Plugin) point(s p11.SessionHandle, pubH p11.ObjectHandle) (*ecdsa.PublicKey, error) {
	a, err := p.ctx.GetAttributeValue(s, pubH, []*p11.Attribute{p11.NewAttribute(p11.CKA_EC_POINT, nil)})
	if err != nil {
		return nil, err
	}
	var raw []byte
	if _, err := asn1.Unmarshal(a[0].Value, &raw); err != nil {
		raw = a[0].Value // some tokens omit the OCTET STRING
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return nil, fmt.Errorf("pkcs11key: public point: %w", err)
	}
	return pub, nil
}

// Generate implements manager.Plugin.
func (p *Plugin) Generate(ctx context.Context, label string, env manager.Env) (manager.PluginKey, []string, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return manager.PluginKey{}, nil, err
	}
	var key manager.PluginKey
	err := p.session(ctx, env, func(s p11.SessionHandle) error {
		l := p.label(label)
		pubH, privH, err := p.ctx.GenerateKeyPair(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_EC_KEY_PAIR_GEN, nil)},
			[]*p11.Attribute{
				p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY), p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC),
				p11.NewAttribute(p11.CKA_TOKEN, true), p11.NewAttribute(p11.CKA_PRIVATE, false),
				p11.NewAttribute(p11.CKA_VERIFY, true), p11.NewAttribute(p11.CKA_EC_PARAMS, p256OID),
				p11.NewAttribute(p11.CKA_ID, id), p11.NewAttribute(p11.CKA_LABEL, l),
			},
			[]*p11.Attribute{
				p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC),
				p11.NewAttribute(p11.CKA_TOKEN, true), p11.NewAttribute(p11.CKA_PRIVATE, true),
				p11.NewAttribute(p11.CKA_SENSITIVE, true), p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
				p11.NewAttribute(p11.CKA_SIGN, true), p11.NewAttribute(p11.CKA_DERIVE, true),
				p11.NewAttribute(p11.CKA_ID, id), p11.NewAttribute(p11.CKA_LABEL, l),
			})
		if err != nil {
			return fmt.Errorf("pkcs11key: generate: %w", err)
		}
		pub, err := p.point(s, pubH)
		if err != nil {
			_ = p.ctx.DestroyObject(s, privH)
			_ = p.ctx.DestroyObject(s, pubH)
			return err
		}
		key = manager.PluginKey{Handle: hex.EncodeToString(id), Public: pub, Label: label}
		return nil
	})
	return key, amr, err
}

// Lookup implements manager.Plugin.
func (p *Plugin) Lookup(ctx context.Context, label string, env manager.Env) (manager.PluginKey, bool, error) {
	keys, err := p.list(ctx, env, label)
	if err != nil || len(keys) == 0 {
		return manager.PluginKey{}, false, err
	}
	return keys[0], true, nil
}

// List implements manager.Plugin.
func (p *Plugin) List(ctx context.Context, env manager.Env) ([]manager.PluginKey, error) {
	return p.list(ctx, env, "")
}

func (p *Plugin) list(ctx context.Context, env manager.Env, only string) ([]manager.PluginKey, error) {
	var out []manager.PluginKey
	err := p.session(ctx, env, func(s p11.SessionHandle) error {
		tmpl := []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY), p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC)}
		if only != "" {
			tmpl = append(tmpl, p11.NewAttribute(p11.CKA_LABEL, p.label(only)))
		}
		hs, err := p.find(s, tmpl)
		if err != nil {
			return fmt.Errorf("pkcs11key: list: %w", err)
		}
		for _, h := range hs {
			a, err := p.ctx.GetAttributeValue(s, h, []*p11.Attribute{p11.NewAttribute(p11.CKA_ID, nil), p11.NewAttribute(p11.CKA_LABEL, nil)})
			if err != nil {
				continue
			}
			l, ok := strings.CutPrefix(string(a[1].Value), p.cfg.Namespace+":")
			if !ok || len(a[0].Value) != 16 {
				continue
			}
			if _, _, err := p.object(s, p11.CKO_PRIVATE_KEY, a[0].Value); err != nil {
				continue // a public half without its private half
			}
			pub, err := p.point(s, h)
			if err != nil {
				continue
			}
			out = append(out, manager.PluginKey{Handle: hex.EncodeToString(a[0].Value), Public: pub, Label: l})
		}
		return nil
	})
	return out, err
}

// Sign implements manager.Plugin.
func (p *Plugin) Sign(ctx context.Context, handle string, digest []byte, env manager.Env) ([]byte, []string, error) {
	if len(digest) != 32 {
		return nil, nil, fmt.Errorf("%w: a digest is 32 bytes", manager.ErrInvalidInput)
	}
	id, ok := parseHandle(handle)
	if !ok {
		return nil, nil, manager.ErrKeyNotFound
	}
	var sig []byte
	err := p.session(ctx, env, func(s p11.SessionHandle) error {
		h, _, err := p.object(s, p11.CKO_PRIVATE_KEY, id)
		if err != nil {
			return err
		}
		if err := p.ctx.SignInit(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_ECDSA, nil)}, h); err != nil {
			return fmt.Errorf("pkcs11key: sign: %w", err)
		}
		sig, err = p.ctx.Sign(s, digest)
		if err != nil {
			return fmt.Errorf("pkcs11key: sign: %w", err)
		}
		if len(sig) != 64 {
			return fmt.Errorf("pkcs11key: the token returned a %d-byte signature", len(sig))
		}
		return nil
	})
	return sig, amr, err
}

// ECDH implements manager.ECDHPlugin.
func (p *Plugin) ECDH(ctx context.Context, handle string, peer *ecdh.PublicKey, env manager.Env) ([]byte, []string, error) {
	id, ok := parseHandle(handle)
	if !ok {
		return nil, nil, manager.ErrKeyNotFound
	}
	if peer == nil || peer.Curve() != ecdh.P256() {
		return nil, nil, fmt.Errorf("%w: the peer is not a P-256 key", manager.ErrInvalidInput)
	}
	var z []byte
	err := p.session(ctx, env, func(s p11.SessionHandle) error {
		h, _, err := p.object(s, p11.CKO_PRIVATE_KEY, id)
		if err != nil {
			return err
		}
		params := p11.NewECDH1DeriveParams(p11.CKD_NULL, nil, peer.Bytes())
		secret, err := p.ctx.DeriveKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_ECDH1_DERIVE, params)}, h, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY), p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_GENERIC_SECRET),
			p11.NewAttribute(p11.CKA_TOKEN, false), p11.NewAttribute(p11.CKA_SENSITIVE, false),
			p11.NewAttribute(p11.CKA_EXTRACTABLE, true), p11.NewAttribute(p11.CKA_VALUE_LEN, 32),
		})
		if err != nil {
			return fmt.Errorf("pkcs11key: derive: %w", err)
		}
		defer p.ctx.DestroyObject(s, secret)
		a, err := p.ctx.GetAttributeValue(s, secret, []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)})
		if err != nil {
			return fmt.Errorf("pkcs11key: derive: %w", err)
		}
		if len(a[0].Value) > 32 {
			return errors.New("pkcs11key: derived secret longer than 32 bytes")
		}
		z = make([]byte, 32)
		copy(z[32-len(a[0].Value):], a[0].Value)
		clear(a[0].Value)
		return nil
	})
	return z, amr, err
}

// PublicKey implements manager.Plugin.
func (p *Plugin) PublicKey(ctx context.Context, handle string, env manager.Env) (*ecdsa.PublicKey, error) {
	id, ok := parseHandle(handle)
	if !ok {
		return nil, manager.ErrKeyNotFound
	}
	var pub *ecdsa.PublicKey
	err := p.session(ctx, env, func(s p11.SessionHandle) error {
		if _, _, err := p.object(s, p11.CKO_PRIVATE_KEY, id); err != nil {
			return err
		}
		h, _, err := p.object(s, p11.CKO_PUBLIC_KEY, id)
		if err != nil {
			return err
		}
		pub, err = p.point(s, h)
		return err
	})
	return pub, err
}

// Properties implements manager.Plugin.
func (p *Plugin) Properties(ctx context.Context, handle string, env manager.Env) (manager.Properties, error) {
	if _, err := p.PublicKey(ctx, handle, env); err != nil {
		return manager.Properties{}, err
	}
	return p.cfg.Properties, nil
}

// Delete implements manager.Plugin: both halves are destroyed.
func (p *Plugin) Delete(ctx context.Context, handle string, env manager.Env) ([]string, error) {
	id, ok := parseHandle(handle)
	if !ok {
		return nil, nil
	}
	err := p.session(ctx, env, func(s p11.SessionHandle) error {
		for _, class := range []uint{p11.CKO_PRIVATE_KEY, p11.CKO_PUBLIC_KEY} {
			h, _, err := p.object(s, class, id)
			if errors.Is(err, manager.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if err := p.ctx.DestroyObject(s, h); err != nil {
				return fmt.Errorf("pkcs11key: destroy: %w", err)
			}
		}
		return nil
	})
	return amr, err
}
