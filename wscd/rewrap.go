package wscd

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/store"
)

// Re-wrapping, migration and the wrapping keys' lifecycle
// (docs/wrapped-keys.md). Each call does one batch of at most a given
// number of keys and returns a cursor to pass to the next; a run is
// resumable from any cursor and from the start: a key already done no
// longer matches, and every change is a compare-and-swap on the blob
// read, so a concurrent destroy or another re-wrapper wins and the loser
// discards its blob.

// ErrNotWrapped means the device does not keep keys wrapped (or cannot
// re-wrap them), or the store cannot page through blobs: there is nothing
// to re-wrap, migrate or report.
var ErrNotWrapped = errors.New("wscd: the device does not keep keys wrapped")

// Batch sizes of Rewrap and Migrate.
const (
	DefaultBlobBatch = 500
	MaxBlobBatch     = store.MaxBlobBatch
)

// WrappedStore is what re-wrapping and migration need of the store beyond
// KeyStore; *store.Store has it. Keys finds it on its store (an optional
// interface, like device.Rewrapper on the device).
type WrappedStore interface {
	KeyBlobsNotUnder(ctx context.Context, prefix []byte, after string, limit int) ([]store.KeyBlob, error)
	KeyBlobsUnder(ctx context.Context, prefix []byte, limit int) ([]store.KeyBlob, error)
	CountKeyBlobsNotUnder(ctx context.Context, prefix []byte, after string) (int64, error)
	TokenKeys(ctx context.Context, backend, after string, limit int) ([]store.KeyBlob, error)
	CountTokenKeys(ctx context.Context, backend, after string) (int64, error)
	SwapKeyBlob(ctx context.Context, kid string, old, blob, mac []byte) (bool, error)
	ServerKeyBlobs(ctx context.Context) ([]store.ServerKey, error)
	SwapServerKeyBlob(ctx context.Context, purpose, kid string, old, blob []byte) (bool, error)
	BlobCounts(ctx context.Context, n int) ([]store.BlobCount, error)
	// SECDSA aU keys, bound and of activations in progress.
	SECDSABlobsNotUnder(ctx context.Context, prefix []byte, pending bool, after string, limit int) ([]store.SECDSABlob, error)
	CountSECDSABlobsNotUnder(ctx context.Context, prefix []byte, pending bool, after string) (int64, error)
	SwapSECDSABlob(ctx context.Context, old store.SECDSABlob, blob, mac []byte) (bool, error)
	GetServerSecret(ctx context.Context, name string) ([]byte, error)
	PutServerSecret(ctx context.Context, name string, value []byte, now time.Time) error
}

var _ WrappedStore = (*store.Store)(nil)

// maintenance returns the device's and the store's re-wrapping sides.
func (s *Keys) maintenance() (device.Rewrapper, WrappedStore, error) {
	rw, ok := s.dev.(device.Rewrapper)
	if !ok || s.dev.Info().Storage != device.StorageWrapped || s.server == nil {
		return nil, nil, ErrNotWrapped
	}
	ws, ok := s.st.(WrappedStore)
	if !ok {
		return nil, nil, fmt.Errorf("%w: the store cannot page through blobs", ErrNotWrapped)
	}
	return rw, ws, nil
}

// maxListed bounds the kids a batch report names.
const maxListed = 20

// Progress is one batch of a re-wrap or migration run.
type Progress struct {
	// Cursor is passed to the next call; empty once Done.
	Cursor string `json:"cursor"`
	Done   bool   `json:"done"`
	// Remaining counts the keys after Cursor still to do.
	Remaining int64 `json:"remaining"`
	// Lost counts keys a concurrent destroy or re-wrap changed first:
	// the blob made here was discarded.
	Lost int `json:"lost"`
	// Refused counts keys left as they are because something is wrong
	// with them (a blob failing its MAC or refused by the device; the log
	// says which); RefusedKIDs names up to 20 of them.
	Refused     int      `json:"refused"`
	RefusedKIDs []string `json:"refused_kids,omitempty"`

	marked map[string]bool // wrapping keys markKnown recorded
}

// markKnown records the wrapping key a blob with a valid MAC names as this
// store's (WrappingKeys), once per batch.
func (s *Keys) markKnown(ctx context.Context, rw device.Rewrapper, ws WrappedStore, blob []byte, p *Progress) error {
	if len(blob) < 1 {
		return nil
	}
	id, err := rw.WrappingKeyOf(blob[1:])
	if err != nil || p.marked[string(id)] {
		return nil
	}
	sl, err := s.server.Sealer(ctx)
	if err != nil {
		return err
	}
	err = ws.PutServerSecret(ctx, knownWrappingKeyName(id), sl.MAC(knownWrappingKeyDomain, id), s.now().UTC())
	if err != nil && !errors.Is(err, store.ErrExists) {
		return storeErr(err)
	}
	if p.marked == nil {
		p.marked = map[string]bool{}
	}
	p.marked[string(id)] = true
	return nil
}

func (p *Progress) refuse(kid string) {
	p.Refused++
	if len(p.RefusedKIDs) < maxListed {
		p.RefusedKIDs = append(p.RefusedKIDs, kid)
	}
}

// RewrapResult is one batch of Rewrap.
type RewrapResult struct {
	Progress
	// Rewrapped counts wallet keys now under the current wrapping key,
	// ServerKeys the server's keys (first batch of a run only), SECDSA
	// the units' SECDSA aU keys (bound, or of an activation in progress).
	Rewrapped  int `json:"rewrapped"`
	ServerKeys int `json:"server_keys"`
	SECDSA     int `json:"secdsa"`
}

func batchSize(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultBlobBatch, nil
	case n < 0 || n > MaxBlobBatch:
		return 0, fmt.Errorf("%w: batch %d outside 1..%d", ErrInvalidInput, n, MaxBlobBatch)
	}
	return n, nil
}

func checkCursor(cursor string) error {
	if cursor == "" {
		return nil
	}
	if _, err := device.ParseKID(cursor); err != nil {
		return fmt.Errorf("%w: cursor", ErrInvalidInput)
	}
	return nil
}

// A re-wrap run goes through three phases, each by its own order: the
// wallet keys (cursor "" or a kid), then the SECDSA aU keys of
// activations in progress (cursor "secdsa-pending:" and a unit id, empty
// at the start of the phase), then the SECDSA bindings' ("secdsa:" and a
// unit id). Activations come before bindings: an activation finished
// meanwhile turns into a binding that the later phase still sees.
type rewrapPhase int

const (
	phaseKeys rewrapPhase = iota
	phaseSECDSAPending
	phaseSECDSABound
	phaseDone
)

var phasePrefix = [...]string{phaseSECDSAPending: "secdsa-pending:", phaseSECDSABound: "secdsa:"}

func parseRewrapCursor(cursor string) (rewrapPhase, string, error) {
	for _, ph := range []rewrapPhase{phaseSECDSAPending, phaseSECDSABound} {
		if unit, ok := strings.CutPrefix(cursor, phasePrefix[ph]); ok {
			if unit != "" {
				if _, err := device.ParseOwner(unit); err != nil {
					return 0, "", fmt.Errorf("%w: cursor", ErrInvalidInput)
				}
			}
			return ph, unit, nil
		}
	}
	return phaseKeys, cursor, checkCursor(cursor)
}

func rewrapCursor(ph rewrapPhase, after string) string {
	switch ph {
	case phaseKeys:
		return after
	case phaseDone:
		return ""
	}
	return phasePrefix[ph] + after
}

// Rewrap re-wraps, under the device's current wrapping key, at most batch
// (0: DefaultBlobBatch) keys after cursor whose blob names another
// wrapping key or mechanism: wallet keys, then the SECDSA aU keys of
// activations in progress, then those of bindings (rewrapPhase); the
// first batch of a run (cursor "") also re-wraps the server keys of this
// role. A SECDSA row's blob is used only if the row's MAC holds, and the
// row gets a new MAC over the same fields with the new blob. A wallet key's
// blob is used only if its MAC holds, and its new blob gets a new MAC; the
// record changes only if it still holds the blob read. Keys being
// destroyed are left alone. The device unwraps with the old key, so it
// must still be on the token. A device outage ends the batch with an
// error: call again with the same cursor.
func (s *Keys) Rewrap(ctx context.Context, cursor string, batch int) (RewrapResult, error) {
	var r RewrapResult
	rw, ws, err := s.maintenance()
	if err != nil {
		return r, err
	}
	if batch, err = batchSize(batch); err != nil {
		return r, err
	}
	phase, after, err := parseRewrapCursor(cursor)
	if err != nil {
		return r, err
	}
	prefix, err := rw.CurrentBlobPrefix(ctx)
	if err != nil {
		return r, s.deviceErr(ctx, err)
	}
	if cursor == "" {
		// Every wrapping key a blob names now is this store's:
		// remembered before the blobs move away from it.
		if _, err := s.WrappingKeys(ctx); err != nil {
			return r, err
		}
		if r.ServerKeys, err = s.rewrapServerKeys(ctx, rw, ws, prefix, &r.Progress); err != nil {
			return r, err
		}
	}
	// The batch is shared by the phases: a phase that ends leaves the
	// rest of it to the next.
	left := batch
	for phase < phaseDone && left > 0 {
		var n int
		if phase == phaseKeys {
			n, after, err = s.rewrapKeys(ctx, rw, ws, prefix, after, left, &r)
		} else {
			n, after, err = s.rewrapSECDSA(ctx, rw, ws, prefix, phase == phaseSECDSAPending, after, left, &r)
		}
		r.Cursor = rewrapCursor(phase, after)
		if err != nil {
			return r, err
		}
		if n == left {
			break // a full page: there may be more
		}
		left -= n
		phase, after = phase+1, ""
		r.Cursor = rewrapCursor(phase, after)
	}
	if phase == phaseDone {
		r.Cursor, r.Done = "", true
	} else if r.Remaining, err = s.remaining(ctx, ws, prefix, phase, after); err != nil {
		return r, err
	}
	s.log.InfoContext(ctx, "keys re-wrapped", "rewrapped", r.Rewrapped, "server_keys", r.ServerKeys, "secdsa", r.SECDSA,
		"lost", r.Lost, "refused", r.Refused, "remaining", r.Remaining, "done", r.Done)
	return r, nil
}

// remaining counts the records still to look at from (phase, after) on.
func (s *Keys) remaining(ctx context.Context, ws WrappedStore, prefix []byte, phase rewrapPhase, after string) (int64, error) {
	var total int64
	for ; phase < phaseDone; phase, after = phase+1, "" {
		var n int64
		var err error
		if phase == phaseKeys {
			n, err = ws.CountKeyBlobsNotUnder(ctx, prefix, after)
		} else {
			n, err = ws.CountSECDSABlobsNotUnder(ctx, prefix, phase == phaseSECDSAPending, after)
		}
		if err != nil {
			return 0, storeErr(err)
		}
		total += n
	}
	return total, nil
}

// rewrapKeys re-wraps one page of at most limit wallet keys after after
// and returns how many it read and the last kid.
func (s *Keys) rewrapKeys(ctx context.Context, rw device.Rewrapper, ws WrappedStore, prefix []byte, after string, limit int, r *RewrapResult) (int, string, error) {
	recs, err := ws.KeyBlobsNotUnder(ctx, prefix, after, limit)
	if err != nil {
		return 0, after, storeErr(err)
	}
	for i, rec := range recs {
		done, err := s.rewrapKey(ctx, rw, ws, rec, &r.Progress)
		if err != nil {
			return i, after, err
		}
		if done {
			r.Rewrapped++
		}
		after = rec.KID
	}
	return len(recs), after, nil
}

// rewrapSECDSA re-wraps one page of at most limit SECDSA aU keys (of
// activations in progress when pending, else of bindings) of units after
// after and returns how many it read and the last unit id.
func (s *Keys) rewrapSECDSA(ctx context.Context, rw device.Rewrapper, ws WrappedStore, prefix []byte, pending bool, after string, limit int, r *RewrapResult) (int, string, error) {
	recs, err := ws.SECDSABlobsNotUnder(ctx, prefix, pending, after, limit)
	if err != nil {
		return 0, after, storeErr(err)
	}
	for i, rec := range recs {
		done, err := s.rewrapAU(ctx, rw, ws, rec, &r.Progress)
		if err != nil {
			return i, after, err
		}
		if done {
			r.SECDSA++
		}
		after = rec.UnitID
	}
	return len(recs), after, nil
}

// secdsaMAC returns the MAC domain and the fields of a SECDSA row's MAC,
// with blob as its aU's blob (as wscd.SECDSA computes them).
func secdsaMAC(rec store.SECDSABlob, blob []byte) (string, [][]byte) {
	if rec.Pending {
		return secdsaPendingMACDomain, [][]byte{[]byte(rec.UnitID), []byte(rec.KID), blob}
	}
	return secdsaBindingMACDomain, [][]byte{[]byte(rec.UnitID), []byte(rec.KID), blob, rec.Cert}
}

// rewrapAU re-wraps one SECDSA aU and reports whether its row now holds
// the new blob: the row's MAC is checked first (a row failing it is never
// given a MAC of ours), the new MAC covers the same fields with the new
// blob, and the row changes only if it still holds the kid, blob and
// certificate read. The blob keeps its version byte (derive-only). Only
// an outage is an error.
func (s *Keys) rewrapAU(ctx context.Context, rw device.Rewrapper, ws WrappedStore, rec store.SECDSABlob, p *Progress) (bool, error) {
	owner, err1 := device.ParseOwner(rec.UnitID)
	kid, err2 := device.ParseKID(rec.KID)
	if err1 != nil || err2 != nil {
		s.log.ErrorContext(ctx, "re-wrap: malformed secdsa record", "unit", rec.UnitID, "kid", rec.KID, "pending", rec.Pending)
		p.refuse(rec.KID)
		return false, nil
	}
	sl, err := s.server.Sealer(ctx)
	if err != nil {
		return false, err
	}
	domain, fields := secdsaMAC(rec, rec.Wrapped)
	if !sl.VerifyMAC(rec.MAC, domain, fields...) {
		s.log.ErrorContext(ctx, "re-wrap: secdsa record fails its MAC: the store was changed outside wsca",
			"unit", rec.UnitID, "kid", rec.KID, "pending", rec.Pending)
		p.refuse(rec.KID)
		return false, nil
	}
	// A blob with a valid MAC is this store's: so is the key it names
	// (the report samples wallet keys' blobs only).
	if err := s.markKnown(ctx, rw, ws, rec.Wrapped, p); err != nil {
		return false, err
	}
	blob, err := rw.Rewrap(ctx, device.Ref{Owner: owner, KID: kid, Wrapped: rec.Wrapped})
	if err != nil {
		return false, s.refused(ctx, "re-wrap", rec.UnitID, rec.KID, err, p)
	}
	domain, fields = secdsaMAC(rec, blob)
	ok, err := ws.SwapSECDSABlob(ctx, rec, blob, sl.MAC(domain, fields...))
	if err != nil {
		return false, storeErr(err)
	}
	if !ok {
		p.Lost++
	}
	return ok, nil
}

// rewrapKey re-wraps one wallet key and reports whether its record now
// holds the new blob; only an outage is an error.
func (s *Keys) rewrapKey(ctx context.Context, rw device.Rewrapper, ws WrappedStore, rec store.KeyBlob, p *Progress) (bool, error) {
	owner, err1 := device.ParseOwner(rec.UnitID)
	kid, err2 := device.ParseKID(rec.KID)
	if err1 != nil || err2 != nil {
		s.log.ErrorContext(ctx, "re-wrap: malformed key record", "unit", rec.UnitID, "kid", rec.KID)
		p.refuse(rec.KID)
		return false, nil
	}
	// A blob failing its MAC is never given a MAC of ours.
	ref, err := s.wrappedRef(ctx, owner, kid, rec.Wrapped, rec.WrappedMAC)
	if errors.Is(err, ErrKeyNotFound) {
		p.refuse(rec.KID)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	blob, err := rw.Rewrap(ctx, ref)
	if err != nil {
		return false, s.refused(ctx, "re-wrap", rec.UnitID, rec.KID, err, p)
	}
	mac, err := s.wrappedMAC(ctx, owner, kid, blob)
	if err != nil {
		return false, err
	}
	ok, err := ws.SwapKeyBlob(ctx, rec.KID, rec.Wrapped, blob, mac)
	if err != nil {
		return false, storeErr(err)
	}
	if !ok {
		p.Lost++
	}
	return ok, nil
}

// refused counts a key the device will not work on and returns nil, or
// returns the error of an outage or fault that ends the batch.
func (s *Keys) refused(ctx context.Context, op, unit, kid string, err error, p *Progress) error {
	if errors.Is(err, device.ErrInvalidBlob) || errors.Is(err, device.ErrKeyNotFound) {
		s.log.ErrorContext(ctx, op+": key refused by the device", "unit", unit, "kid", kid, "err", err)
		p.refuse(kid)
		return nil
	}
	return s.deviceErr(ctx, err)
}

// rewrapServerKeys re-wraps the server keys of this role's namespace (a
// WSCA instance with a device of its own keeps its keys under WSCAPrefix).
func (s *Keys) rewrapServerKeys(ctx context.Context, rw device.Rewrapper, ws WrappedStore, prefix []byte, p *Progress) (int, error) {
	recs, err := ws.ServerKeyBlobs(ctx)
	if err != nil {
		return 0, storeErr(err)
	}
	n := 0
	for _, rec := range recs {
		ns := s.server.prefix
		if ns == "" && strings.HasPrefix(rec.Purpose, WSCAPrefix) || !strings.HasPrefix(rec.Purpose, ns) ||
			len(rec.Wrapped) > 0 && bytes.HasPrefix(rec.Wrapped[1:], prefix) {
			continue
		}
		k, err := serverKeyFromRecord(rec)
		if err != nil {
			s.log.ErrorContext(ctx, "re-wrap: malformed server key record", "purpose", rec.Purpose)
			p.refuse(rec.KID)
			continue
		}
		blob, err := rw.Rewrap(ctx, k.ref())
		if err != nil {
			if err := s.refused(ctx, "re-wrap", string(ServerOwner), rec.KID, err, p); err != nil {
				return n, err
			}
			continue
		}
		ok, err := ws.SwapServerKeyBlob(ctx, rec.Purpose, rec.KID, rec.Wrapped, blob)
		if err != nil {
			return n, storeErr(err)
		}
		if !ok {
			p.Lost++
			continue
		}
		s.log.InfoContext(ctx, "server key re-wrapped", "purpose", rec.Purpose, "kid", rec.KID)
		n++
	}
	return n, nil
}

// MigrateResult is one batch of Migrate.
type MigrateResult struct {
	Progress
	// Migrated counts token keys now wrapped (blob recorded, token object
	// destroyed).
	Migrated int `json:"migrated"`
	// StayToken counts keys that stay token objects: the token does not
	// let them be wrapped (docs/wrapped-keys.md). They keep working.
	StayToken int `json:"stay_token"`
	// CopiesLeft counts migrated keys whose token object could not be
	// destroyed after the commit; it is destroyed with the key.
	CopiesLeft int `json:"copies_left"`
}

// Migrate moves at most batch (0: DefaultBlobBatch) wallet keys with a kid
// after cursor that are token objects of this device into wrapped storage:
// the device wraps each under the current wrapping key if the token lets
// it (and checks the blob), the blob and its MAC go into the record if it
// still has none (compare-and-swap), and only then is the token object
// destroyed. A key the token does not let be wrapped stays a token object
// (StayToken), which fails nothing. Server keys are not migrated: they are
// a handful of objects, held by every running instance. A device outage
// ends the batch with an error: call again with the same cursor.
func (s *Keys) Migrate(ctx context.Context, cursor string, batch int) (MigrateResult, error) {
	var r MigrateResult
	rw, ws, err := s.maintenance()
	if err != nil {
		return r, err
	}
	if batch, err = batchSize(batch); err != nil {
		return r, err
	}
	if err := checkCursor(cursor); err != nil {
		return r, err
	}
	backend := s.dev.Info().Backend
	recs, err := ws.TokenKeys(ctx, backend, cursor, batch)
	if err != nil {
		return r, storeErr(err)
	}
	r.Cursor = cursor
	for _, rec := range recs {
		if err := s.migrateKey(ctx, rw, ws, rec, &r); err != nil {
			return r, err
		}
		r.Cursor = rec.KID
	}
	if len(recs) < batch {
		r.Cursor, r.Done = "", true
	} else if r.Remaining, err = ws.CountTokenKeys(ctx, backend, r.Cursor); err != nil {
		return r, storeErr(err)
	}
	s.log.InfoContext(ctx, "token keys migrated", "migrated", r.Migrated, "stay_token", r.StayToken,
		"lost", r.Lost, "refused", r.Refused, "copies_left", r.CopiesLeft, "remaining", r.Remaining, "done", r.Done)
	return r, nil
}

func (s *Keys) migrateKey(ctx context.Context, rw device.Rewrapper, ws WrappedStore, rec store.KeyBlob, r *MigrateResult) error {
	owner, err1 := device.ParseOwner(rec.UnitID)
	kid, err2 := device.ParseKID(rec.KID)
	if err1 != nil || err2 != nil {
		s.log.ErrorContext(ctx, "migrate: malformed key record", "unit", rec.UnitID, "kid", rec.KID)
		r.refuse(rec.KID)
		return nil
	}
	ref := device.Ref{Owner: owner, KID: kid}
	blob, err := rw.WrapTokenKey(ctx, ref)
	if errors.Is(err, device.ErrNotExtractable) {
		r.StayToken++
		return nil
	}
	if err != nil {
		return s.refused(ctx, "migrate", rec.UnitID, rec.KID, err, &r.Progress)
	}
	mac, err := s.wrappedMAC(ctx, owner, kid, blob)
	if err != nil {
		return err
	}
	ok, err := ws.SwapKeyBlob(ctx, rec.KID, nil, blob, mac)
	if err != nil {
		return storeErr(err)
	}
	if !ok {
		// Destroyed (or migrated by another run) meanwhile: the blob is
		// only bytes, and the token object is the other party's.
		r.Lost++
		return nil
	}
	r.Migrated++
	// Only after the commit. A signer that read the record before it
	// and finds no token object re-reads it (retryMigrated).
	if err := s.dev.Destroy(ctx, ref); err != nil && !errors.Is(err, device.ErrKeyNotFound) {
		s.log.WarnContext(ctx, "migrate: the token object of a migrated key was not destroyed; it goes with the key",
			"unit", rec.UnitID, "kid", rec.KID, "err", err)
		r.CopiesLeft++
	}
	return nil
}

// retryMigrated is for a key operation whose device call on a token object
// (ref without blob) found no key: if a migration moved the key into a
// blob since the record was read, it returns the ref to use instead.
func (s *Keys) retryMigrated(ctx context.Context, unit, pinContext, kid string, ref device.Ref, err error) (device.Ref, bool) {
	if ref.Wrapped != nil || !errors.Is(err, device.ErrKeyNotFound) || s.dev.Info().Storage != device.StorageWrapped {
		return device.Ref{}, false
	}
	again, err := s.ownedKey(ctx, unit, pinContext, kid)
	if err != nil || again.Wrapped == nil {
		return device.Ref{}, false
	}
	return again, true
}

// WrappingKeyUse says which blobs name one wrapping key.
type WrappingKeyUse struct {
	// ID is the key's id (hex), as blobs name it.
	ID    string `json:"id"`
	Label string `json:"label,omitempty"`
	// Current: this instance's device wraps new keys under it.
	Current bool `json:"current"`
	// OnDevice: the device holds it. A key blobs name that is not on the
	// device is lost unless restored from a backup: those keys cannot be
	// used.
	OnDevice bool `json:"on_device"`
	// Known: this store's blobs named it once, or it was this instance's
	// current key; only a known key is ever deleted (the token may hold
	// wrapping keys of other deployments).
	Known bool `json:"known"`
	// Keys and ServerKeys count the blobs under it (wallet keys in any
	// state, SECDSA aU keys with them; server keys, and the blobs other
	// services hold sealed: SetHeldBlobs).
	Keys       int64 `json:"keys"`
	ServerKeys int64 `json:"server_keys"`
	// OPRFKeys counts the PIN records' HSM OPRF keys under it (records,
	// pending registrations, retired keys not yet destroyed). A re-wrap
	// does not move them: a record gets a key under the current wrapping
	// key at its next PIN change.
	OPRFKeys int64 `json:"oprf_keys"`
}

// Unused reports whether the key may be deleted: on the device, known,
// not current, and named by no blob.
func (u WrappingKeyUse) Unused() bool {
	return u.OnDevice && u.Known && !u.Current && u.Keys == 0 && u.ServerKeys == 0 && u.OPRFKeys == 0
}

// knownWrappingKeyDomain separates the MAC that marks a wrapping key as
// this store's.
const knownWrappingKeyDomain = "wsca-wrapping-key-v1"

func knownWrappingKeyName(id []byte) string { return "wrapping-key/" + hex.EncodeToString(id) }

// WrappingKeys reports the wrapping keys on the device and those the
// store's blobs name, with how many blobs name each. The current key, and
// a key a wallet key's blob with a valid MAC names, is remembered as this
// store's (a record in the store under the HSM-derived MAC); a row without
// a MAC of ours marks nothing, so a database writer cannot make wsca
// delete another deployment's key.
func (s *Keys) WrappingKeys(ctx context.Context) ([]WrappingKeyUse, error) {
	rw, ws, err := s.maintenance()
	if err != nil {
		return nil, err
	}
	prefix, err := rw.CurrentBlobPrefix(ctx)
	if err != nil {
		return nil, s.deviceErr(ctx, err)
	}
	onDevice, err := rw.WrappingKeys(ctx)
	if err != nil {
		return nil, s.deviceErr(ctx, err)
	}
	counts, err := ws.BlobCounts(ctx, len(prefix))
	if err != nil {
		return nil, storeErr(err)
	}
	sl, err := s.server.Sealer(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[string]*WrappingKeyUse{}
	use := func(id []byte) *WrappingKeyUse {
		h := hex.EncodeToString(id)
		if u, ok := byID[h]; ok {
			return u
		}
		u := &WrappingKeyUse{ID: h}
		byID[h] = u
		return u
	}
	for _, k := range onDevice {
		u := use(k.ID)
		u.Label, u.Current, u.OnDevice = k.Label, k.Current, true
	}
	prefixes := map[string][][]byte{} // wallet keys' blob headers, by wrapping key
	for _, c := range counts {
		id, err := rw.WrappingKeyOf(c.Prefix)
		if err != nil {
			s.log.ErrorContext(ctx, "wrapping keys: blobs with an unreadable header", "count", c.Keys+c.ServerKeys+c.OPRFKeys)
			continue
		}
		u := use(id)
		u.Keys += c.Keys
		u.ServerKeys += c.ServerKeys
		u.OPRFKeys += c.OPRFKeys
		if c.Keys > 0 {
			prefixes[u.ID] = append(prefixes[u.ID], c.Prefix)
		}
	}
	if s.held != nil {
		for _, b := range s.held() {
			var id []byte
			err := device.ErrInvalidBlob
			if len(b) > 1 {
				id, err = rw.WrappingKeyOf(b[1:]) // the header after its version byte
			}
			if err != nil {
				s.log.ErrorContext(ctx, "wrapping keys: a held blob with an unreadable header")
				continue
			}
			use(id).ServerKeys++
		}
	}
	out := make([]WrappingKeyUse, 0, len(byID))
	for _, u := range byID {
		id, _ := hex.DecodeString(u.ID)
		name := knownWrappingKeyName(id)
		v, err := ws.GetServerSecret(ctx, name)
		switch {
		case err == nil:
			u.Known = sl.VerifyMAC(v, knownWrappingKeyDomain, id)
		case !errors.Is(err, store.ErrNotFound):
			return nil, storeErr(err)
		}
		if !u.Known && err != nil {
			// Marked only for the current key or a wallet key's blob
			// under it with a valid MAC: a row any database writer can
			// add (a blob with a MAC of its own, a server key, an OPRF
			// key) must not make another deployment's key ours.
			own := u.Current
			if !own {
				if own, err = s.ownBlobUnder(ctx, ws, prefixes[u.ID]); err != nil {
					return nil, err
				}
			}
			if own {
				err := ws.PutServerSecret(ctx, name, sl.MAC(knownWrappingKeyDomain, id), s.now().UTC())
				if err != nil && !errors.Is(err, store.ErrExists) {
					return nil, storeErr(err)
				}
				u.Known = err == nil
			}
		}
		if !u.OnDevice && (u.Keys > 0 || u.ServerKeys > 0 || u.OPRFKeys > 0) {
			s.log.ErrorContext(ctx, "blobs name a wrapping key the device does not hold: those keys cannot be used",
				"wrapping_key", u.ID, "keys", u.Keys, "server_keys", u.ServerKeys, "oprf_keys", u.OPRFKeys)
		}
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b WrappingKeyUse) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// ownSample bounds the wallet keys' blobs under one wrapping key whose
// MACs the report checks.
const ownSample = 16

// ownBlobUnder reports whether one of the first ownSample wallet keys
// whose blob starts with one of prefixes has a valid MAC: a blob this
// store's key service made.
func (s *Keys) ownBlobUnder(ctx context.Context, ws WrappedStore, prefixes [][]byte) (bool, error) {
	for _, p := range prefixes {
		recs, err := ws.KeyBlobsUnder(ctx, p, ownSample)
		if err != nil {
			return false, storeErr(err)
		}
		for _, rec := range recs {
			owner, err1 := device.ParseOwner(rec.UnitID)
			kid, err2 := device.ParseKID(rec.KID)
			if err1 != nil || err2 != nil {
				continue
			}
			mac, err := s.wrappedMAC(ctx, owner, kid, rec.Wrapped)
			if err != nil {
				return false, err
			}
			if hmac.Equal(rec.WrappedMAC, mac) {
				return true, nil
			}
		}
	}
	return false, nil
}

// DeleteUnusedWrappingKeys deletes from the device every wrapping key that
// is known to this store, not current and named by no blob (Unused), and
// returns them. Deleting one is final: do it only once every instance
// runs with the new wrapping label and has restarted since the re-wrap
// (a running instance keeps its server keys' blobs from its start;
// docs/operations.md).
func (s *Keys) DeleteUnusedWrappingKeys(ctx context.Context) ([]WrappingKeyUse, error) {
	rw, _, err := s.maintenance()
	if err != nil {
		return nil, err
	}
	uses, err := s.WrappingKeys(ctx)
	if err != nil {
		return nil, err
	}
	var deleted []WrappingKeyUse
	for _, u := range uses {
		if !u.Unused() {
			continue
		}
		id, _ := hex.DecodeString(u.ID)
		err := rw.DeleteWrappingKey(ctx, id)
		switch {
		case errors.Is(err, device.ErrKeyNotFound), errors.Is(err, device.ErrWrappingKeyInUse):
			continue
		case err != nil:
			return deleted, s.deviceErr(ctx, err)
		}
		s.log.WarnContext(ctx, "wrapping key deleted", "wrapping_key", u.ID, "label", u.Label)
		deleted = append(deleted, u)
	}
	return deleted, nil
}
