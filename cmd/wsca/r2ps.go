package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/wsca/wsca/internal/config"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
)

// walletCommands are the wallet's commands. Each is a single verb (and
// "pin change") and acts through R2PS on a remote WSCD, with its keys and
// PIN session in the state file; the operator commands are noun–verb pairs
// acting on a local store and device or on wscad's admin API.
var walletCommands = map[string]command{
	"enroll":       {"enrol this wallet: enroll --url URL --unit UNIT [--context hsm] [--code CODE] [--force]", walletEnroll},
	"login":        {"open a PIN session: login [--task TASK] [--duration D]", walletLogin},
	"logout":       {"forget the PIN session (it ends on the server at its expiry)", walletLogout},
	"status":       {"show the state file: server, unit, pinned server keys, session", walletStatus},
	"keygen":       {"generate a P-256 key on the WSCD", walletKeygen},
	"sign":         {"sign: sign --kid KID [--digest HEX | --file F | data on stdin] [--verify]", walletSign},
	"ecdh":         {"agree a secret: ecdh --kid KID --peer HEX|BASE64 (SEC 1 point)", walletECDH},
	"keylist":      {"list the unit's keys on the WSCD", walletKeylist},
	"keys":         {"same as keylist (the operator's local commands are key list|generate|destroy)", walletKeylist},
	"keydelete":    {"delete a key on the WSCD: keydelete KID", walletKeydelete},
	"pin change":   {"change the PIN (the current PIN, then the new one twice)", walletPINChange},
	"demo r2ps":    {"enrol, log in, sign and verify against an in-process server: demo r2ps [--device-backend auto|softhsm|soft]", demoR2PS},
	"demo manager": {"the key manager: softkey and r2ps plugins, selection by default and by policy, signatures verified, a refused requirement, migration, a restart with bindings kept: demo manager [--device-backend auto|softhsm|soft]", demoManager},
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
	if err := w.enrol(ctx, *code, pin); err != nil {
		return err
	}
	if err := w.save(); err != nil {
		return fmt.Errorf("enrolled, but %w", err)
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
	pin, err := newPrompter(e, f.pinStdin).pin("PIN")
	if err != nil {
		return err
	}
	defer clear(pin)
	c, err := w.client()
	if err != nil {
		return err
	}
	s, err := c.Login(ctx, pin, client.LoginOptions{Task: *task, Duration: *dur})
	if err != nil {
		return explain("login", err, wrongPIN)
	}
	w.setSession(s)
	clear(s.Key)
	defer w.forgetSession() // clears the session key in memory once saved
	if err := w.save(); err != nil {
		return err
	}
	out := map[string]any{"unit": w.unit, "session_id": s.ID, "task": s.Task, "expires_at": s.ExpiresAt.UTC()}
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
	if had {
		w.forgetSession()
		if err := w.save(); err != nil {
			return err
		}
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
	out := map[string]any{"state": w.path, "url": w.url, "unit": w.unit, "context": w.context, "enrolled": w.enrolled,
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
	// typo in the new PIN costs no attempt.
	p := newPrompter(e, f.pinStdin)
	current, err := p.pin("current PIN")
	if err != nil {
		return err
	}
	defer clear(current)
	next, err := p.newPIN("new PIN")
	if err != nil {
		return err
	}
	defer clear(next)
	c, err := w.client()
	if err != nil {
		return err
	}
	s, err := c.Login(ctx, current, client.LoginOptions{Task: r2ps.Task2FAUpdate})
	if err != nil {
		return explain("pin change: login with the current PIN", err, wrongPIN)
	}
	defer clear(s.Key)
	if err := s.ChangePIN(ctx, next); err != nil {
		return explain("pin change", err, "the PIN-change session is gone")
	}
	return printResult(e, f.asJSON, map[string]any{"unit": w.unit, "pin_changed": true}, func(out io.Writer) {
		fmt.Fprintf(out, "PIN of unit %s changed\n", w.unit)
	})
}
