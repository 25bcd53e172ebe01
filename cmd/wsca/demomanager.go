package main

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"path/filepath"
	"strings"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/remote"
	"github.com/wsca/wsca/manager/secdsakey"
	"github.com/wsca/wsca/manager/softkey"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/secdsa"
)

// managerDemo plays the key manager against an in-process server: two
// plugins, generation by default and by requirement, signatures verified,
// migration, a restart with the bindings kept.
type managerDemo struct {
	*demo
	dir     string
	kek     []byte
	client  *client.Client
	m       *manager.Manager
	soft    manager.Key
	remote  manager.Key
	sec     manager.Key
	binder  secdsa.PINBinder // the phone's secure hardware; in memory here
	pinAsks int
}

func demoManager(ctx context.Context, e env, args []string) error {
	d := &managerDemo{demo: &demo{}}
	return runDemo(ctx, e, args, "manager", "key manager", d.demo, d.run)
}

// RequestPIN is the demo's wallet app: it answers with the demo PIN and
// counts how often a plugin asked.
func (d *managerDemo) RequestPIN(_ context.Context, r manager.PINRequest) (*manager.Secret, error) {
	d.pinAsks++
	switch r.Plugin {
	case remote.DefaultID, secdsakey.DefaultID:
		return manager.NewSecret([]byte(string(demoPIN))), nil
	}
	return nil, manager.ErrAuthCancelled
}

func (d *managerDemo) RequestWebAuthnAssertion(context.Context, manager.WebAuthnRequest) ([]byte, error) {
	return nil, manager.ErrUnsupported
}

func (d *managerDemo) run(ctx context.Context, dir, backend string, log *slog.Logger) error {
	d.dir = filepath.Join(dir, "wallet")
	describe := func(srv *localServer) string {
		return fmt.Sprintf("in-process wscad at %s (%s device, assurance %q) for the r2ps plugin", srv.url, srv.device.Backend, srv.device.Assurance)
	}
	return d.play(ctx, dir, backend, log, describe, []demoStepFunc{
		{"operator", d.operator},
		{"manager", d.open},
		{"enrol", d.enrol},
		{"secdsa", d.activateSECDSA},
		{"softkey", d.softkey},
		{"r2ps by policy", d.byPolicy},
		{"sign and verify", d.signBoth},
		{"requirement refused", d.refused},
		{"migrate", d.migrate},
		{"restart", d.restart},
		{"list", d.list},
	})
}

// plugins opens the softkey and r2ps plugins over the wallet's directory.
func (d *managerDemo) plugins() (*softkey.Plugin, *remote.Plugin, error) {
	sk, err := softkey.Open(filepath.Join(d.dir, "softkey"), d.kek)
	if err != nil {
		return nil, nil, err
	}
	rp, err := remote.New(remote.Config{Client: d.client, DisplayName: "demo Wallet Provider", Journal: filepath.Join(d.dir, "r2ps-journal")})
	if err != nil {
		return nil, nil, err
	}
	return sk, rp, nil
}

func (d *managerDemo) openManager(ctx context.Context) (*remote.Plugin, error) {
	sk, rp, err := d.plugins()
	if err != nil {
		return nil, err
	}
	st, err := manager.OpenDirStore(filepath.Join(d.dir, "bindings"))
	if err != nil {
		return nil, err
	}
	all := []manager.Plugin{sk, rp}
	if d.binder != nil {
		sp, err := d.secdsaPlugin()
		if err != nil {
			return nil, err
		}
		all = append(all, sp)
	}
	d.m, err = manager.New(ctx, manager.Config{Store: st, Default: softkey.ID, Auth: d}, all...)
	if err != nil {
		return nil, err
	}
	// What the server states of its device, once the unit is enrolled.
	if d.code == "" {
		if err := rp.Refresh(ctx, manager.Env{Auth: d}); err != nil {
			return nil, err
		}
	}
	return rp, nil
}

func (d *managerDemo) open(ctx context.Context) (string, error) {
	d.kek = make([]byte, softkey.KEKSize) // a wallet app keeps it in the platform keystore
	if _, err := rand.Read(d.kek); err != nil {
		return "", err
	}
	w, err := newWallet(ctx, d.hc, "", d.srv.url, d.unit, "hsm")
	if err != nil {
		return "", err
	}
	if d.client, err = w.client(); err != nil {
		return "", err
	}
	if _, err := d.openManager(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("plugins %s (default softkey); bindings, keystore and journal in the wallet's directory", strings.Join(d.m.Plugins(), ", ")), nil
}

func (d *managerDemo) enrol(ctx context.Context) (string, error) {
	_, rp, err := d.plugins()
	if err != nil {
		return "", err
	}
	if err := rp.Enrol(ctx, d.code, manager.Env{Auth: d}); err != nil {
		return "", err
	}
	d.code = "" // used
	if _, err := d.openManager(ctx); err != nil {
		return "", err
	}
	return "the r2ps plugin enrolled the unit; the PIN came from the app's callback, which was told the plugin asking", nil
}

// secdsaPlugin opens the SECDSA plugin over the wallet's directory.
func (d *managerDemo) secdsaPlugin() (*secdsakey.Plugin, error) {
	return secdsakey.New(secdsakey.Config{Client: d.client, Binder: d.binder, Dir: filepath.Join(d.dir, "secdsa"),
		DisplayName: "demo Wallet Provider (SECDSA)"})
}

// activateSECDSA binds a SECDSA PIN to the unit and registers the plugin.
func (d *managerDemo) activateSECDSA(ctx context.Context) (string, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return "", err
	}
	b, err := secdsa.NewSoftwarePINBinder(k)
	clear(k)
	if err != nil {
		return "", err
	}
	d.binder = b
	sp, err := d.secdsaPlugin()
	if err != nil {
		return "", err
	}
	if _, err := sp.Activate(ctx, manager.Env{Auth: d}); err != nil {
		return "", err
	}
	if _, err := d.openManager(ctx); err != nil {
		return "", err
	}
	return "the secdsa plugin bound a PIN to the unit in the HSM (Split-ECDSA activation) and joined the manager: plugins " +
		strings.Join(d.m.Plugins(), ", "), nil
}

func (d *managerDemo) softkey(ctx context.Context) (string, error) {
	k, res, err := d.m.Generate(ctx, manager.GenerateRequest{})
	if err != nil {
		return "", err
	}
	d.soft = k
	return fmt.Sprintf("default plugin %s made key %s (amr %v)", res.Plugin, abbrev(string(k.KID)), res.AMR), nil
}

func (d *managerDemo) byPolicy(ctx context.Context) (string, error) {
	req := manager.GenerateRequest{Issuer: "https://issuer.example", CredentialType: "eu.europa.ec.eudi.pid.1",
		Requirement: manager.Requirement{Storage: []manager.KeyStorage{manager.StorageRemoteHSM}}}
	k, res, err := d.m.Generate(ctx, req)
	if err != nil {
		return "", err
	}
	if res.Plugin != remote.DefaultID {
		return "", fmt.Errorf("the policy picked %s", res.Plugin)
	}
	d.remote = k
	again, _, err := d.m.Generate(ctx, req)
	if err != nil || again.Plugin != remote.DefaultID {
		return "", fmt.Errorf("the choice was not remembered: %v", err)
	}
	if _, err := d.m.Delete(ctx, again.KID); err != nil {
		return "", err
	}
	props, _, err := d.m.Properties(ctx, k.KID)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("policy \"keys in the Wallet Provider's WSCD\" for the PID picked %s, key %s (server kid %s, amr %v, device assurance %q as the server states it); remembered for that issuer and type",
		res.Plugin, abbrev(string(k.KID)), abbrev(k.Handle), res.AMR, props.Assurance), nil
}

func (d *managerDemo) signBoth(ctx context.Context) (string, error) {
	k, _, err := d.m.Generate(ctx, manager.GenerateRequest{Plugin: secdsakey.DefaultID})
	if err != nil {
		return "", err
	}
	d.sec = k
	digest := sha256.Sum256([]byte("demo: proof of possession"))
	var parts []string
	for _, k := range []manager.Key{d.soft, d.remote, d.sec} {
		sig, res, err := d.m.Sign(ctx, k.KID, digest[:])
		if err != nil {
			return "", err
		}
		if !ecdsa.Verify(k.Public, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return "", fmt.Errorf("the %s signature does not verify", res.Plugin)
		}
		parts = append(parts, fmt.Sprintf("%s signed, verified (amr %v)", res.Plugin, res.AMR))
	}
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	z, res, err := d.m.ECDH(ctx, d.remote.KID, peer.PublicKey())
	if err != nil {
		return "", err
	}
	mine, _ := d.remote.Public.ECDH()
	if want, _ := peer.ECDH(mine); string(want) != string(z) {
		return "", errors.New("ECDH secrets differ")
	}
	parts = append(parts, fmt.Sprintf("%s ECDH agreed with a peer", res.Plugin))
	return strings.Join(parts, "; ") + fmt.Sprintf("; PIN asked %d time(s) in all (r2ps once per session, secdsa once per instruction)", d.pinAsks), nil
}

func (d *managerDemo) refused(ctx context.Context) (string, error) {
	high := manager.Requirement{KeyStorage: []string{"iso_18045_high"}}
	_, _, err := d.m.Generate(ctx, manager.GenerateRequest{Plugin: softkey.ID, Requirement: high})
	if !errors.Is(err, manager.ErrNoEligiblePlugin) {
		return "", fmt.Errorf("softkey was not refused for iso_18045_high: %v", err)
	}
	_, _, err = d.m.Generate(ctx, manager.GenerateRequest{Requirement: high, Issuer: "https://bank.example", CredentialType: "payment"})
	if !errors.Is(err, manager.ErrNoEligiblePlugin) {
		return "", fmt.Errorf("a plugin was picked for iso_18045_high: %v", err)
	}
	return "an issuer requiring key_storage iso_18045_high: softkey refused (software), and no plugin picked, since this demo's device states no certified level", nil
}

func (d *managerDemo) migrate(ctx context.Context) (string, error) {
	res, _, err := d.m.Migrate(ctx, d.soft.KID, remote.DefaultID)
	if err != nil {
		return "", err
	}
	if !res.ReEnrollmentRequired {
		return "", errors.New("a software key moved into the HSM")
	}
	return "softkey key to r2ps: ReEnrollmentRequired (an HSM key cannot be imported; the credential is issued again to a new key)", nil
}

func (d *managerDemo) restart(ctx context.Context) (string, error) {
	if _, err := d.openManager(ctx); err != nil {
		return "", err
	}
	digest := sha256.Sum256([]byte("after restart"))
	sig, res, err := d.m.Sign(ctx, d.remote.KID, digest[:])
	if err != nil {
		return "", err
	}
	if !ecdsa.Verify(d.remote.Public, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return "", errors.New("signature after restart does not verify")
	}
	return fmt.Sprintf("a new manager over the same directory routed %s to %s by its stored binding", abbrev(string(d.remote.KID)), res.Plugin), nil
}

func (d *managerDemo) list(ctx context.Context) (string, error) {
	keys, err := d.m.List(ctx)
	if err != nil {
		return "", err
	}
	var rows []string
	for _, k := range keys {
		rows = append(rows, k.Plugin+":"+abbrev(string(k.KID)))
	}
	if len(keys) != 3 {
		return "", fmt.Errorf("%d keys listed, want 3", len(keys))
	}
	return strings.Join(rows, ", "), nil
}
