// Package remote is the manager's plugin for a remote WSCD over R2PS
// (package r2ps/client): keys live in the Wallet Provider's HSM, each use
// runs in a PIN session opened with OPAQUE, and the PIN comes from the
// host's [manager.AuthCallback] naming this plugin.
//
// The session is kept in memory and reused until it expires or the server
// ends it (a PIN change, a revocation); then the plugin asks for the PIN
// again, once per call. Signatures come back DER from the server and are
// checked against the key's public key before they are returned raw.
//
// Server keys carry no label, so the plugin keeps a small journal (one
// file per generation) naming the keys that existed before it asked for a
// new one: after a crash, [Plugin.Lookup] finds the key the server made
// for a label as the one not named there.
package remote

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wsca/wsca/ecp256"
	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/kv"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
)

// DefaultID is the plugin id unless configured.
const DefaultID = "r2ps"

// Config configures the plugin.
type Config struct {
	// ID defaults to DefaultID.
	ID string
	// DisplayName names the Wallet Provider to the user.
	DisplayName string
	// Client is an R2PS client for the unit (enrolled, or to be enrolled
	// with Enrol).
	Client *client.Client
	// Properties are what the host states of the remote WSCD, from the
	// Wallet Provider's key attestation or certificate, until Refresh
	// reads the server's statement: the plugin adds nothing of its own
	// beyond storage remote_hsm, not exportable and PIN user verification.
	Properties manager.Properties
	// SessionDuration asks the server for session lengths (0: its
	// default).
	SessionDuration time.Duration
	// Journal is a directory for the generation journal; JournalStore
	// keeps it in a kv.Store instead, under JournalPrefix. One of the two
	// is required.
	Journal       string
	JournalStore  kv.Store
	JournalPrefix string
	// Sessions keeps the PIN session between processes (a CLI runs once
	// per command); nil keeps it in this process only.
	Sessions SessionStore
	Now      func() time.Time
}

// SavedSession is a PIN session as a SessionStore keeps it. Key is as
// secret as the unit's device keys.
type SavedSession struct {
	ID        string
	Key       []byte
	Task      string
	ExpiresAt time.Time
}

// SessionStore keeps the plugin's session outside the process. Load
// returns ok false when none is kept.
type SessionStore interface {
	Load(ctx context.Context) (s SavedSession, ok bool, err error)
	Save(ctx context.Context, s SavedSession) error
	Forget(ctx context.Context) error
}

// Plugin is the R2PS plugin.
type Plugin struct {
	cfg     Config
	journal journal
	mu      sync.Mutex
	sess    *client.Session

	pmu   sync.RWMutex
	props manager.Properties
}

// ErrNotEnrolled: the unit has no PIN on the server yet.
var ErrNotEnrolled = errors.New("remote: the unit is not enrolled")

// New makes the plugin.
func New(cfg Config) (*Plugin, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("%w: remote: no client", manager.ErrInvalidInput)
	}
	var j journal
	switch {
	case cfg.JournalStore != nil:
		j = kvJournal{kv: cfg.JournalStore, prefix: cfg.JournalPrefix}
	case cfg.Journal != "":
		st, err := kv.OpenFiles(cfg.Journal, ".json")
		if err != nil {
			return nil, fmt.Errorf("remote: journal: %w", err)
		}
		j = kvJournal{kv: st}
	default:
		return nil, fmt.Errorf("%w: remote: no journal", manager.ErrInvalidInput)
	}
	if cfg.ID == "" {
		cfg.ID = DefaultID
	}
	if cfg.DisplayName == "" {
		cfg.DisplayName = "Wallet Provider HSM"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Properties = manager.RemoteProperties(cfg.Properties)
	return &Plugin{cfg: cfg, journal: j, props: cfg.Properties}, nil
}

// Refresh replaces the properties with what the server states of its
// device (wallet_unit_info): its assurance and the attack-potential levels
// its key attestations carry. Hosts call it after enrolment and at start;
// until then the configured properties apply.
func (p *Plugin) Refresh(ctx context.Context, env manager.Env) error {
	var out r2ps.UnitInfoResponse
	if err := p.call(ctx, env, r2ps.TypeUnitInfo, r2ps.EmptyRequest{}, &out); err != nil {
		return err
	}
	c := out.Capabilities
	props := manager.RemoteProperties(manager.Properties{Assurance: c.DeviceAssurance})
	if len(c.KeyStorage) > 0 {
		props.KeyStorageAttackPotential = c.KeyStorage[0]
	}
	if len(c.UserAuthentication) > 0 {
		props.UserAuthAttackPotential = c.UserAuthentication[0]
	}
	p.pmu.Lock()
	p.props = props
	p.pmu.Unlock()
	return nil
}

// Client returns the plugin's R2PS client.
func (p *Plugin) Client() *client.Client { return p.cfg.Client }

// ID implements manager.Plugin.
func (p *Plugin) ID() string { return p.cfg.ID }

// DisplayName implements manager.Plugin.
func (p *Plugin) DisplayName() string { return p.cfg.DisplayName }

// NewKeyProperties implements manager.Plugin.
func (p *Plugin) NewKeyProperties() manager.Properties {
	p.pmu.RLock()
	defer p.pmu.RUnlock()
	return p.props
}

// askPIN asks the host for a PIN naming this plugin.
func (p *Plugin) askPIN(ctx context.Context, env manager.Env, reason manager.Reason) (*manager.Secret, error) {
	return env.AskPIN(ctx, p.ID(), p.cfg.DisplayName, reason)
}

// Enrol registers the unit with an activation code and a PIN the host is
// asked for (reason register).
func (p *Plugin) Enrol(ctx context.Context, activationCode string, env manager.Env) error {
	pin, err := p.askPIN(ctx, env, manager.ReasonRegister)
	if err != nil {
		return err
	}
	defer pin.Wipe()
	return p.cfg.Client.Enrol(ctx, activationCode, pin.Bytes())
}

// ChangePIN asks for the current PIN and a new one and changes it; every
// session of the unit ends with it, this plugin's included.
func (p *Plugin) ChangePIN(ctx context.Context, env manager.Env) error {
	old, err := p.askPIN(ctx, env, manager.ReasonChangeOld)
	if err != nil {
		return err
	}
	s, err := p.cfg.Client.Login(ctx, old.Bytes(), client.LoginOptions{Task: r2ps.Task2FAUpdate})
	old.Wipe()
	if err != nil {
		return err
	}
	newPIN, err := p.askPIN(ctx, env, manager.ReasonChangeNew)
	if err != nil {
		return err
	}
	defer newPIN.Wipe()
	if err := p.Logout(ctx); err != nil {
		return err
	}
	return s.ChangePIN(ctx, newPIN.Bytes())
}

// usable reports whether s is a session not about to expire.
func (p *Plugin) usable(s *client.Session) bool {
	return s != nil && p.cfg.Now().Add(5*time.Second).Before(s.ExpiresAt)
}

// session returns the cached (or saved) session, or opens one with the
// PIN; fresh forgets both first.
func (p *Plugin) session(ctx context.Context, env manager.Env, fresh bool) (*client.Session, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if fresh {
		if err := p.forget(ctx); err != nil {
			return nil, err
		}
	}
	if p.usable(p.sess) {
		return p.sess, nil
	}
	if !fresh && p.cfg.Sessions != nil {
		saved, ok, err := p.cfg.Sessions.Load(ctx)
		if err != nil {
			return nil, err
		}
		if ok {
			s := p.cfg.Client.Resume(saved.ID, saved.Key, saved.Task, saved.ExpiresAt)
			clear(saved.Key)
			if p.usable(s) {
				p.sess = s
				return s, nil
			}
		}
	}
	return p.login(ctx, env, client.LoginOptions{Duration: p.cfg.SessionDuration})
}

// login asks for the PIN and opens a session (p.mu held). The session it
// replaces is dropped only when the new one is open.
func (p *Plugin) login(ctx context.Context, env manager.Env, opts client.LoginOptions) (*client.Session, error) {
	pin, err := p.askPIN(ctx, env, manager.ReasonUnlock)
	if err != nil {
		return nil, err
	}
	defer pin.Wipe()
	s, err := p.cfg.Client.Login(ctx, pin.Bytes(), opts)
	if err != nil {
		if client.IsCode(err, r2ps.CodeUnauthorized) {
			return nil, fmt.Errorf("%w: %w", manager.ErrAuthRequired, err)
		}
		return nil, err
	}
	if p.cfg.Sessions != nil {
		if err := p.cfg.Sessions.Save(ctx, SavedSession{ID: s.ID, Key: s.Key, Task: s.Task, ExpiresAt: s.ExpiresAt}); err != nil {
			clear(s.Key)
			return nil, err
		}
	}
	if p.sess != nil {
		clear(p.sess.Key)
	}
	p.sess = s
	return s, nil
}

// forget drops the session here and in the store (p.mu held).
func (p *Plugin) forget(ctx context.Context) error {
	if p.sess != nil {
		clear(p.sess.Key)
		p.sess = nil
	}
	if p.cfg.Sessions != nil {
		return p.cfg.Sessions.Forget(ctx)
	}
	return nil
}

// Login opens a session now (asking for the PIN), with a task and a
// duration, replacing any session the plugin holds.
func (p *Plugin) Login(ctx context.Context, env manager.Env, task string, duration time.Duration) (*client.Session, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.login(ctx, env, client.LoginOptions{Task: task, Duration: duration})
}

// Logout forgets the session (it ends on the server at its expiry).
func (p *Plugin) Logout(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.forget(ctx)
}

// call runs fn in a session; when the server no longer knows the session
// (expired, ended by a PIN change), it logs in again once.
func (p *Plugin) call(ctx context.Context, env manager.Env, typ string, data any, out any) error {
	env.Report(manager.Progress{Plugin: p.ID(), Stage: manager.StageNetworkRoundTrip, Step: 1, Total: 1})
	for attempt := 0; ; attempt++ {
		s, err := p.session(ctx, env, attempt > 0)
		if err != nil {
			return err
		}
		raw, err := s.Call(ctx, typ, data)
		if err == nil {
			return r2ps.DecodeData(raw, out)
		}
		if attempt == 0 && sessionGone(err) {
			continue
		}
		return err
	}
}

// sessionGone reports whether err says the session is no longer valid.
func sessionGone(err error) bool {
	var e *client.Error
	return errors.As(err, &e) && (e.Code == r2ps.CodeUnauthorized || e.Code == r2ps.CodeIllegalState)
}

func validKID(h string) bool {
	if len(h) != 32 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

// journalEntry is written before a generation.
type journalEntry struct {
	Label   string    `json:"label"`
	Before  []string  `json:"before"`
	KID     string    `json:"kid,omitempty"`
	Created time.Time `json:"created"`
}

func (p *Plugin) writeJournal(ctx context.Context, e journalEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return p.journal.put(ctx, hex.EncodeToString([]byte(e.Label)), b)
}

func (p *Plugin) readJournal(ctx context.Context, label string) (journalEntry, bool, error) {
	b, ok, err := p.journal.get(ctx, hex.EncodeToString([]byte(label)))
	if err != nil || !ok {
		return journalEntry{}, false, err
	}
	var e journalEntry
	if err := json.Unmarshal(b, &e); err != nil || e.Label != label {
		return journalEntry{}, false, fmt.Errorf("%w: remote journal entry", manager.ErrCorruptBinding)
	}
	return e, true, nil
}

// keys lists the unit's keys in the session's context.
func (p *Plugin) keys(ctx context.Context, env manager.Env) ([]client.Key, error) {
	var keys []client.Key
	req := r2ps.ListKeysRequest{}
	for page := 0; page < 1000; page++ {
		var out r2ps.ListKeysResponse
		if err := p.call(ctx, env, r2ps.TypeListKeys, req, &out); err != nil {
			return nil, err
		}
		for _, ki := range out.KeyInfo {
			if ki.PublicKey == nil {
				return nil, errors.New("remote: a listed key has no public key")
			}
			pub, ok := ki.PublicKey.Key.(*ecdsa.PublicKey)
			if !ok {
				return nil, errors.New("remote: a listed key is not P-256")
			}
			if kid, err := ecp256.KID(pub); err != nil || kid != ki.KID {
				return nil, errors.New("remote: the server's kid does not match its public key")
			}
			keys = append(keys, client.Key{KID: ki.KID, Public: pub, Created: time.Unix(ki.CreationTime, 0).UTC()})
		}
		if out.Next == "" || out.Next == req.After {
			break
		}
		req.After = out.Next
	}
	return keys, nil
}

// Generate implements manager.Plugin.
func (p *Plugin) Generate(ctx context.Context, label string, env manager.Env) (manager.PluginKey, []string, error) {
	if err := ctx.Err(); err != nil {
		return manager.PluginKey{}, nil, err
	}
	if label != "" {
		before, err := p.keys(ctx, env)
		if err != nil {
			return manager.PluginKey{}, nil, err
		}
		e := journalEntry{Label: label, Created: p.cfg.Now().UTC()}
		for _, k := range before {
			e.Before = append(e.Before, k.KID)
		}
		if err := p.writeJournal(ctx, e); err != nil {
			return manager.PluginKey{}, nil, err
		}
		defer func() {
			if e.KID != "" {
				_ = p.writeJournal(context.WithoutCancel(ctx), e)
			}
		}()
		var out r2ps.GenerateResponse
		if err := p.call(ctx, env, r2ps.TypeP256Generate, r2ps.GenerateRequest{Curve: r2ps.CurveP256}, &out); err != nil {
			return manager.PluginKey{}, nil, err
		}
		k, err := fromGenerate(out)
		if err != nil {
			return manager.PluginKey{}, nil, err
		}
		e.KID = k.Handle
		k.Label = label
		return k, out.AMR, nil
	}
	var out r2ps.GenerateResponse
	if err := p.call(ctx, env, r2ps.TypeP256Generate, r2ps.GenerateRequest{Curve: r2ps.CurveP256}, &out); err != nil {
		return manager.PluginKey{}, nil, err
	}
	k, err := fromGenerate(out)
	return k, out.AMR, err
}

func fromGenerate(out r2ps.GenerateResponse) (manager.PluginKey, error) {
	if out.PublicKey == nil {
		return manager.PluginKey{}, errors.New("remote: generated key without public key")
	}
	pub, ok := out.PublicKey.Key.(*ecdsa.PublicKey)
	if !ok {
		return manager.PluginKey{}, errors.New("remote: generated key is not P-256")
	}
	if kid, err := ecp256.KID(pub); err != nil || kid != out.KID {
		return manager.PluginKey{}, errors.New("remote: the server's kid does not match its public key")
	}
	return manager.PluginKey{Handle: out.KID, Public: pub}, nil
}

// Lookup implements manager.Plugin: the key recorded for label, or the
// newest key that was not there before the generation and that no other
// journal entry claims.
func (p *Plugin) Lookup(ctx context.Context, label string, env manager.Env) (manager.PluginKey, bool, error) {
	e, ok, err := p.readJournal(ctx, label)
	if err != nil || !ok {
		return manager.PluginKey{}, false, err
	}
	keys, err := p.keys(ctx, env)
	if err != nil {
		return manager.PluginKey{}, false, err
	}
	claimed := map[string]bool{}
	names, _ := p.journal.list(ctx)
	for _, n := range names {
		raw, err := hex.DecodeString(n)
		if err != nil || string(raw) == label {
			continue
		}
		if o, ok, _ := p.readJournal(ctx, string(raw)); ok && o.KID != "" {
			claimed[o.KID] = true
		}
	}
	for i := len(keys) - 1; i >= 0; i-- {
		k := keys[i]
		if (e.KID != "" && k.KID == e.KID) || (e.KID == "" && !slices.Contains(e.Before, k.KID) && !claimed[k.KID]) {
			return manager.PluginKey{Handle: k.KID, Public: k.Public, Label: label, Created: k.Created}, true, nil
		}
	}
	return manager.PluginKey{}, false, nil
}

// Sign implements manager.Plugin.
func (p *Plugin) Sign(ctx context.Context, handle string, digest []byte, env manager.Env) ([]byte, []string, error) {
	if len(digest) != 32 {
		return nil, nil, fmt.Errorf("%w: a digest is 32 bytes", manager.ErrInvalidInput)
	}
	if !validKID(handle) {
		return nil, nil, manager.ErrKeyNotFound
	}
	var out r2ps.SignResponse
	if err := p.call(ctx, env, r2ps.TypeSignECDSA, r2ps.SignRequest{KID: handle, TBSHash: digest}, &out); err != nil {
		return nil, nil, p.keyError(ctx, env, handle, err)
	}
	sig, err := ecp256.DERToRaw(out.Signature)
	if err != nil {
		return nil, nil, fmt.Errorf("remote: server signature: %w", err)
	}
	return sig, out.AMR, nil
}

// keyError turns a refusal for a key the unit does not have into
// ErrKeyNotFound (the server answers those generically).
func (p *Plugin) keyError(ctx context.Context, env manager.Env, handle string, err error) error {
	var e *client.Error
	if !errors.As(err, &e) {
		return err
	}
	keys, lerr := p.keys(ctx, env)
	if lerr != nil {
		return err
	}
	for _, k := range keys {
		if k.KID == handle {
			return err
		}
	}
	return fmt.Errorf("%w: %v", manager.ErrKeyNotFound, err)
}

// ECDH implements manager.ECDHPlugin.
func (p *Plugin) ECDH(ctx context.Context, handle string, peer *ecdh.PublicKey, env manager.Env) ([]byte, []string, error) {
	if !validKID(handle) {
		return nil, nil, manager.ErrKeyNotFound
	}
	var out r2ps.ECDHResponse
	if err := p.call(ctx, env, r2ps.TypeAgreeECDH, r2ps.ECDHRequest{KID: handle, PublicKey: peer.Bytes()}, &out); err != nil {
		return nil, nil, p.keyError(ctx, env, handle, err)
	}
	if len(out.SharedSecret) != 32 {
		return nil, nil, errors.New("remote: the server's shared secret is not 32 bytes")
	}
	return out.SharedSecret, out.AMR, nil
}

// PublicKey implements manager.Plugin.
func (p *Plugin) PublicKey(ctx context.Context, handle string, env manager.Env) (*ecdsa.PublicKey, error) {
	if !validKID(handle) {
		return nil, manager.ErrKeyNotFound
	}
	keys, err := p.keys(ctx, env)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if k.KID == handle {
			return k.Public, nil
		}
	}
	return nil, manager.ErrKeyNotFound
}

// Properties implements manager.Plugin.
func (p *Plugin) Properties(ctx context.Context, handle string, env manager.Env) (manager.Properties, error) {
	if _, err := p.PublicKey(ctx, handle, env); err != nil {
		return manager.Properties{}, err
	}
	return p.NewKeyProperties(), nil
}

// List implements manager.Plugin.
func (p *Plugin) List(ctx context.Context, env manager.Env) ([]manager.PluginKey, error) {
	keys, err := p.keys(ctx, env)
	if err != nil {
		return nil, err
	}
	out := make([]manager.PluginKey, 0, len(keys))
	for _, k := range keys {
		out = append(out, manager.PluginKey{Handle: k.KID, Public: k.Public, Created: k.Created})
	}
	return out, nil
}

// Delete implements manager.Plugin.
func (p *Plugin) Delete(ctx context.Context, handle string, env manager.Env) ([]string, error) {
	if !validKID(handle) {
		return nil, nil
	}
	var out r2ps.DeleteKeyResponse
	if err := p.call(ctx, env, r2ps.TypeDeleteKey, r2ps.DeleteKeyRequest{KID: handle}, &out); err != nil {
		if errors.Is(p.keyError(ctx, env, handle, err), manager.ErrKeyNotFound) {
			return nil, nil
		}
		return nil, err
	}
	return out.AMR, nil
}

// Attestation implements manager.AttestingPlugin: the WSCA's key
// attestation (OpenID4VCI Appendix D) of the keys, a 1FA request.
func (p *Plugin) Attestation(ctx context.Context, handles []string, nonce string, _ manager.Env) (manager.Attestation, []string, error) {
	for _, h := range handles {
		if !validKID(h) {
			return manager.Attestation{}, nil, manager.ErrKeyNotFound
		}
	}
	jwt, err := p.cfg.Client.KeyAttestation(ctx, handles, nonce)
	if err != nil {
		return manager.Attestation{}, nil, err
	}
	return manager.Attestation{Format: "key-attestation+jwt", JWT: jwt}, []string{r2ps.AMRPossession}, nil
}
