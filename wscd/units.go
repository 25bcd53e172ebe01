package wscd

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/evidence/event"
	"github.com/wsca/wsca/store"
)

// DefaultCodeTTL is how long an activation code stays valid by default.
const DefaultCodeTTL = 24 * time.Hour

// codeBytes is the entropy of an activation code: 128 bits, so a hash is
// enough to keep it (no slow KDF is needed against guessing).
const codeBytes = 16

// codeEncoding is base32 (RFC 4648 §6) without padding: upper case letters
// and digits, easy to read out and type.
var codeEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// UnitStore is what Units needs of the store.
type UnitStore interface {
	CreateUnit(ctx context.Context, u store.Unit) error
	GetUnit(ctx context.Context, id string) (store.Unit, error)
	ListUnits(ctx context.Context) ([]store.Unit, error)
	SetUnitState(ctx context.Context, id string, st store.UnitState, at time.Time) error
	SetUnitStateBy(ctx context.Context, id string, st store.UnitState, by store.Actor, at time.Time) error
	PutActivationCode(ctx context.Context, c store.ActivationCode) error
	DeleteUnitSessions(ctx context.Context, unitID string) error
	ClearAttempts(ctx context.Context, unitID, pinContext string, now time.Time) error
	// Client keys an operator provisions (compat profile).
	GetUnitClientKey(ctx context.Context, unitID string, usage store.KeyUsage) (store.ClientKey, error)
	PutClientKey(ctx context.Context, k store.ClientKey) error
	// Destruction (Destroy).
	EraseUnit(ctx context.Context, id string, at time.Time) error
	// SECDSA aU keys: destruction (Destroy) and the operator's reset
	// (ResetSECDSA).
	SECDSAKeys(ctx context.Context, unitID string) (store.SECDSAUnit, store.SECDSAPending, error)
	OPRFKeys(ctx context.Context, unitID string) ([]store.OPRFKey, error)
	ResetSECDSA(ctx context.Context, unitID string, now time.Time) (store.SECDSAUnit, store.SECDSAPending, error)
}

// UnitsConfig assembles a Units.
type UnitsConfig struct {
	Store UnitStore
	// ServerKeys hashes activation codes and MACs client keys.
	ServerKeys *ServerKeys
	// Keys destroys a unit's device keys (Destroy); nil in a process
	// without the wallet-key device, which then cannot destroy units.
	Keys *Keys
	// WSCAOnly marks a WSCA-only instance, whose ServerKeys are not the
	// WSCD's: it issues no activation code and provisions no client key.
	WSCAOnly bool
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives security-relevant events; default discards.
	Logger *slog.Logger
}

// Units administers wallet units: their lifecycle, activation codes,
// operator-provisioned client keys and PIN unlock. It is safe for
// concurrent use.
type Units struct {
	base
	st     UnitStore
	server *ServerKeys
	keys   *Keys
	share  *Share // SetShare
	// wscaOnly: codes and client keys need the WSCD's sealing key.
	wscaOnly bool
	ev       Recorder
}

// SetEvidence makes the unit service record its events (unit created,
// state changes, unit destroyed, PIN unlocked) in r; call it before serving.
func (s *Units) SetEvidence(r Recorder) { s.ev = r }

// NewUnits returns a Units over cfg's store and server keys.
func NewUnits(cfg UnitsConfig) (*Units, error) {
	if cfg.Store == nil || cfg.ServerKeys == nil {
		return nil, errors.New("wscd: store and server keys are required")
	}
	return &Units{base: newBase(cfg.Now, cfg.Logger), st: cfg.Store, server: cfg.ServerKeys, keys: cfg.Keys, wscaOnly: cfg.WSCAOnly, ev: noRecorder{}}, nil
}

// Create registers an active wallet unit: the operator's path (a wallet
// then enrols with an activation code).
func (s *Units) Create(ctx context.Context, unit string) error {
	if _, err := device.ParseOwner(unit); err != nil {
		return fmt.Errorf("%w: unit id: %v", ErrInvalidInput, err)
	}
	if reservedUnit(unit) {
		return fmt.Errorf("%w: unit ids starting with %q are reserved", ErrInvalidInput, ReservedPrefix)
	}
	now := s.now().UTC()
	err := s.st.CreateUnit(ctx, store.Unit{ID: unit, State: store.UnitActive, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		return storeErr(err)
	}
	s.log.InfoContext(ctx, "wallet unit created", "unit", unit)
	s.ev.Record(ctx, event.Event{Type: event.UnitCreated, Time: now, Unit: unit})
	return nil
}

// ErrUnitRevoked means the unit is revoked, for good: it gets no
// activation code, enrols no more and is never active again. It wraps
// ErrUnitNotActive.
var ErrUnitRevoked = fmt.Errorf("%w: revoked", ErrUnitNotActive)

// ActivationCode is a code handed to a wallet unit out of band.
type ActivationCode struct {
	Unit      string
	Code      string
	Purpose   store.CodePurpose
	ExpiresAt time.Time
}

// IssueActivationCode makes a one-time code for a unit, replacing any code
// it had. A PIN-reset code also ends every session of the unit at once. A
// revoked unit gets none (ErrUnitRevoked); should it be revoked while its
// code is being made, the store's enrolment refuses the code.
func (s *Units) IssueActivationCode(ctx context.Context, unit string, purpose store.CodePurpose, ttl time.Duration) (ActivationCode, error) {
	if s.wscaOnly {
		return ActivationCode{}, ErrNoDevice
	}
	if _, err := device.ParseOwner(unit); err != nil || reservedUnit(unit) {
		return ActivationCode{}, fmt.Errorf("%w: unit id", ErrInvalidInput)
	}
	u, err := s.Get(ctx, unit)
	if err != nil {
		return ActivationCode{}, err
	}
	if u.State.Final() {
		return ActivationCode{}, ErrUnitRevoked
	}
	if ttl <= 0 {
		ttl = DefaultCodeTTL
	}
	raw := make([]byte, codeBytes)
	if _, err := rand.Read(raw); err != nil {
		return ActivationCode{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	code := codeEncoding.EncodeToString(raw)
	clear(raw)
	// Groups of four: ABCD-EFGH-…
	var b strings.Builder
	for i := 0; i < len(code); i += 4 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(code[i:min(i+4, len(code))])
	}
	now := s.now().UTC()
	c := ActivationCode{Unit: unit, Code: b.String(), Purpose: purpose, ExpiresAt: now.Add(ttl)}
	codeHash, err := s.server.HashActivationCode(ctx, c.Code)
	if err != nil {
		return ActivationCode{}, err
	}
	err = s.st.PutActivationCode(ctx, store.ActivationCode{
		CodeHash: codeHash, UnitID: unit, Purpose: purpose, CreatedAt: now, ExpiresAt: c.ExpiresAt,
	})
	if errors.Is(err, store.ErrUnitNotFound) {
		return ActivationCode{}, ErrUnitNotActive
	}
	if err != nil {
		return ActivationCode{}, storeErr(err)
	}
	if purpose == store.PurposePINReset {
		if err := s.st.DeleteUnitSessions(ctx, unit); err != nil {
			return ActivationCode{}, storeErr(err)
		}
	}
	s.log.InfoContext(ctx, "activation code issued", "unit", unit, "purpose", purpose, "expires", c.ExpiresAt)
	return c, nil
}

// NewUnitID returns a fresh random unit id.
func NewUnitID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "u-" + strings.ToLower(codeEncoding.EncodeToString(b))
}

// Get returns a unit's record.
func (s *Units) Get(ctx context.Context, unit string) (store.Unit, error) {
	u, err := s.st.GetUnit(ctx, unit)
	if errors.Is(err, store.ErrNotFound) {
		return store.Unit{}, ErrUnitNotActive
	}
	if err != nil {
		return store.Unit{}, storeErr(err)
	}
	return u, nil
}

// List lists every unit.
func (s *Units) List(ctx context.Context) ([]store.Unit, error) {
	us, err := s.st.ListUnits(ctx)
	if err != nil {
		return nil, storeErr(err)
	}
	return us, nil
}

// SetState suspends an active unit, resumes a suspended one or revokes
// either, in one conditional write (store.SetUnitState), so a resume racing
// a revocation cannot undo it. Revocation is final (ErrUnitRevoked); any
// other change the state does not allow is ErrInvalidInput. Suspension and
// revocation end the unit's sessions.
func (s *Units) SetState(ctx context.Context, unit string, state store.UnitState) error {
	return s.SetStateBy(ctx, unit, state, store.ByOperator)
}

// ErrOperatorSuspended means the holder asked to lift a suspension the
// operator made: only the operator lifts it.
var ErrOperatorSuspended = errors.New("wscd: the unit was suspended by the operator")

// SetStateBy is SetState as by says: the holder (in a PIN session) lifts
// only a suspension the holder made (ErrOperatorSuspended otherwise).
func (s *Units) SetStateBy(ctx context.Context, unit string, state store.UnitState, by store.Actor) error {
	if _, err := device.ParseOwner(unit); err != nil {
		return fmt.Errorf("%w: unit id", ErrInvalidInput)
	}
	err := s.st.SetUnitStateBy(ctx, unit, state, by, s.now().UTC())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ErrUnitNotActive
	case errors.Is(err, store.ErrStateChange):
		u, gerr := s.st.GetUnit(ctx, unit)
		switch {
		case gerr == nil && u.State.Final():
			return fmt.Errorf("%w: %v", ErrUnitRevoked, err)
		case gerr == nil && u.State == store.UnitSuspended && state == store.UnitActive && by == store.ByHolder:
			return fmt.Errorf("%w: %v", ErrOperatorSuspended, err)
		}
		return fmt.Errorf("%w: %v", ErrInvalidInput, err)
	case errors.Is(err, store.ErrInvalid):
		return fmt.Errorf("%w: %v", ErrInvalidInput, err)
	case err != nil:
		return storeErr(err)
	}
	if state != store.UnitActive {
		if err := s.st.DeleteUnitSessions(ctx, unit); err != nil {
			return storeErr(err)
		}
	}
	s.log.InfoContext(ctx, "unit state changed", "unit", unit, "to", state, "by", by)
	if t, ok := stateEvent(state); ok {
		s.ev.Record(ctx, event.Event{Type: t, Time: s.now(), Unit: unit, Actor: string(by)})
	}
	return nil
}

// stateEvent is the evidence type of a change to a unit state.
func stateEvent(st store.UnitState) (event.Type, bool) {
	switch st {
	case store.UnitRevoked:
		return event.Revoked, true
	case store.UnitSuspended:
		return event.Suspended, true
	case store.UnitActive:
		return event.Unsuspended, true
	}
	return 0, false
}

// SetShare makes provisioned client keys carry their share MAC too (split
// roles); call it before serving.
func (s *Units) SetShare(share *Share) { s.share = share }

func (s *Units) shareMAC(ctx context.Context, k store.ClientKey) ([]byte, error) {
	return ShareMAC(ctx, s.share, k)
}

// ErrNoDevice means an operation needs the WSCD's device (its keys, or the
// key activation codes and client keys are MACed under), which this
// process does not have: a WSCA-only instance.
var ErrNoDevice = errors.New("wscd: this instance has no wallet-key device")

// Destroy destroys a wallet unit for good (ARF WIAM_13/21): it is revoked
// first (so every instance refuses it from then on, and its status entries
// say so), then each of its device keys is destroyed (its wallet keys and
// its SECDSA aU, bound or of an activation in progress, each with a
// key_destroyed event), then everything the store holds of it is erased
// (the blobs of wrapped keys with it) and the unit marked destroyed. A destroyed
// unit's id is never reused. Destroy can be repeated after a failure
// part way, and destroying a destroyed unit changes nothing.
func (s *Units) Destroy(ctx context.Context, unit string) error {
	if s.keys == nil {
		return ErrNoDevice
	}
	u, err := s.Get(ctx, unit)
	if err != nil {
		return err
	}
	if u.State == store.UnitDestroyed {
		return nil
	}
	if u.State != store.UnitRevoked {
		if err := s.SetState(ctx, unit, store.UnitRevoked); err != nil && !errors.Is(err, ErrUnitRevoked) {
			return err
		}
	}
	n, err := s.keys.destroyAll(ctx, unit)
	if err != nil {
		return err
	}
	// Its SECDSA aU keys (bound and of an activation in progress): read,
	// destroyed, then erased with the rest. A unit that is not active
	// gets no new aU (store.SetSECDSAPending, PutSECDSA), so none is
	// missed.
	bound, pending, err := s.st.SECDSAKeys(ctx, unit)
	if err != nil {
		return storeErr(err)
	}
	owner, _ := device.ParseOwner(unit) // Get found it: a valid id
	m, err := destroyAU(ctx, s.base, s.keys.dev, s.ev, owner, aUKey{bound.KID, bound.Wrapped}, aUKey{pending.KID, pending.Wrapped})
	if err != nil {
		return err
	}
	n += m
	// Its HSM OPRF keys (of its PIN records, pending registrations and
	// retired ones): destroyed, then erased with the rest.
	oprf, err := s.st.OPRFKeys(ctx, unit)
	if err != nil {
		return storeErr(err)
	}
	if m, err = destroyOPRF(ctx, s.base, s.keys.dev, s.ev, owner, oprf); err != nil {
		return err
	}
	n += m
	if err := s.st.EraseUnit(ctx, unit, s.now().UTC()); err != nil {
		return storeErr(err)
	}
	s.log.InfoContext(ctx, "wallet unit destroyed", "unit", unit, "device_keys", n)
	s.ev.Record(ctx, event.Event{Type: event.UnitDestroyed, Time: s.now(), Unit: unit, Data: []byte(strconv.Itoa(n))})
	return nil
}

// destroyOPRF destroys a unit's HSM OPRF keys (pin's, named by their
// public point) on the device, each with a key_destroyed event. The
// device checks the owner, so a key of another unit is never touched.
func destroyOPRF(ctx context.Context, b base, dev device.Device, ev Recorder, owner device.Owner, keys []store.OPRFKey) (int, error) {
	for i, k := range keys {
		pub, err := device.PublicKeyFromBytes(k.Public)
		if err != nil {
			return i, fmt.Errorf("wscd: stored OPRF key: %w", err)
		}
		kid, err := device.KIDOf(pub)
		if err != nil {
			return i, fmt.Errorf("wscd: stored OPRF key: %w", err)
		}
		ref := device.Ref{Owner: owner, KID: kid}
		if len(k.Wrapped) > 0 {
			ref.Wrapped = k.Wrapped
		}
		if err := dev.Destroy(ctx, ref); err != nil && !errors.Is(err, device.ErrKeyNotFound) {
			return i, b.deviceErr(ctx, err)
		}
		ev.Record(ctx, destroyedEvent(b.now(), string(owner), string(kid), k.Wrapped))
	}
	return len(keys), nil
}

// UnlockPIN clears a unit's PIN attempt counter and lock in a context: the
// operator's unlock after the unit's holder was identified.
func (s *Units) UnlockPIN(ctx context.Context, unit, pinContext string) error {
	if _, err := s.Get(ctx, unit); err != nil {
		return err
	}
	if err := s.st.ClearAttempts(ctx, unit, pinContext, s.now().UTC()); err != nil {
		return storeErr(err)
	}
	s.log.InfoContext(ctx, "PIN unlocked by operator", "unit", unit, "context", pinContext)
	s.ev.Record(ctx, event.Event{Type: event.PINUnlocked, Time: s.now(), Unit: unit, Context: pinContext, Actor: string(store.ByOperator)})
	return nil
}

// ResetSECDSA is the operator's reset of a unit's SECDSA binding (after
// the holder was identified, e.g. of a locked unit): the binding is
// cleared and any activation in progress removed, so the wallet
// activates again with a new PIN; the unit's last serial number is kept,
// so an instruction spent before stays spent. The aU keys are destroyed
// on the device; the evidence log records each destruction and the unlock
// (pin_unlocked in context "secdsa", by the operator). A unit that has no
// binding or activation gives ErrSECDSANotActivated, a revoked one
// ErrUnitRevoked.
func (s *Units) ResetSECDSA(ctx context.Context, unit string) error {
	if s.keys == nil {
		return ErrNoDevice
	}
	u, err := s.Get(ctx, unit)
	if err != nil {
		return err
	}
	if u.State.Final() {
		return ErrUnitRevoked
	}
	if err := resetSECDSA(ctx, s.base, s.keys.dev, s.st, s.ev, unit); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "SECDSA binding reset by operator", "unit", unit)
	s.ev.Record(ctx, event.Event{Type: event.PINUnlocked, Time: s.now(), Unit: unit, Context: SECDSAContext, Actor: string(store.ByOperator)})
	return nil
}
