package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"

	"github.com/wsca/wsca/ecp256"
	"github.com/wsca/wsca/evidence/event"
	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/secdsakey"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/secdsa"
	"github.com/wsca/wsca/store"
)

// secdsaConsent is the text the demo's user consents to: it goes into the
// instruction's additional data and so into its transaction record.
const secdsaConsent = "Authorize 1.000 Euro to NL02INGB0123456789"

// The demo's SECDSA PINs (the OPAQUE PIN of the enrolment is demoPIN).
var (
	secdsaPIN      = []byte("2468")
	secdsaWrongPIN = []byte("1111")
)

// secdsaDemo plays SECDSA against an in-process server: activation, an
// instruction with a consent text, its execution, a third party's
// verification of its record and of the record's place in the evidence
// log, a wrong PIN counted, the lock.
type secdsaDemo struct {
	*demo
	e      env
	plugin *secdsakey.Plugin
	key    manager.PluginKey

	mu     sync.Mutex
	pin    []byte
	record *secdsa.TRecord // the consented instruction's
	last   *secdsa.TRecord

	oldCheckpoint []byte // the log's checkpoint after activation
}

func demoSECDSA(ctx context.Context, e env, args []string) error {
	d := &secdsaDemo{demo: &demo{}, e: e, pin: secdsaPIN}
	return runDemo(ctx, e, args, "secdsa", "SECDSA", d.demo, d.run)
}

// RequestPIN is the wallet app: it answers with the PIN the demo's user
// is typing now.
func (d *secdsaDemo) RequestPIN(_ context.Context, r manager.PINRequest) (*manager.Secret, error) {
	if r.Plugin != secdsakey.DefaultID {
		return nil, manager.ErrAuthCancelled
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return manager.NewSecret(bytes.Clone(d.pin)), nil
}

func (d *secdsaDemo) RequestWebAuthnAssertion(context.Context, manager.WebAuthnRequest) ([]byte, error) {
	return nil, manager.ErrUnsupported
}

func (d *secdsaDemo) typing(pin []byte) { d.mu.Lock(); d.pin = pin; d.mu.Unlock() }

func (d *secdsaDemo) env() manager.Env { return manager.Env{Auth: d} }

func (d *secdsaDemo) run(ctx context.Context, dir, backend string, log *slog.Logger) error {
	describe := func(srv *localServer) string {
		what := srv.device.Backend + " device"
		if srv.device.SoftwareOnly() {
			what += " (software keys, development only)"
		}
		return fmt.Sprintf("in-process wscad at %s on a SQLite store and the %s; SECDSA served in the wscd role, evidence log %q",
			srv.url, what, srv.stack.Evidence.Origin())
	}
	return d.play(ctx, dir, backend, log, describe, []demoStepFunc{
		{"operator", d.operator},
		{"enrol", d.enrol},
		{"activate", func(ctx context.Context) (string, error) { return d.activate(ctx, filepath.Join(dir, "wallet")) }},
		{"keygen", d.keygen},
		{"instruction", d.instruction},
		{"execution", d.execution},
		{"verify record", d.verifyRecord},
		{"verify log", d.verifyLog},
		{"wrong PIN", d.wrongPIN},
		{"lock", d.lock},
	})
}

// activate binds the SECDSA PIN to the unit (Protocol 4) through the
// manager's SECDSA plugin, then takes the log's checkpoint a later one
// must extend.
func (d *secdsaDemo) activate(ctx context.Context, dir string) (string, error) {
	c, err := d.wallet.client()
	if err != nil {
		return "", err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return "", err
	}
	binder, err := secdsa.NewSoftwarePINBinder(k) // the phone's secure hardware, in software here
	clear(k)
	if err != nil {
		return "", err
	}
	d.plugin, err = secdsakey.New(secdsakey.Config{Client: c, Binder: binder, Dir: dir,
		OnRecord: func(tr *secdsa.TRecord) { d.last = tr }})
	if err != nil {
		return "", err
	}
	b, err := d.plugin.Activate(ctx, d.env())
	if err != nil {
		return "", err
	}
	cp, err := d.srv.stack.Evidence.Sync(ctx)
	if err != nil {
		return "", err
	}
	d.oldCheckpoint = cp.Note
	pkid, err := ecp256.KID(b.Provider)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("PIN bound in the HSM (a derive-only key aU for the unit, 2 derives); Internal Certificate %s for account %s, device key U = the CSK, signed by provider key %s; the log has %d entries",
		abbrev(hex.EncodeToString(b.Cert.ID())), abbrev(string(b.Cert.AccountID)), abbrev(pkid), cp.Size), nil
}

func (d *secdsaDemo) keygen(ctx context.Context) (string, error) {
	var err error
	var amr []string
	if d.key, amr, err = d.plugin.Generate(ctx, "", d.env()); err != nil {
		return "", err
	}
	return fmt.Sprintf("P-256 key %s made by a p256_generate instruction (serial number %d, amr %v)", d.key.Handle, d.last.SN, amr), nil
}

// instruction signs the consent's digest with the key, the consent text
// in the record.
func (d *secdsaDemo) instruction(ctx context.Context) (string, error) {
	digest := sha256.Sum256([]byte(secdsaConsent))
	op := r2ps.SECDSAOp{Op: r2ps.SECDSAOpSign, KID: d.key.Handle, Hash: digest[:]}
	out, err := d.plugin.Instruct(ctx, d.env(), op, []byte(secdsaConsent))
	if err != nil {
		return "", err
	}
	d.record = out.Record
	return fmt.Sprintf("%q: sign_ecdsa of its SHA-256 with %s, serial number %d; split-signed on the phone with the device key and the PIN, encrypted to the HSM's challenge",
		secdsaConsent, abbrev(d.key.Handle), out.Record.SN), nil
}

// execution shows what the server did: one derive authenticated the
// instruction, the key signed, the record says so.
func (d *secdsaDemo) execution(context.Context) (string, error) {
	var res r2ps.SECDSAResult
	if err := json.Unmarshal(d.record.Result, &res); err != nil {
		return "", err
	}
	digest := sha256.Sum256([]byte(secdsaConsent))
	if !res.OK || !ecdsa.VerifyASN1(d.key.Public, digest[:], res.Signature) {
		return "", errors.New("the executed instruction's signature does not verify")
	}
	return fmt.Sprintf("authenticated by one HSM derive, executed: the %d-byte DER signature verifies under the key; transaction record %s signed by the provider",
		len(res.Signature), abbrev(hex.EncodeToString(d.record.Hash()))), nil
}

// verifyRecord is a third party (a bank, a judge) with the record, the
// Internal Certificate and the provider key: wsca verify-record's code.
func (d *secdsaDemo) verifyRecord(context.Context) (string, error) {
	b, err := d.plugin.Binding()
	if err != nil {
		return "", err
	}
	kid, err := ecp256.KID(b.Provider)
	if err != nil {
		return "", err
	}
	res := verifyRecord(d.record.Marshal(), b.Cert.Marshal(), []providerKey{{pub: b.Provider, kid: kid}})
	if !res.Valid {
		return "", fmt.Errorf("record: %s", res.Reason)
	}
	f := res.Record
	// A record that says otherwise fails: the consent text changed.
	forged := *d.record
	forged.Additional = []byte(strings.Replace(secdsaConsent, "1.000", "9.000", 1))
	if bad := verifyRecord(forged.Marshal(), b.Cert.Marshal(), []providerKey{{pub: b.Provider, kid: kid}}); bad.Valid {
		return "", errors.New("a record with another consent text verified")
	}
	var res2 r2ps.SECDSAResult
	if err := json.Unmarshal(d.record.Result, &res2); err != nil {
		return "", err
	}
	return fmt.Sprintf("valid, with no secret (as wsca verify-record): account %s, serial number %d, additional data %s, result %s ok=%v at %s; the same record with \"9.000 Euro\" is invalid",
		abbrev(strings.Trim(f.Account, `"`)), f.SN, f.Additional, res2.Op, res2.OK, f.Time), nil
}

// verifyLog is the third party again: given the record's leaf (which the
// operator finds by the record's hash) it checks, as wsca verify-log does, the checkpoint's
// signature, the leaf's inclusion and that the log extends the
// checkpoint taken after activation.
func (d *secdsaDemo) verifyLog(ctx context.Context) (string, error) {
	if _, err := d.srv.stack.Evidence.Sync(ctx); err != nil {
		return "", err
	}
	// The verifier key comes from the operator through a trusted channel
	// (here: the in-process server itself).
	vkey, err := d.srv.stack.Evidence.VerifierKey(ctx)
	if err != nil {
		return "", err
	}
	index, leaf, err := d.findLeaf(ctx)
	if err != nil {
		return "", err
	}
	src, err := fetchSource(ctx, d.e, d.srv.url, false, index, checkpointSize(d.oldCheckpoint))
	if err != nil {
		return "", err
	}
	src.key, src.leaf = vkey, leaf
	res, err := src.verify(d.oldCheckpoint)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("entry %d (%s of the unit, data = the record's hash) included in checkpoint %d of %q, whose signature verifies; consistent with the checkpoint of %d entries after activation",
		res.Leaf.Index, res.Leaf.Type, res.Size, res.Origin, res.OldSize), nil
}

// findLeaf finds the record's event among the log's leaves as the
// operator does (leaves name units, so they are not public: the operator
// hands the leaf and its index to the parties; here, from the store).
func (d *secdsaDemo) findLeaf(ctx context.Context) (int64, []byte, error) {
	h := d.record.Hash()
	for i := int64(0); ; i++ {
		leaf, err := d.srv.stack.Store.GetEvidenceLeaf(ctx, i)
		if errors.Is(err, store.ErrNotFound) {
			return 0, nil, errors.New("the record's hash is not in the log")
		}
		if err != nil {
			return 0, nil, err
		}
		if e, err := event.Parse(leaf); err == nil && e.Type == event.SECDSARecord && bytes.Equal(e.Data, h) {
			return i, leaf, nil
		}
	}
}

// failures reads the server's counter of the unit's binding.
func (d *secdsaDemo) failures(ctx context.Context) (int, bool, error) {
	b, err := d.srv.stack.Store.GetSECDSA(ctx, d.unit)
	return b.Failures, b.Locked, err
}

func (d *secdsaDemo) wrongPIN(ctx context.Context) (string, error) {
	d.typing(secdsaWrongPIN)
	digest := sha256.Sum256([]byte(secdsaConsent))
	_, _, err := d.plugin.Sign(ctx, d.key.Handle, digest[:], d.env())
	if !errors.Is(err, manager.ErrAuthRequired) || !client.IsCode(err, r2ps.CodeUnauthorized) {
		return "", fmt.Errorf("a wrong PIN gave %v, want %s", err, r2ps.CodeUnauthorized)
	}
	n, _, err := d.failures(ctx)
	if err != nil {
		return "", err
	}
	if n != 1 {
		return "", fmt.Errorf("server-side counter after one wrong PIN: %d", n)
	}
	return fmt.Sprintf("refused with %s after the HSM derive (the instruction does not decrypt): server-side counter %d of %d; no record",
		r2ps.CodeUnauthorized, n, d.srv.stack.SECDSA.MaxFailures()), nil
}

func (d *secdsaDemo) lock(ctx context.Context) (string, error) {
	limit := d.srv.stack.SECDSA.MaxFailures()
	digest := sha256.Sum256([]byte(secdsaConsent))
	for n, _, err := d.failures(ctx); n < limit; n, _, err = d.failures(ctx) {
		if err != nil {
			return "", err
		}
		if _, _, err := d.plugin.Sign(ctx, d.key.Handle, digest[:], d.env()); !errors.Is(err, manager.ErrAuthRequired) {
			return "", fmt.Errorf("wrong PIN %d: %v", n+1, err)
		}
	}
	d.typing(secdsaPIN)
	_, _, err := d.plugin.Sign(ctx, d.key.Handle, digest[:], d.env())
	if !errors.Is(err, secdsakey.ErrLocked) {
		return "", fmt.Errorf("the right PIN on a locked binding gave %v", err)
	}
	n, locked, err := d.failures(ctx)
	if err != nil {
		return "", err
	}
	if !locked || n != limit {
		return "", fmt.Errorf("counter %d, locked %v", n, locked)
	}
	return fmt.Sprintf("locked after %d wrong PINs: now even the right PIN is refused (%s) before the HSM, not counted; the operator resets the unit and the wallet activates again",
		limit, r2ps.CodeAccessDenied), nil
}
