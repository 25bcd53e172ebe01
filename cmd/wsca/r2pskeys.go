package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/ecp256"
	"github.com/wsca/wsca/manager"
)

// walletKeyRow is a key as the key commands print it: the manager's kid
// (RFC 7638 thumbprint), the plugin that holds it and the plugin's own
// name for it (for r2ps, the server's kid).
type walletKeyRow struct {
	KID     manager.KID `json:"kid"`
	Plugin  string      `json:"plugin"`
	Handle  string      `json:"handle"`
	Created time.Time   `json:"created,omitzero"`
	JWK     jwk         `json:"public_key"`
}

func keyRowOf(k manager.Key) (walletKeyRow, error) {
	j, err := toJWK(k.Public, device.KID(k.KID))
	if err != nil {
		return walletKeyRow{}, err
	}
	created := k.Created
	if !created.IsZero() {
		created = created.UTC()
	}
	return walletKeyRow{KID: k.KID, Plugin: k.Plugin, Handle: k.Handle, Created: created, JWK: j}, nil
}

func walletKeygen(ctx context.Context, e env, args []string) error {
	f := newKeyFlags(e, "keygen")
	plugin := f.fs.String("plugin", "", "`plugin` to make the key on: r2ps or softkey (default: r2ps when the state file holds an enrolled wallet, else softkey)")
	if _, err := f.parse(e, args, 0); err != nil {
		return err
	}
	wm, err := f.openManager(ctx, e)
	if err != nil {
		return err
	}
	defer wm.close()
	id := *plugin
	if id == "" {
		id = wm.defaultPlugin()
	}
	if _, ok := wm.plugin(id); !ok {
		return fmt.Errorf("keygen: no plugin %q here (wsca plugins lists them; r2ps needs wsca enroll)", id)
	}
	if err := wm.needSession(id); err != nil {
		return err
	}
	k, res, err := wm.m.Generate(ctx, manager.GenerateRequest{Plugin: id})
	if err != nil {
		return explain("keygen", err, f.pinHint())
	}
	row, err := keyRowOf(k)
	if err != nil {
		return err
	}
	out := struct {
		walletKeyRow
		AMR []string `json:"amr"`
	}{row, amrOf(res)}
	return printResult(e, f.asJSON, out, func(o io.Writer) { fmt.Fprintf(o, "%s %s %s\n", k.KID, k.Plugin, k.Handle) })
}

func walletSign(ctx context.Context, e env, args []string) error {
	f := newKeyFlags(e, "sign")
	kid := f.fs.String("kid", "", "`kid` of the key to sign with: the kid (RFC 7638 thumbprint) or the plugin's handle")
	digestHex := f.fs.String("digest", "", "SHA-256 `digest` to sign, in hex")
	file := f.fs.String("file", "", "`file` to hash with SHA-256 and sign")
	verify := f.fs.Bool("verify", false, "verify the signature with the key's public key from the key manager")
	if _, err := f.parse(e, args, 0); err != nil {
		return err
	}
	if err := f.missing(e, "kid"); err != nil {
		return err
	}
	if *digestHex != "" && *file != "" {
		fmt.Fprintln(e.stderr, "wsca: sign takes --digest or --file, not both")
		return errUsage
	}
	if _, isTerm := newPrompter(e, f.pinStdin).terminal(); f.login && !isTerm && *digestHex == "" && *file == "" {
		return errors.New("sign --login reads the PIN from stdin: give --digest or --file")
	}
	digest, err := toBeSigned(e, *digestHex, *file)
	if err != nil {
		return err
	}
	wm, k, err := f.openKey(ctx, e, "sign", *kid)
	if err != nil {
		return err
	}
	defer wm.close()
	raw, res, err := wm.m.Sign(ctx, k.KID, digest)
	if err != nil {
		return explain("sign", err, f.pinHint())
	}
	sig, err := ecp256.RawToDER(raw)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	if *verify {
		pub, _, err := wm.m.PublicKey(ctx, k.KID)
		if err != nil {
			return explain("sign: the key's public key, to verify", err, f.pinHint())
		}
		if !ecdsa.VerifyASN1(pub, digest, sig) {
			return fmt.Errorf("sign: the signature does not verify with the public key of %s", k.KID)
		}
	}
	out := map[string]any{"kid": k.KID, "plugin": res.Plugin, "digest": hex.EncodeToString(digest),
		"signature": base64.StdEncoding.EncodeToString(sig), "amr": amrOf(res)}
	if k.Handle != "" {
		out["handle"] = k.Handle
	}
	if *verify {
		out["verified"] = true
	}
	return printResult(e, f.asJSON, out, func(o io.Writer) {
		fmt.Fprintln(o, out["signature"])
		if *verify {
			fmt.Fprintf(e.stderr, "signature verified with the public key of %s\n", k.KID)
		}
	})
}

// toBeSigned is the digest to sign: given in hex, or SHA-256 of a file or
// of stdin.
func toBeSigned(e env, digestHex, file string) ([]byte, error) {
	if digestHex != "" {
		d, err := hex.DecodeString(digestHex)
		if err != nil || len(d) != sha256.Size {
			return nil, errors.New("--digest: want 64 hex digits (a SHA-256 digest)")
		}
		return d, nil
	}
	in := e.stdin
	if file != "" {
		fh, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		in = fh
	} else if _, isTerm := (prompter{in: e.stdin}).terminal(); isTerm {
		return nil, errors.New("sign: give --digest or --file, or pipe the data to sign into stdin")
	}
	h := sha256.New()
	if _, err := io.Copy(h, in); err != nil {
		return nil, fmt.Errorf("sign: reading the data: %w", err)
	}
	return h.Sum(nil), nil
}

func walletECDH(ctx context.Context, e env, args []string) error {
	f := newKeyFlags(e, "ecdh")
	kid := f.fs.String("kid", "", "`kid` of the key to agree with: the kid (RFC 7638 thumbprint) or the plugin's handle")
	peerText := f.fs.String("peer", "", "peer's P-256 public `point` (SEC 1, compressed or not) in hex or base64")
	if _, err := f.parse(e, args, 0); err != nil {
		return err
	}
	if err := f.missing(e, "kid", "peer"); err != nil {
		return err
	}
	b, err := parsePeerPoint(*peerText)
	if err != nil {
		return err
	}
	peer, err := ecp256.ParsePoint(b)
	if err != nil {
		return errors.New("--peer: not a point on P-256")
	}
	wm, k, err := f.openKey(ctx, e, "ecdh", *kid)
	if err != nil {
		return err
	}
	defer wm.close()
	z, res, err := wm.m.ECDH(ctx, k.KID, peer)
	if err != nil {
		return explain("ecdh", err, f.pinHint())
	}
	defer clear(z)
	secret := base64.StdEncoding.EncodeToString(z)
	out := map[string]any{"kid": k.KID, "plugin": res.Plugin, "shared_secret": secret, "amr": amrOf(res)}
	if k.Handle != "" {
		out["handle"] = k.Handle
	}
	return printResult(e, f.asJSON, out, func(o io.Writer) { fmt.Fprintln(o, secret) })
}

// parsePeerPoint reads a SEC 1 point in hex or in any base64 flavour. The
// server checks that it is on the curve; this checks only its shape.
func parsePeerPoint(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err = enc.DecodeString(s); err == nil {
				break
			}
		}
	}
	switch {
	case err != nil:
		return nil, errors.New("--peer: not hex or base64")
	case len(b) == 65 && b[0] == 4, len(b) == 33 && (b[0] == 2 || b[0] == 3):
		return b, nil
	}
	return nil, fmt.Errorf("--peer: %d bytes are no SEC 1 P-256 point (want 65 starting 04, or 33 starting 02 or 03)", len(b))
}

func walletKeylist(ctx context.Context, e env, args []string) error {
	f := newKeyFlags(e, "keylist")
	if _, err := f.parse(e, args, 0); err != nil {
		return err
	}
	wm, err := f.openManager(ctx, e)
	if err != nil {
		return err
	}
	defer wm.close()
	keys, err := wm.m.List(ctx)
	var le *manager.ListError
	switch {
	case errors.As(err, &le):
		ids := make([]string, 0, len(le.Failed))
		for id := range le.Failed {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			op := "keylist: plugin " + id
			msg := explain(op, le.Failed[id], f.pinHint())
			if u := userError(le.Failed[id]); errors.Is(u, errNoSession) || errors.Is(u, errSessionExpired) {
				msg = fmt.Errorf("%s: %w", op, u)
			}
			fmt.Fprintf(e.stderr, "wsca: warning: %v\n", msg)
		}
		if len(le.Failed) == len(wm.plugins()) {
			return fmt.Errorf("keylist: no plugin could list its keys (%s)", strings.Join(ids, ", "))
		}
	case err != nil:
		return explain("keylist", err, f.pinHint())
	}
	rows := []walletKeyRow{}
	for _, k := range keys {
		r, err := keyRowOf(k)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	return printResult(e, f.asJSON, rows, func(o io.Writer) {
		for _, r := range rows {
			created := "-"
			if !r.Created.IsZero() {
				created = r.Created.Format(time.RFC3339)
			}
			fmt.Fprintf(o, "%s %s %s %s\n", r.KID, r.Plugin, r.Handle, created)
		}
	})
}

func walletKeydelete(ctx context.Context, e env, args []string) error {
	f := newKeyFlags(e, "keydelete")
	kid := f.fs.String("kid", "", "`kid` of the key to delete (or as the argument; a kid may begin with '-', so give it with --kid or after --)")
	nargs := 1
	for _, a := range args {
		if a == "--kid" || a == "-kid" || strings.HasPrefix(a, "--kid=") || strings.HasPrefix(a, "-kid=") {
			nargs = 0
		}
	}
	pos, err := f.parse(e, args, nargs)
	if err != nil {
		return err
	}
	if nargs == 0 {
		pos = []string{*kid}
	}
	wm, k, err := f.openKey(ctx, e, "keydelete", pos[0])
	if err != nil {
		return err
	}
	defer wm.close()
	res, err := wm.m.Delete(ctx, k.KID)
	if err != nil {
		return explain("keydelete", err, f.pinHint())
	}
	out := map[string]any{"kid": k.KID, "plugin": res.Plugin, "deleted": true, "amr": amrOf(res)}
	if k.Handle != "" {
		out["handle"] = k.Handle
	}
	return printResult(e, f.asJSON, out, func(o io.Writer) {
		fmt.Fprintf(o, "key %s deleted\n", pos[0])
	})
}

func walletMigrate(ctx context.Context, e env, args []string) error {
	f := newKeyFlags(e, "migrate")
	kid := f.fs.String("kid", "", "`kid` of the key to move: the kid (RFC 7638 thumbprint) or the plugin's handle")
	to := f.fs.String("to", "", "`plugin` to move the key to")
	if _, err := f.parse(e, args, 0); err != nil {
		return err
	}
	if err := f.missing(e, "kid", "to"); err != nil {
		return err
	}
	wm, err := f.openManager(ctx, e)
	if err != nil {
		return err
	}
	defer wm.close()
	if _, ok := wm.plugin(*to); !ok {
		return fmt.Errorf("migrate: no plugin %q here (wsca plugins lists them)", *to)
	}
	k, err := wm.find(ctx, *kid)
	if err != nil {
		return explain("migrate", err, f.pinHint())
	}
	mr, res, err := wm.m.Migrate(ctx, k.KID, *to)
	if err != nil {
		return explain("migrate", err, f.pinHint())
	}
	out := map[string]any{"kid": k.KID, "to": *to, "migrated": mr.Migrated,
		"re_enrollment_required": mr.ReEnrollmentRequired, "amr": amrOf(res)}
	if k.Plugin != "" {
		out["from"] = k.Plugin
	}
	if mr.Migrated {
		out["handle"] = mr.NewKey.Handle
	}
	return printResult(e, f.asJSON, out, func(o io.Writer) {
		if mr.Migrated {
			fmt.Fprintf(o, "migrated %s to %s (handle %s)\n", k.KID, *to, mr.NewKey.Handle)
			return
		}
		fmt.Fprintf(o, "re-enrollment required: %s cannot take key %s in; have the credential issued again to a key made there (wsca keygen --plugin %s)\n", *to, k.KID, *to)
	})
}

// pluginRow describes a plugin for wsca plugins.
type pluginRow struct {
	ID          string             `json:"id"`
	DisplayName string             `json:"display_name"`
	Default     bool               `json:"default"`
	Properties  manager.Properties `json:"properties"`
}

func walletPlugins(ctx context.Context, e env, args []string) error {
	f := newKeyFlags(e, "plugins")
	if _, err := f.parse(e, args, 0); err != nil {
		return err
	}
	wm, err := f.openManager(ctx, e)
	if err != nil {
		return err
	}
	defer wm.close()
	rows := []pluginRow{}
	for _, p := range wm.plugins() {
		rows = append(rows, pluginRow{ID: p.ID(), DisplayName: p.DisplayName(), Default: p.ID() == wm.defaultPlugin(), Properties: p.NewKeyProperties()})
	}
	return printResult(e, f.asJSON, rows, func(o io.Writer) {
		for _, r := range rows {
			def := ""
			if r.Default {
				def = " (default for keygen)"
			}
			p := r.Properties
			uv := strings.Join(p.UserVerification, ",")
			if uv == "" {
				uv = "none"
			}
			fmt.Fprintf(o, "%s: %s%s\n  key_storage=%s exportable=%v user_verification=%s", r.ID, r.DisplayName, def, p.Storage, p.Exportable, uv)
			if p.KeyStorageAttackPotential != "" || p.UserAuthAttackPotential != "" {
				fmt.Fprintf(o, " key_storage_attack_potential=%s user_authentication_attack_potential=%s", p.KeyStorageAttackPotential, p.UserAuthAttackPotential)
			}
			fmt.Fprintln(o)
		}
	})
}

// openKey opens the manager and finds the key a --kid names, ready for
// use (its plugin's session checked); the caller closes the manager.
func (f *walletFlags) openKey(ctx context.Context, e env, op, arg string) (*walletManager, keyRef, error) {
	wm, err := f.openManager(ctx, e)
	if err != nil {
		return nil, keyRef{}, err
	}
	k, err := wm.find(ctx, arg)
	if err != nil {
		wm.close()
		return nil, keyRef{}, explain(op, err, f.pinHint())
	}
	if err := wm.ready(k); err != nil {
		wm.close()
		return nil, keyRef{}, err
	}
	return wm, k, nil
}
