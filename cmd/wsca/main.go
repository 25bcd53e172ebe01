// Command wsca is the wsca command-line tool. The wallet commands run on
// the key manager (plugins r2ps: a remote WSCD over R2PS, and softkey),
// with the wallet's keys, pinned server keys and PIN session in a state
// file (--state, WSCA_STATE; default $XDG_CONFIG_HOME/wsca/client.json or
// ~/.config/wsca/client.json, mode 0600: it holds private keys) and the
// manager's bindings and softkey keys in manager/ beside it
// (docs/manager.md):
//
//	wsca enroll --url URL --unit UNIT [--context hsm] [--code CODE] [--force]
//	wsca login [--task TASK] [--duration D]
//	wsca logout
//	wsca status
//	wsca keygen [--plugin r2ps|softkey]
//	wsca sign --kid KID [--digest HEX | --file F | data on stdin] [--verify]
//	wsca ecdh --kid KID --peer HEX|BASE64
//	wsca keylist
//	wsca keydelete KID
//	wsca migrate --kid KID --to PLUGIN
//	wsca plugins
//	wsca pin change
//	wsca demo r2ps [--device-backend auto|softhsm|soft]
//	wsca demo attest [--device-backend auto|softhsm|soft]
//	wsca demo secdsa [--device-backend auto|softhsm|soft]
//
// PINs are read from the terminal without echo, or one line each from
// stdin when it is not a terminal (or with --pin-stdin); never from argv.
//
// The operator commands act on a local device and store:
//
//	wsca device init [--device-backend auto|softhsm|soft]
//	wsca device info
//	wsca unit create UNIT
//	wsca unit list
//	wsca key generate --unit UNIT
//	wsca key list --unit UNIT [--on-device]
//	wsca key destroy --unit UNIT KID
//	wsca version
//	wsca admin unit create|code|show|list|suspend|resume|revoke|unlock|attempts|csk|secdsa-reset  (over wscad's admin API)
//	wsca admin keys rewrap|migrate|wrapping-keys  (over wscad's admin API)
//
// Each takes --data-dir, --store and --device like wscad (and the same
// WSCA_* variables). Every command takes --json for machine-readable
// output.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/wsca/wsca/internal/config"
)

// version is set at build time: the Makefile's build passes
// -ldflags "-X main.version=$(git describe --tags --always --dirty)".
// Empty, config.Version falls back to the build info, then "dev".
var version string

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv))
}

// env is what a command runs with. stdin is where PINs come from when it
// is not a terminal.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	lookup         func(string) (string, bool)
}

type command struct {
	usage string
	run   func(ctx context.Context, e env, args []string) error
}

var commands = map[string]command{
	"device init":  {"initialise the data directory's device (SoftHSM token or soft keystore)", deviceInit},
	"device info":  {"describe the configured device and check that it answers", deviceInfo},
	"unit create":  {"register a wallet unit in the local store: unit create UNIT", unitsCreate},
	"unit list":    {"list the local store's wallet units", unitsList},
	"key generate": {"generate a key for a unit on the local device: key generate --unit UNIT", keysGenerate},
	"key list":     {"list a unit's keys: key list --unit UNIT [--on-device]", keysList},
	"key destroy":  {"destroy a unit's key: key destroy --unit UNIT KID", keysDestroy},
	"version":      {"print the version", printVersion},
	"verify-log":   {"verify the evidence log offline: verify-log --key K --checkpoint F [--leaf F --inclusion F] [--old-checkpoint F --consistency F], or --server URL [--index N --leaf F]", verifyLog},

	"admin unit create":        {"create a wallet unit and its activation code (admin API)", adminUnitCreate},
	"admin unit code":          {"issue a new activation or PIN-reset code: admin unit code UNIT [--purpose pin_reset]", adminUnitCode},
	"admin unit show":          {"show a unit: admin unit show UNIT", adminUnitShow},
	"admin unit list":          {"list units", adminUnitList},
	"admin unit suspend":       {"suspend a unit (ends its sessions)", adminUnitState("suspended")},
	"admin unit resume":        {"make a suspended unit active again", adminUnitState("active")},
	"admin unit revoke":        {"revoke a unit for good", adminUnitState("revoked")},
	"admin unit destroy":       {"destroy a unit for good (revoke, destroy its keys, erase its records): admin unit destroy UNIT --yes", adminUnitDestroy},
	"admin unit unlock":        {"unlock a unit's PIN after too many failures: admin unit unlock UNIT [--context hsm]", adminUnitUnlock},
	"admin unit attempts":      {"show a unit's PIN attempt counter", adminUnitAttempts},
	"admin unit secdsa-reset":  {"reset a unit's SECDSA binding (destroys its key; the wallet activates again): admin unit secdsa-reset UNIT --yes", adminUnitSECDSAReset},
	"admin unit csk":           {"bind a go-r2ps-service wallet's signing key to a unit (compat profile): admin unit csk UNIT --key FILE (PEM or JWK)", adminUnitCSK},
	"admin keys rewrap":        {"re-wrap every key under the current wrapping key, batch by batch (admin API): admin keys rewrap [--batch N]", adminKeysRun("rewrap")},
	"admin keys migrate":       {"move token-object keys the token lets be wrapped into wrapped storage: admin keys migrate [--batch N]", adminKeysRun("migrate")},
	"admin keys wrapping-keys": {"which wrapping keys blobs name: admin keys wrapping-keys [--delete-unused --yes]", adminWrappingKeys},
	"verify-record":            {"check a SECDSA transaction record offline: verify-record --record F --cert F --provider JWKS|PEM [--kid KID]", verifyRecordCmd},
	"bench":                    {"load a wscad over R2PS: bench --url URL [--admin-token-file F | --unit U --code C] [--op sign|ecdh|login|list] [--concurrency C] [--requests N | --duration D]", benchCmd},
}

// aliases are earlier names of operator commands: local commands now use
// the nouns of the admin API's (unit, key), without the admin prefix.
// They work and are not listed.
var aliases = map[string]string{
	"units create":  "unit create",
	"units list":    "unit list",
	"keys generate": "key generate",
	"keys list":     "key list",
	"keys destroy":  "key destroy",
}

// errUsage is a usage error; the message has been printed.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	e := env{stdin: stdin, stdout: stdout, stderr: stderr, lookup: lookup}
	for n := 3; n >= 1; n-- {
		if len(args) < n {
			continue
		}
		name := strings.Join(args[:n], " ")
		if a, ok := aliases[name]; ok {
			name = a
		}
		c, ok := walletCommands[name]
		if !ok {
			c, ok = commands[name]
		}
		if ok {
			err := c.run(ctx, e, args[n:])
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				return 2
			}
			fmt.Fprintf(stderr, "wsca: error: %v\n", err)
			return 1
		}
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		return 0
	}
	if args[0] == "--version" {
		return run(ctx, []string{"version"}, stdin, stdout, stderr, lookup)
	}
	fmt.Fprintf(stderr, "wsca: unknown command %q\n\n", strings.Join(args[:min(len(args), 3)], " "))
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: wsca COMMAND [flags]")
	fmt.Fprintln(w, "\nwallet commands (key manager: r2ps, a remote WSCD, and softkey; session in the state file --state,")
	fmt.Fprintln(w, "default $XDG_CONFIG_HOME/wsca/client.json or ~/.config/wsca/client.json, which holds private keys):")
	listCommands(w, walletCommands)
	fmt.Fprintln(w, "\noperator commands (a local store and device, or wscad's admin API):")
	listCommands(w, commands)
	fmt.Fprintln(w, "\nEvery command takes -h for its flags and --json for JSON output.")
	fmt.Fprintln(w, "PINs are read from the terminal without echo, else one line each from stdin (--pin-stdin forces stdin).")
}

func listCommands(w io.Writer, table map[string]command) {
	names := make([]string, 0, len(table))
	for n := range table {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-20s %s\n", n, table[n].usage)
	}
}

func printVersion(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("wsca version", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseArgs(e, fs, args, 0, nil); err != nil {
		return err
	}
	if *asJSON {
		return printResult(e, true, map[string]string{"version": config.Version(version)}, nil)
	}
	fmt.Fprintln(e.stdout, "wsca", config.Version(version))
	return nil
}

// printResult writes v as JSON, or text through the given function.
func printResult(e env, asJSON bool, v any, text func(io.Writer)) error {
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(e.stdout)
	return nil
}

// parseArgs parses a command's flags (anywhere among its operands), sets
// the flags not given from the WSCA_* variables lookup returns (nil: none),
// and checks there are nargs operands. Usage problems have been printed
// when it returns errUsage.
func parseArgs(e env, fs *flag.FlagSet, args []string, nargs int, lookup func(string) (string, bool)) ([]string, error) {
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, errUsage
	}
	if lookup != nil {
		if err := config.Apply(fs, lookup, nil); err != nil {
			return nil, err
		}
	}
	if len(pos) != nargs {
		fmt.Fprintf(e.stderr, "wsca: %s takes %d argument(s)\n", fs.Name(), nargs)
		return nil, errUsage
	}
	return pos, nil
}

// parseInterspersed parses flags anywhere among the positional arguments
// ("wsca key destroy KID --unit U" as well as "--unit U KID"); "--" ends
// flag parsing.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
