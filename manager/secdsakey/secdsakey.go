// Package secdsakey is the manager's plugin for keys in the Wallet
// Provider's HSM used through SECDSA instructions (docs/secdsa.md): every
// use is one instruction signed on the phone with the device key and the
// PIN (split ECDSA), which the server checks with one HSM derive and
// answers with a transaction record anyone can verify. There is no
// session: the PIN is asked for, through the host's
// [manager.AuthCallback] naming this plugin, for every instruction.
//
// The phone's keys: the device key U must be the unit's client signing
// key (the server requires it), by default the R2PS client's signing key
// in software; the PIN binder turns the PIN into the PIN key.
// [secdsa.SoftwarePINBinder] stands in for the phone's secure hardware
// (its key must be kept like the device key); a wallet on a phone gives
// one backed by the platform's keystore.
//
// The plugin keeps in its directory the binding (Internal Certificate and
// provider key), the last serial number it used and one file per key
// (kid, public key, the manager's label): the server keeps no label and
// SECDSA has no listing instruction, so these files are the plugin's
// journal and its list of keys ([Plugin.Lookup], [Plugin.List]).
package secdsakey

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wsca/wsca/ecp256"
	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/secdsa"
)

// DefaultID is the plugin id unless configured.
const DefaultID = "secdsa"

// ErrNotActivated: the plugin has no SECDSA binding yet (Activate).
var ErrNotActivated = errors.New("secdsakey: not activated")

// ErrLocked: the server refused the instruction as replayed or locked
// (too many wrong PINs: the unit must be reset by the operator and
// activated again).
var ErrLocked = errors.New("secdsakey: refused: binding locked or serial number replayed")

// Config configures the plugin.
type Config struct {
	// ID defaults to DefaultID.
	ID string
	// DisplayName names the Wallet Provider to the user.
	DisplayName string
	// Client is the R2PS client of an enrolled unit (its signing key is
	// registered with the server).
	Client *client.Client
	// Binder is the phone's PIN binder (required).
	Binder secdsa.PINBinder
	// Device is the device key U; nil uses the client's signing key.
	Device secdsa.DeviceKey
	// Dir keeps the plugin's state (required): the binding, the last
	// serial number and the key files.
	Dir string
	// Properties are what the host states of the Wallet Provider's WSCD;
	// the plugin sets storage remote_hsm, not exportable and PIN user
	// verification.
	Properties manager.Properties
	// Consent, if set, gives each instruction's additional data: the text
	// the user agreed to, which the transaction record carries.
	Consent func(op r2ps.SECDSAOp) []byte
	// OnRecord, if set, receives every transaction record the server
	// returned, verified (the wallet's evidence).
	OnRecord func(*secdsa.TRecord)
	Now      func() time.Time
}

// Plugin is the SECDSA plugin. It is safe for concurrent use; its
// instructions run one at a time (their serial numbers must arrive in
// order).
type Plugin struct {
	cfg   Config
	keys  client.SECDSAKeys
	props manager.Properties

	mu sync.Mutex // instructions, the binding and the serial number
}

// New makes the plugin.
func New(cfg Config) (*Plugin, error) {
	switch {
	case cfg.Client == nil:
		return nil, fmt.Errorf("%w: secdsakey: no client", manager.ErrInvalidInput)
	case cfg.Binder == nil:
		return nil, fmt.Errorf("%w: secdsakey: no PIN binder", manager.ErrInvalidInput)
	case cfg.Dir == "":
		return nil, fmt.Errorf("%w: secdsakey: no state directory", manager.ErrInvalidInput)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "keys"), 0o700); err != nil {
		return nil, fmt.Errorf("secdsakey: %w", err)
	}
	if cfg.ID == "" {
		cfg.ID = DefaultID
	}
	if cfg.DisplayName == "" {
		cfg.DisplayName = "Wallet Provider HSM (SECDSA)"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Plugin{cfg: cfg, keys: client.SECDSAKeys{Binder: cfg.Binder, Device: cfg.Device}, props: manager.RemoteProperties(cfg.Properties)}, nil
}

// ID implements manager.Plugin.
func (p *Plugin) ID() string { return p.cfg.ID }

// DisplayName implements manager.Plugin.
func (p *Plugin) DisplayName() string { return p.cfg.DisplayName }

// NewKeyProperties implements manager.Plugin.
func (p *Plugin) NewKeyProperties() manager.Properties { return p.props }

// askPIN asks the host for a PIN naming this plugin.
func (p *Plugin) askPIN(ctx context.Context, env manager.Env, reason manager.Reason) (*manager.Secret, error) {
	return env.AskPIN(ctx, p.ID(), p.cfg.DisplayName, reason)
}

// state is the binding file.
type state struct {
	Cert     []byte `json:"cert"`
	Provider []byte `json:"provider_key"`
}

// snState is the serial-number file.
type snState struct {
	LastSN uint64 `json:"last_sn"`
}

// Activate binds a PIN the host is asked for (reason register) to the
// unit and keeps the binding. The unit must not have one (after a lock,
// the operator resets it first).
func (p *Plugin) Activate(ctx context.Context, env manager.Env) (*client.SECDSABinding, error) {
	pin, err := p.askPIN(ctx, env, manager.ReasonRegister)
	if err != nil {
		return nil, err
	}
	defer pin.Wipe()
	p.mu.Lock()
	defer p.mu.Unlock()
	b, err := p.cfg.Client.SECDSAActivate(ctx, p.keys, pin.Bytes())
	if err != nil {
		return nil, err
	}
	return b, p.saveBinding(b)
}

// ChangePIN asks for the current PIN and a new one and changes it (a
// pin_change instruction, then a new Internal Certificate).
func (p *Plugin) ChangePIN(ctx context.Context, env manager.Env) error {
	old, err := p.askPIN(ctx, env, manager.ReasonChangeOld)
	if err != nil {
		return err
	}
	defer old.Wipe()
	newPIN, err := p.askPIN(ctx, env, manager.ReasonChangeNew)
	if err != nil {
		return err
	}
	defer newPIN.Wipe()
	p.mu.Lock()
	defer p.mu.Unlock()
	b, err := p.loadBinding()
	if err != nil {
		return err
	}
	sn, err := p.nextSN()
	if err != nil {
		return err
	}
	nb, out, err := p.cfg.Client.SECDSAChangePIN(ctx, b, p.keys, old.Bytes(), newPIN.Bytes(), sn)
	p.report(out)
	if err != nil {
		return instructionError(err)
	}
	return p.saveBinding(nb)
}

// Binding returns the unit's binding (Internal Certificate and provider
// key), which a verifier of the records needs.
func (p *Plugin) Binding() (*client.SECDSABinding, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.loadBinding()
}

func (p *Plugin) saveBinding(b *client.SECDSABinding) error {
	pk, err := b.Provider.Bytes()
	if err != nil {
		return err
	}
	return p.writeJSON("binding.json", state{Cert: b.Cert.Marshal(), Provider: pk})
}

// loadBinding reads the binding (p.mu held). It is read for every
// instruction, never cached: an instruction under a certificate another
// process replaced (a PIN change) would count as a wrong PIN.
func (p *Plugin) loadBinding() (*client.SECDSABinding, error) {
	var s state
	ok, err := p.readJSON("binding.json", &s)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotActivated
	}
	ic, err := secdsa.ParseInternalCert(s.Cert)
	if err != nil {
		return nil, fmt.Errorf("%w: secdsakey binding: %w", manager.ErrCorruptBinding, err)
	}
	prov, err := ecp256.ParsePublicKey(s.Provider)
	if err != nil {
		return nil, fmt.Errorf("%w: secdsakey binding: %w", manager.ErrCorruptBinding, err)
	}
	if err := secdsa.VerifyInternalCert(ic, prov); err != nil {
		return nil, fmt.Errorf("%w: secdsakey binding: %w", manager.ErrCorruptBinding, err)
	}
	return &client.SECDSABinding{Cert: ic, Provider: prov}, nil
}

// nextSN takes the next serial number and records it before it is used
// (p.mu held): above the last one recorded and at least the clock in
// microseconds, so that a lost or restored state file, or another process
// on the same unit, does not make the wallet reuse numbers the server has
// consumed.
func (p *Plugin) nextSN() (uint64, error) {
	var s snState
	if _, err := p.readJSON("sn.json", &s); err != nil {
		return 0, err
	}
	sn := s.LastSN + 1
	if now := p.cfg.Now().UnixMicro(); now > 0 && uint64(now) > sn {
		sn = uint64(now)
	}
	if err := p.writeJSON("sn.json", snState{LastSN: sn}); err != nil {
		return 0, err
	}
	return sn, nil
}

// instruct runs one instruction with the configured consent text.
func (p *Plugin) instruct(ctx context.Context, env manager.Env, op r2ps.SECDSAOp) (*client.SECDSAOutcome, error) {
	var ad []byte
	if p.cfg.Consent != nil {
		ad = p.cfg.Consent(op)
	}
	return p.instructWith(ctx, env, op, ad)
}

// instructWith runs one instruction under a PIN the host is asked for.
func (p *Plugin) instructWith(ctx context.Context, env manager.Env, op r2ps.SECDSAOp, ad []byte) (*client.SECDSAOutcome, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pin, err := p.askPIN(ctx, env, manager.ReasonUnlock)
	if err != nil {
		return nil, err
	}
	defer pin.Wipe()
	if env.Progress != nil {
		env.Progress.OnProgress(manager.Progress{Plugin: p.ID(), Stage: manager.StageNetworkRoundTrip, Step: 1, Total: 1})
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b, err := p.loadBinding()
	if err != nil {
		return nil, err
	}
	sn, err := p.nextSN()
	if err != nil {
		return nil, err
	}
	out, err := p.cfg.Client.SECDSAInstruction(ctx, b, p.keys, pin.Bytes(), sn, op, ad)
	p.report(out)
	if err != nil {
		return out, instructionError(err)
	}
	return out, nil
}

func (p *Plugin) report(out *client.SECDSAOutcome) {
	if out != nil && out.Record != nil && p.cfg.OnRecord != nil {
		p.cfg.OnRecord(out.Record)
	}
}

// instructionError maps the server's refusals: a wrong PIN needs the
// user (ErrAuthRequired), a lock or replay is ErrLocked.
func instructionError(err error) error {
	switch {
	case client.IsCode(err, r2ps.CodeUnauthorized):
		return fmt.Errorf("%w: %w", manager.ErrAuthRequired, err)
	case client.IsCode(err, r2ps.CodeAccessDenied):
		return fmt.Errorf("%w: %w", ErrLocked, err)
	}
	return err
}

// amr is what authorised every instruction: the device key's signature
// and the PIN (the SECDSA signature under Y = P·U).
func amr() []string { return []string{r2ps.AMRPossession, r2ps.AMRPIN} }

// Instruct runs an instruction the manager does not model (a PIN-bound
// signature with its consent text ad, say) and returns its outcome with
// the verified record.
func (p *Plugin) Instruct(ctx context.Context, env manager.Env, op r2ps.SECDSAOp, ad []byte) (*client.SECDSAOutcome, error) {
	return p.instructWith(ctx, env, op, ad)
}

// keyFile is one key's file.
type keyFile struct {
	KID     string    `json:"kid"`
	Public  []byte    `json:"public_key"`
	Label   string    `json:"label,omitempty"`
	Created time.Time `json:"created"`
}

func validKID(h string) bool {
	if len(h) != 32 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

func keyName(kid string) string { return filepath.Join("keys", kid+".json") }

// keyOf reads a key's file; ErrKeyNotFound when there is none.
func (p *Plugin) keyOf(handle string) (manager.PluginKey, error) {
	if !validKID(handle) {
		return manager.PluginKey{}, manager.ErrKeyNotFound
	}
	var f keyFile
	ok, err := p.readJSON(keyName(handle), &f)
	if err != nil {
		return manager.PluginKey{}, err
	}
	if !ok {
		return manager.PluginKey{}, manager.ErrKeyNotFound
	}
	return fromFile(f)
}

func fromFile(f keyFile) (manager.PluginKey, error) {
	pub, err := ecp256.ParsePublicKey(f.Public)
	if err != nil {
		return manager.PluginKey{}, fmt.Errorf("%w: secdsakey key %s: %w", manager.ErrCorruptBinding, f.KID, err)
	}
	if kid, err := ecp256.KID(pub); err != nil || kid != f.KID {
		return manager.PluginKey{}, fmt.Errorf("%w: secdsakey key %s: kid is not its public key's", manager.ErrCorruptBinding, f.KID)
	}
	return manager.PluginKey{Handle: f.KID, Public: pub, Label: f.Label, Created: f.Created}, nil
}

// keyFromResult checks a generation's result: a P-256 public key whose
// kid is the one the server names.
func keyFromResult(res r2ps.SECDSAResult) (*ecdsa.PublicKey, error) {
	pub, err := ecp256.ParsePublicKey(res.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("secdsakey: generated key: %w", err)
	}
	if kid, err := ecp256.KID(pub); err != nil || kid != res.KID {
		return nil, errors.New("secdsakey: the server's kid does not match its public key")
	}
	return pub, nil
}

// Generate implements manager.Plugin: a p256_generate instruction; the
// key's file (with label) is written as soon as the answer is in.
func (p *Plugin) Generate(ctx context.Context, label string, env manager.Env) (manager.PluginKey, []string, error) {
	out, err := p.instruct(ctx, env, r2ps.SECDSAOp{Op: r2ps.SECDSAOpGenerate})
	if err != nil {
		return manager.PluginKey{}, nil, err
	}
	pub, err := keyFromResult(out.Result)
	if err != nil {
		return manager.PluginKey{}, nil, err
	}
	f := keyFile{KID: out.Result.KID, Public: out.Result.PublicKey, Label: label, Created: p.cfg.Now().UTC()}
	if err := p.writeJSON(keyName(f.KID), f); err != nil {
		return manager.PluginKey{}, nil, err
	}
	return manager.PluginKey{Handle: f.KID, Public: pub, Label: label, Created: f.Created}, amr(), nil
}

// Lookup implements manager.Plugin: the key whose file holds label.
func (p *Plugin) Lookup(_ context.Context, label string, _ manager.Env) (manager.PluginKey, bool, error) {
	if label == "" {
		return manager.PluginKey{}, false, nil
	}
	keys, err := p.list()
	if err != nil {
		return manager.PluginKey{}, false, err
	}
	for _, k := range keys {
		if k.Label == label {
			return k, true, nil
		}
	}
	return manager.PluginKey{}, false, nil
}

// gone handles a key operation the server refused for the key (it no
// longer has it: deleted by another wallet process): the file goes too.
func (p *Plugin) gone(handle string, err error) error {
	if client.IsCode(err, r2ps.CodeIllegalRequestData) {
		if rerr := os.Remove(filepath.Join(p.cfg.Dir, keyName(handle))); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return rerr
		}
		return fmt.Errorf("%w: %w", manager.ErrKeyNotFound, err)
	}
	return err
}

// sigFromResult checks a signature's result: DER, and valid for digest
// under the key.
func sigFromResult(pub *ecdsa.PublicKey, digest []byte, res r2ps.SECDSAResult) ([]byte, error) {
	sig, err := ecp256.DERToRaw(res.Signature)
	if err != nil {
		return nil, fmt.Errorf("secdsakey: server signature: %w", err)
	}
	if !ecdsa.Verify(pub, digest, new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return nil, errors.New("secdsakey: the server's signature does not verify under the key")
	}
	return sig, nil
}

// Sign implements manager.Plugin.
func (p *Plugin) Sign(ctx context.Context, handle string, digest []byte, env manager.Env) ([]byte, []string, error) {
	if len(digest) != sha256.Size {
		return nil, nil, fmt.Errorf("%w: a digest is 32 bytes", manager.ErrInvalidInput)
	}
	k, err := p.keyOf(handle)
	if err != nil {
		return nil, nil, err
	}
	out, err := p.instruct(ctx, env, r2ps.SECDSAOp{Op: r2ps.SECDSAOpSign, KID: handle, Hash: digest})
	if err != nil {
		return nil, nil, p.gone(handle, err)
	}
	sig, err := sigFromResult(k.Public, digest, out.Result)
	if err != nil {
		return nil, nil, err
	}
	return sig, amr(), nil
}

// ECDH implements manager.ECDHPlugin: the secret comes only in the
// encrypted answer, never in the record.
func (p *Plugin) ECDH(ctx context.Context, handle string, peer *ecdh.PublicKey, env manager.Env) ([]byte, []string, error) {
	if _, err := p.keyOf(handle); err != nil {
		return nil, nil, err
	}
	out, err := p.instruct(ctx, env, r2ps.SECDSAOp{Op: r2ps.SECDSAOpECDH, KID: handle, Peer: peer.Bytes()})
	if err != nil {
		return nil, nil, p.gone(handle, err)
	}
	return out.Secret, amr(), nil
}

// PublicKey implements manager.Plugin.
func (p *Plugin) PublicKey(_ context.Context, handle string, _ manager.Env) (*ecdsa.PublicKey, error) {
	k, err := p.keyOf(handle)
	if err != nil {
		return nil, err
	}
	return k.Public, nil
}

// Properties implements manager.Plugin.
func (p *Plugin) Properties(_ context.Context, handle string, _ manager.Env) (manager.Properties, error) {
	if _, err := p.keyOf(handle); err != nil {
		return manager.Properties{}, err
	}
	return p.props, nil
}

// List implements manager.Plugin: the keys this wallet made (from their
// files), oldest first.
func (p *Plugin) List(context.Context, manager.Env) ([]manager.PluginKey, error) { return p.list() }

func (p *Plugin) list() ([]manager.PluginKey, error) {
	ents, err := os.ReadDir(filepath.Join(p.cfg.Dir, "keys"))
	if err != nil {
		return nil, fmt.Errorf("secdsakey: %w", err)
	}
	var out []manager.PluginKey
	for _, de := range ents {
		kid, ok := strings.CutSuffix(de.Name(), ".json")
		if !ok || !validKID(kid) {
			continue
		}
		k, err := p.keyOf(kid)
		if errors.Is(err, manager.ErrKeyNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// Delete implements manager.Plugin: a delete_key instruction; a key the
// server no longer has is gone too.
func (p *Plugin) Delete(ctx context.Context, handle string, env manager.Env) ([]string, error) {
	if _, err := p.keyOf(handle); errors.Is(err, manager.ErrKeyNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	_, err := p.instruct(ctx, env, r2ps.SECDSAOp{Op: r2ps.SECDSAOpDelete, KID: handle})
	if err != nil {
		if errors.Is(p.gone(handle, err), manager.ErrKeyNotFound) {
			return nil, nil
		}
		return nil, err
	}
	if err := os.Remove(filepath.Join(p.cfg.Dir, keyName(handle))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("secdsakey: %w", err)
	}
	return amr(), nil
}

// readJSON reads a state file; ok is false when it does not exist.
func (p *Plugin) readJSON(name string, v any) (bool, error) {
	f, err := os.Open(filepath.Join(p.cfg.Dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("secdsakey: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return false, fmt.Errorf("secdsakey: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("%w: secdsakey %s", manager.ErrCorruptBinding, name)
	}
	return true, nil
}

// writeJSON replaces a state file atomically (a synced temporary file
// renamed over it).
func (p *Plugin) writeJSON(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dst := filepath.Join(p.cfg.Dir, name)
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp")
	if err != nil {
		return fmt.Errorf("secdsakey: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		return fmt.Errorf("secdsakey: %s: %w", name, err)
	}
	return nil
}
