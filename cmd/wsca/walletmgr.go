package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/wsca/wsca/internal/atomicfile"
	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/remote"
	"github.com/wsca/wsca/manager/softkey"
)

// The wallet's key commands run on the key manager (package manager) with
// two plugins: r2ps (manager/remote), the enrolled unit's keys in the
// Wallet Provider's HSM, registered when the state file holds an enrolled
// wallet; and softkey (manager/softkey), software keys on this machine,
// always registered. The manager keeps its state in a directory beside the
// state file:
//
//	<dir of --state>/manager/
//	  bindings/      which plugin holds which key (manager.DirStore)
//	  softkey/       the softkey keystore, one JWE per key
//	  softkey.kek    the softkey's key-encryption key: 32 random bytes, 0600
//	  r2ps-journal/  the r2ps plugin's generation journal (crash recovery)
//
// On the command line the softkey is only as safe as the file permissions
// of that directory: the KEK lies next to the keys it encrypts (a mobile app
// gets its KEK from the platform keystore instead). A KEK file that group
// or others may read is refused, as the state file is.

// managerDirName is the manager's directory beside the state file.
const managerDirName = "manager"

// kekFile is the softkey KEK's file name in the manager's directory.
const kekFile = "softkey.kek"

// managerDir is the manager's state directory for a state file.
func managerDir(statePath string) string {
	return filepath.Join(filepath.Dir(statePath), managerDirName)
}

// checkPrivate refuses a file group or others may read. Windows reports no
// Unix permission bits; there the directory's ACL protects it.
func checkPrivate(path string, fi os.FileInfo, what string) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return fmt.Errorf("%s holds %s but group or others may read it (mode %04o): chmod 600 it", path, what, perm)
	}
	return nil
}

// cliRecoverAfter is how old an unfinished generation, deletion or
// migration must be before a wsca command finishes or undoes it.
const cliRecoverAfter = 10 * time.Minute

// loadKEK reads the softkey KEK in dir, creating it on first use. It is
// created under a temporary name and linked into place, so that two
// processes starting at once end up with the same KEK.
func loadKEK(dir string) ([]byte, error) {
	path := filepath.Join(dir, kekFile)
	kek, err := readKEK(path)
	if !errors.Is(err, os.ErrNotExist) {
		return kek, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("softkey KEK: %w", err)
	}
	fresh := make([]byte, softkey.KEKSize)
	defer clear(fresh)
	_, _ = rand.Read(fresh)
	// Created under a temporary name and linked into place: of two
	// processes starting at once, the second uses the first one's KEK.
	if err := atomicfile.Create(path, fresh, 0o600); err != nil && !errors.Is(err, atomicfile.ErrExists) {
		return nil, fmt.Errorf("softkey KEK: %w", err)
	}
	return readKEK(path)
}

// readKEK reads and checks the KEK file.
func readKEK(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("softkey KEK: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("softkey KEK: %w", err)
	}
	if err := checkPrivate(path, fi, "the softkey's key-encryption key"); err != nil {
		return nil, fmt.Errorf("softkey KEK: %w", err)
	}
	kek := make([]byte, softkey.KEKSize+1)
	n, err := io.ReadFull(f, kek)
	if n != softkey.KEKSize || !errors.Is(err, io.ErrUnexpectedEOF) {
		clear(kek)
		return nil, fmt.Errorf("softkey KEK: %s is not %d bytes", path, softkey.KEKSize)
	}
	return kek[:softkey.KEKSize], nil
}

// stateSessions keeps the r2ps plugin's PIN session in the state file's
// session entry, so that `wsca login` opens it and later commands use it.
type stateSessions struct{ path string }

var _ remote.SessionStore = stateSessions{}

// Load implements remote.SessionStore.
func (s stateSessions) Load(context.Context) (remote.SavedSession, bool, error) {
	w, err := loadWallet(s.path)
	if err != nil {
		return remote.SavedSession{}, false, err
	}
	defer w.forgetSession()
	if w.session == nil {
		return remote.SavedSession{}, false, nil
	}
	ws := w.session
	return remote.SavedSession{ID: ws.id, Key: bytes.Clone(ws.key), Task: ws.task, ExpiresAt: ws.expiresAt}, true, nil
}

// Save implements remote.SessionStore.
func (s stateSessions) Save(_ context.Context, ss remote.SavedSession) error {
	w, err := loadWallet(s.path)
	if err != nil {
		return err
	}
	defer w.forgetSession()
	w.forgetSession()
	w.session = &savedSession{id: ss.ID, key: bytes.Clone(ss.Key), task: ss.Task, expiresAt: ss.ExpiresAt}
	return w.save()
}

// Forget implements remote.SessionStore.
func (s stateSessions) Forget(context.Context) error {
	w, err := loadWallet(s.path)
	if err != nil {
		return err
	}
	if w.session == nil {
		return nil
	}
	w.forgetSession()
	return w.save()
}

// cliAuth is the manager's AuthCallback on the command line. PINs read
// before the command acts (enroll, pin change) are handed out by reason;
// any other PIN request is answered from the prompt only with --login, so
// that a command never asks unexpectedly: without it, a plugin that needs
// a session gets "no session" (or "session expired" when the state file
// had one).
type cliAuth struct {
	prompt     prompter
	login      bool
	hadSession bool
	preset     map[manager.Reason][]byte
	asked      map[manager.Reason]int
}

var _ manager.AuthCallback = (*cliAuth)(nil)

// RequestPIN implements manager.AuthCallback; the prompt names the plugin.
func (a *cliAuth) RequestPIN(_ context.Context, req manager.PINRequest) (*manager.Secret, error) {
	if a.asked == nil {
		a.asked = map[manager.Reason]int{}
	}
	a.asked[req.Reason]++
	if b, ok := a.preset[req.Reason]; ok {
		return manager.NewSecret(bytes.Clone(b)), nil
	}
	if !a.login {
		if a.hadSession {
			return nil, errSessionExpired
		}
		return nil, errNoSession
	}
	b, err := a.prompt.pin(fmt.Sprintf("PIN for %s (%s)", req.Plugin, req.DisplayName))
	if err != nil {
		return nil, err
	}
	return manager.NewSecret(b), nil
}

// RequestWebAuthnAssertion implements manager.AuthCallback: the command
// line has no WebAuthn.
func (a *cliAuth) RequestWebAuthnAssertion(context.Context, manager.WebAuthnRequest) ([]byte, error) {
	return nil, fmt.Errorf("%w: no WebAuthn on the command line", manager.ErrUnsupported)
}

// wipe clears the PINs read in advance.
func (a *cliAuth) wipe() {
	for _, b := range a.preset {
		clear(b)
	}
}

// newR2PS makes the r2ps plugin for an enrolled (or enrolling) wallet,
// its session kept in the state file.
func newR2PS(w *wallet) (*remote.Plugin, error) {
	c, err := w.client()
	if err != nil {
		return nil, err
	}
	return remote.New(remote.Config{
		DisplayName: "Wallet Provider HSM at " + w.url,
		Client:      c,
		Journal:     filepath.Join(managerDir(w.path), "r2ps-journal"),
		Sessions:    stateSessions{path: w.path},
	})
}

// walletManager is the manager one command runs on.
type walletManager struct {
	m     *manager.Manager
	store *manager.DirStore
	soft  *softkey.Plugin
	r2ps  *remote.Plugin // nil when the state file holds no enrolled wallet
	w     *wallet        // nil when there is no state file
	auth  *cliAuth
	login bool
}

// openManager opens the manager for the wallet flags' state file. A state
// file that does not exist is no error (softkey works without one); one
// that cannot be read is. Recovery of an interrupted operation that fails
// is reported on stderr and does not stop the command.
func (f *walletFlags) openManager(ctx context.Context, e env) (*walletManager, error) {
	wm := &walletManager{login: f.login}
	w, err := loadWallet(f.state)
	switch {
	case errors.Is(err, errNoState):
	case err != nil:
		return nil, err
	default:
		wm.w = w
	}
	wm.auth = &cliAuth{prompt: newPrompter(e, f.pinStdin), login: f.login, hadSession: w != nil && w.session != nil}
	if w != nil {
		w.forgetSession() // the plugin reads it from the file when it needs it
	}
	dir := managerDir(f.state)
	if wm.store, err = manager.OpenDirStore(filepath.Join(dir, "bindings")); err != nil {
		return nil, err
	}
	kek, err := loadKEK(dir)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	if wm.soft, err = softkey.Open(filepath.Join(dir, "softkey"), kek); err != nil {
		return nil, err
	}
	plugins := []manager.Plugin{wm.soft}
	def := softkey.ID
	if w != nil && w.enrolled {
		if wm.r2ps, err = newR2PS(w); err != nil {
			wm.close()
			return nil, err
		}
		// r2ps first: requirement-based selection tries plugins in
		// registration order, and the HSM meets more requirements.
		plugins = []manager.Plugin{wm.r2ps, wm.soft}
		def = wm.r2ps.ID()
	}
	// The plugins are registered after New so that its recovery cannot
	// keep the command from running: recovery runs below, and its failure
	// (say, an r2ps generation interrupted while there is no session now)
	// is only reported.
	// Two wsca commands may run at once on one state directory: recovery
	// leaves alone what another command may still be doing (a PIN prompt
	// included).
	if wm.m, err = manager.New(ctx, manager.Config{Store: wm.store, Default: def, Auth: wm.auth, RecoverAfter: cliRecoverAfter}); err != nil {
		wm.close()
		return nil, err
	}
	for _, p := range plugins {
		if err := wm.m.Register(p); err != nil {
			wm.close()
			return nil, err
		}
	}
	if err := wm.m.Recover(ctx); err != nil {
		fmt.Fprintf(e.stderr, "wsca: warning: finishing an interrupted key operation: %v\n", userError(err))
	}
	return wm, nil
}

func (wm *walletManager) close() {
	if wm.soft != nil {
		_ = wm.soft.Close()
	}
	wm.auth.wipe()
}

// plugin returns a registered plugin by id.
func (wm *walletManager) plugin(id string) (manager.Plugin, bool) {
	switch {
	case id == softkey.ID:
		return wm.soft, true
	case wm.r2ps != nil && id == wm.r2ps.ID():
		return wm.r2ps, true
	}
	return nil, false
}

// plugins returns the registered plugins in registration order.
func (wm *walletManager) plugins() []manager.Plugin {
	if wm.r2ps != nil {
		return []manager.Plugin{wm.r2ps, wm.soft}
	}
	return []manager.Plugin{wm.soft}
}

// defaultPlugin is where keygen makes a key without --plugin.
func (wm *walletManager) defaultPlugin() string {
	if wm.r2ps != nil {
		return wm.r2ps.ID()
	}
	return softkey.ID
}

// needSession fails early, without a round trip, when a command would use
// the r2ps plugin with no session it can use and --login was not given.
func (wm *walletManager) needSession(plugin string) error {
	if wm.login || wm.r2ps == nil || plugin != wm.r2ps.ID() {
		return nil
	}
	s, ok, err := stateSessions{path: wm.w.path}.Load(context.Background())
	if err != nil {
		return err
	}
	clear(s.Key)
	switch {
	case !ok:
		return errNoSession
	case !time.Now().Before(s.ExpiresAt):
		return errSessionExpired
	}
	return nil
}

// keyRef is a key named on the command line, resolved to the manager's kid.
type keyRef struct {
	KID    manager.KID
	Plugin string // empty: not bound; the manager resolves it by default
	Handle string
}

// kidKind says what a --kid argument looks like.
type kidKind int

const (
	kidBad        kidKind = iota
	kidThumbprint         // RFC 7638 thumbprint, the manager's kid
	kidHandle             // a plugin's handle
)

// classifyKID tells a manager kid (43 base64url characters) from a
// plugin's handle (printable, no spaces, at most 128 bytes: an r2ps
// server kid is 32 hex digits, a softkey handle 22 base64url characters).
func classifyKID(s string) kidKind {
	if manager.KID(s).Valid() {
		return kidThumbprint
	}
	if s == "" || len(s) > 128 {
		return kidBad
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f {
			return kidBad
		}
	}
	return kidHandle
}

// isServerKID reports whether h has the form of an R2PS server kid.
func isServerKID(h string) bool {
	if len(h) != 32 || strings.ToLower(h) != h {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

// find resolves a --kid argument: a thumbprint as is (with its binding
// when there is one), a handle through the bindings, or, for an r2ps
// server kid with no binding (a key made before the manager), through the
// r2ps plugin's key list.
func (wm *walletManager) find(ctx context.Context, arg string) (keyRef, error) {
	switch classifyKID(arg) {
	case kidThumbprint:
		kid := manager.KID(arg)
		b, err := wm.store.Binding(ctx, kid)
		switch {
		case err == nil:
			return keyRef{KID: kid, Plugin: b.Plugin, Handle: b.Handle}, nil
		case errors.Is(err, manager.ErrNotFound):
			return keyRef{KID: kid}, nil
		default:
			return keyRef{}, err
		}
	case kidBad:
		return keyRef{}, fmt.Errorf("--kid %q: not a kid (RFC 7638 thumbprint) or a key handle", arg)
	}
	bs, err := wm.store.Bindings(ctx)
	if err != nil {
		return keyRef{}, err
	}
	var found []keyRef
	for _, b := range bs {
		if b.Handle == arg {
			found = append(found, keyRef{KID: b.KID, Plugin: b.Plugin, Handle: b.Handle})
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		return keyRef{}, fmt.Errorf("handle %s names keys on several plugins: give the kid", arg)
	}
	if wm.r2ps != nil && isServerKID(arg) {
		if err := wm.needSession(wm.r2ps.ID()); err != nil {
			return keyRef{}, err
		}
		keys, err := wm.r2ps.List(ctx, manager.Env{Auth: wm.auth})
		if err != nil {
			return keyRef{}, err
		}
		for _, k := range keys {
			if k.Handle == arg {
				kid, err := manager.Thumbprint(k.Public)
				if err != nil {
					return keyRef{}, err
				}
				return keyRef{KID: kid, Plugin: wm.r2ps.ID(), Handle: k.Handle}, nil
			}
		}
	}
	return keyRef{}, fmt.Errorf("%w: %s", manager.ErrKeyNotFound, arg)
}

// ready checks, before a command uses key k, that it can do so without
// asking for a PIN it may not ask for.
func (wm *walletManager) ready(k keyRef) error {
	p := k.Plugin
	if p == "" {
		p = wm.defaultPlugin()
	}
	return wm.needSession(p)
}

// userError turns the manager's errors into what the user should read: the
// session errors as they are, without the plugin's wrapping.
func userError(err error) error {
	for _, e := range []error{errNoSession, errSessionExpired} {
		if errors.Is(err, e) {
			return e
		}
	}
	return err
}

// amrOf is a Result's factors for JSON: never null.
func amrOf(r manager.Result) []string {
	if r.AMR == nil {
		return []string{}
	}
	return r.AMR
}
