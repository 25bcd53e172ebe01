package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/wsca/wsca/internal/config"
	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/remote"
)

// walletCommands are the wallet's commands. Each is a single verb (and
// "pin change"). Enrolment, login and PIN change speak R2PS to the remote
// WSCD through the r2ps plugin, with the unit's client keys and PIN session
// in the state file; the key commands run on the key manager
// (walletmgr.go) with its r2ps and softkey plugins. The operator commands
// are noun–verb pairs acting on a local store and device or on wscad's
// admin API.
var walletCommands = map[string]command{
	"enroll":       {"enrol this wallet: enroll --url URL --unit UNIT [--context hsm] [--code CODE] [--force]", walletEnroll},
	"login":        {"open a PIN session: login [--task TASK] [--duration D]", walletLogin},
	"logout":       {"forget the PIN session (it ends on the server at its expiry)", walletLogout},
	"status":       {"show the state file: server, unit, pinned server keys, session", walletStatus},
	"keygen":       {"generate a P-256 key: keygen [--plugin r2ps|softkey] (default r2ps when enrolled, else softkey)", walletKeygen},
	"sign":         {"sign: sign --kid KID [--digest HEX | --file F | data on stdin] [--verify]", walletSign},
	"ecdh":         {"agree a secret: ecdh --kid KID --peer HEX|BASE64 (SEC 1 point)", walletECDH},
	"keylist":      {"list the keys of every plugin", walletKeylist},
	"keys":         {"same as keylist (the operator's local commands are key list|generate|destroy)", walletKeylist},
	"keydelete":    {"delete a key: keydelete --kid KID (or keydelete -- KID)", walletKeydelete},
	"migrate":      {"move a key to another plugin: migrate --kid KID --to PLUGIN (or learn that re-enrolment is required)", walletMigrate},
	"plugins":      {"list the key manager's plugins and the properties of their keys", walletPlugins},
	"pin change":   {"change the PIN (the current PIN, then the new one twice)", walletPINChange},
	"demo r2ps":    {"enrol, log in, sign and verify against an in-process server: demo r2ps [--device-backend auto|softhsm|soft]", demoR2PS},
	"demo manager": {"the key manager: softkey, r2ps and secdsa plugins, selection by default and by policy, signatures verified, a refused requirement, migration, a restart with bindings kept: demo manager [--device-backend auto|softhsm|soft]", demoManager},
	"demo secdsa":  {"SECDSA: activation, an instruction with a consent text, its record verified offline and in the evidence log, a wrong PIN counted, the lock: demo secdsa [--device-backend auto|softhsm|soft]", demoSECDSA},
	"demo attest":  {"key and wallet instance attestations, proof of association, suspend, unsuspend, revoke and the status lists as a verifier sees them: demo attest [--device-backend auto|softhsm|soft]", demoAttest},
}

// Session errors, as the user should read them.
var (
	errNoSession      = errors.New("no session: run wsca login")
	errSessionExpired = errors.New("session expired: run wsca login")
)

// walletFlags are the flags every wallet command shares.
type walletFlags struct {
	fs       *flag.FlagSet
	state    string
	asJSON   bool
	pinStdin bool
	login    bool
}

func newWalletFlags(e env, name string, readsPIN bool) *walletFlags {
	f := &walletFlags{fs: flag.NewFlagSet("wsca "+name, flag.ContinueOnError)}
	f.fs.SetOutput(e.stderr)
	f.fs.StringVar(&f.state, "state", "", "wallet state `file`, also WSCA_STATE; it holds the wallet's private keys and session key (default $XDG_CONFIG_HOME/wsca/client.json or ~/.config/wsca/client.json)")
	f.fs.BoolVar(&f.asJSON, "json", false, "print JSON")
	if readsPIN {
		f.fs.BoolVar(&f.pinStdin, "pin-stdin", false, "read the PIN from stdin even when it is a terminal (one line per PIN)")
	}
	return f
}

// newKeyFlags are the flags of a command on the key manager: the wallet
// flags, --pin-stdin and --login.
func newKeyFlags(e env, name string) *walletFlags {
	f := newWalletFlags(e, name, true)
	f.fs.BoolVar(&f.login, "login", false, "when a plugin needs a PIN session and has none, ask for the PIN (default: fail with \"no session\")")
	return f
}

// pinHint is what a refused PIN means for a command: with --login, the
// PIN it asked for was wrong.
func (f *walletFlags) pinHint() string {
	if f.login {
		return wrongPIN
	}
	return ""
}

// parse parses args and checks the positional argument count. Of the
// environment only WSCA_STATE applies: a command's operands (a kid, a
// digest, a file) never come from it.
func (f *walletFlags) parse(e env, args []string, nargs int) ([]string, error) {
	stateVar := config.EnvName("state")
	onlyState := func(k string) (string, bool) {
		if k != stateVar {
			return "", false
		}
		return e.lookup(k)
	}
	pos, err := parseArgs(e, f.fs, args, nargs, onlyState)
	if err != nil {
		return nil, err
	}
	if f.state == "" {
		if f.state, err = defaultStatePath(e.lookup); err != nil {
			return nil, err
		}
	}
	return pos, nil
}

// load reads the state file of an enrolled wallet.
func (f *walletFlags) load() (*wallet, error) {
	w, err := loadWallet(f.state)
	if err != nil {
		return nil, err
	}
	if !w.enrolled {
		return nil, fmt.Errorf("the enrolment of unit %s in %s did not finish: run wsca enroll again", w.unit, f.state)
	}
	return w, nil
}

// missing reports a missing required flag as a usage error.
func (f *walletFlags) missing(e env, names ...string) error {
	for _, n := range names {
		if fl := f.fs.Lookup(n); fl != nil && fl.Value.String() == "" {
			fmt.Fprintf(e.stderr, "wsca: %s needs --%s\n", f.fs.Name(), n)
			return errUsage
		}
	}
	return nil
}

const wrongPIN = "wrong PIN; the server counts failed attempts"

func walletEnroll(ctx context.Context, e env, args []string) error {
	f := newWalletFlags(e, "enroll", true)
	url := f.fs.String("url", "", "server base `URL` (R2PS is at URL/r2ps)")
	unit := f.fs.String("unit", "", "wallet unit `id`, from the operator")
	secCtx := f.fs.String("context", "hsm", "security `context` of the PIN and keys")
	code := f.fs.String("code", "", "activation `code` (default: read as the first line of stdin, before the PIN)")
	force := f.fs.Bool("force", false, "replace a state file that holds an enrolled wallet (its keys are lost)")
	if _, err := f.parse(e, args, 0); err != nil {
		return err
	}
	if err := f.missing(e, "url", "unit"); err != nil {
		return err
	}
	old, err := loadWallet(f.state)
	switch {
	case err == nil && old.enrolled && !*force:
		return fmt.Errorf("%s already holds unit %s at %s: give another --state, or --force to replace it", f.state, old.unit, old.url)
	case err != nil && !errors.Is(err, errNoState) && !*force:
		return err
	}
	p := newPrompter(e, f.pinStdin)
	if *code == "" {
		if *code, err = p.line("activation code"); err != nil {
			return err
		}
	}
	pin, err := p.newPIN("new PIN")
	if err != nil {
		return err
	}
	defer clear(pin)
	w, err := newWallet(ctx, nil, f.state, *url, *unit, *secCtx)
	if err != nil {
		return err
	}
	// The keys are saved before the server knows them, so that a wallet
	// the server has enrolled is never lost to an unwritable state file.
	if err := w.save(); err != nil {
		return err
	}
	if err := enrolR2PS(ctx, w, *code, pin); err != nil {
		return err
	}
	if err := w.save(); err != nil {
		return fmt.Errorf("enrolled, but %w", err)
	}
	if old != nil && old.enrolled {
		// The replaced unit's keys are lost, and so are their bindings.
		if err := dropBindings(ctx, managerDir(f.state), remote.DefaultID); err != nil {
			return fmt.Errorf("enrolled, but the bindings of the replaced unit's keys remain: %w", err)
		}
	}
	csk, cak, err := w.kids()
	if err != nil {
		return err
	}
	out := map[string]string{"url": w.url, "unit": w.unit, "context": w.context, "state": w.path,
		"csk_kid": csk, "cak_kid": cak, "server_signing_kid": w.server.SigningKID, "server_agreement_kid": w.server.AgreementKID}
	return printResult(e, f.asJSON, out, func(out io.Writer) {
		fmt.Fprintf(out, "enrolled unit %s at %s (context %s)\n", w.unit, w.url, w.context)
		fmt.Fprintf(out, "pinned server signing key:   %s\npinned server agreement key: %s\n", w.server.SigningKID, w.server.AgreementKID)
		fmt.Fprintf(out, "state: %s (it holds this wallet's private keys: keep it private)\n", w.path)
	})
}

func walletLogin(ctx context.Context, e env, args []string) error {
	f := newWalletFlags(e, "login", true)
	task := f.fs.String("task", "", "bind the session: 2fa_update (one PIN change) or sign:<hex SHA-256>[,…] (only those signatures)")
	dur := f.fs.Duration("duration", 0, "session length to ask for (default: the server's)")
	if _, err := f.parse(e, args, 0); err != nil {
		return err
	}
	if *dur < 0 {
		return errors.New("--duration must not be negative")
	}
	w, err := f.load()
	if err != nil {
		return err
	}
	p, err := newR2PS(w)
	if err != nil {
		return err
	}
	// The plugin forgets the session it replaces before it asks for the
	// PIN; a login that fails puts the earlier session back, as if it had
	// never been tried.
	sessions := stateSessions{path: w.path}
	before, had, err := sessions.Load(ctx)
	if err != nil {
		return err
	}
	defer clear(before.Key)
	auth := &cliAuth{prompt: newPrompter(e, f.pinStdin), login: true}
	s, err := p.Login(ctx, manager.Env{Auth: auth}, *task, *dur)
	if err != nil {
		if had {
			if serr := sessions.Save(ctx, before); serr != nil {
				err = errors.Join(err, fmt.Errorf("restoring the earlier session: %w", serr))
			}
		}
		return explain("login", err, wrongPIN)
	}
	clear(s.Key)
	out := map[string]any{"unit": w.unit, "session_id": s.ID, "task": s.Task, "expires_at": s.ExpiresAt.UTC(), "plugin": p.ID()}
	return printResult(e, f.asJSON, out, func(out io.Writer) {
		fmt.Fprintf(out, "logged in to unit %s until %s", w.unit, s.ExpiresAt.Format(time.RFC3339))
		if s.Task != "" {
			fmt.Fprintf(out, " (task %s)", s.Task)
		}
		fmt.Fprintln(out)
	})
}

func walletLogout(ctx context.Context, e env, args []string) error {
	f := newWalletFlags(e, "logout", false)
	if _, err := f.parse(e, args, 0); err != nil {
		return err
	}
	w, err := loadWallet(f.state)
	if err != nil {
		return err
	}
	had := w.session != nil
	w.forgetSession()
	// The r2ps plugin's Logout would forget the session the same way, but
	// it cannot report a state file it failed to write.
	if err := (stateSessions{path: w.path}).Forget(ctx); err != nil {
		return err
	}
	return printResult(e, f.asJSON, map[string]bool{"logged_out": had}, func(out io.Writer) {
		if had {
			fmt.Fprintln(out, "session forgotten")
		} else {
			fmt.Fprintln(out, "no session")
		}
	})
}

func walletStatus(ctx context.Context, e env, args []string) error {
	f := newWalletFlags(e, "status", false)
	if _, err := f.parse(e, args, 0); err != nil {
		return err
	}
	w, err := loadWallet(f.state)
	if err != nil {
		return err
	}
	csk, cak, err := w.kids()
	if err != nil {
		return err
	}
	out := map[string]any{"state": w.path, "manager_dir": managerDir(w.path), "url": w.url, "unit": w.unit, "context": w.context, "enrolled": w.enrolled,
		"csk_kid": csk, "cak_kid": cak, "server_signing_kid": w.server.SigningKID, "server_agreement_kid": w.server.AgreementKID}
	sess := "none"
	if s := w.session; s != nil {
		out["session"] = map[string]any{"id": s.id, "task": s.task, "expires_at": s.expiresAt.UTC(), "expired": !time.Now().Before(s.expiresAt)}
		sess = "until " + s.expiresAt.Format(time.RFC3339)
		if !time.Now().Before(s.expiresAt) {
			sess = "expired at " + s.expiresAt.Format(time.RFC3339)
		}
		if s.task != "" {
			sess += " (task " + s.task + ")"
		}
	}
	return printResult(e, f.asJSON, out, func(o io.Writer) {
		fmt.Fprintf(o, "state:    %s\nserver:   %s\nunit:     %s\ncontext:  %s\nenrolled: %v\n", w.path, w.url, w.unit, w.context, w.enrolled)
		fmt.Fprintf(o, "csk:      %s\ncak:      %s\nserver signing key:   %s\nserver agreement key: %s\nsession:  %s\n",
			csk, cak, w.server.SigningKID, w.server.AgreementKID, sess)
		fmt.Fprintf(o, "manager:  %s (key bindings, softkey keys and KEK)\n", managerDir(w.path))
	})
}

func walletPINChange(ctx context.Context, e env, args []string) error {
	f := newWalletFlags(e, "pin change", true)
	if _, err := f.parse(e, args, 0); err != nil {
		return err
	}
	w, err := f.load()
	if err != nil {
		return err
	}
	// Every PIN is read before the server is asked anything, so that a
	// typo in the new PIN costs no attempt; the plugin gets them through
	// the callback.
	p := newPrompter(e, f.pinStdin)
	current, err := p.pin("current PIN")
	if err != nil {
		return err
	}
	next, err := p.newPIN("new PIN")
	if err != nil {
		clear(current)
		return err
	}
	auth := &cliAuth{preset: map[manager.Reason][]byte{manager.ReasonChangeOld: current, manager.ReasonChangeNew: next}}
	defer auth.wipe()
	r, err := newR2PS(w)
	if err != nil {
		return err
	}
	if err := r.ChangePIN(ctx, manager.Env{Auth: auth}); err != nil {
		// The new PIN is asked for once the current one has opened the
		// PIN-change session.
		if auth.asked[manager.ReasonChangeNew] == 0 {
			return explain("pin change: login with the current PIN", err, wrongPIN)
		}
		return explain("pin change", err, "the PIN-change session is gone")
	}
	return printResult(e, f.asJSON, map[string]any{"unit": w.unit, "pin_changed": true}, func(out io.Writer) {
		fmt.Fprintf(out, "PIN of unit %s changed\n", w.unit)
	})
}
