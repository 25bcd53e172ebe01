package wsca

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wsca/wsca/store"
)

// Limits of pseudonym storage.
const (
	// MaxSlotNameLen bounds a slot name.
	MaxSlotNameLen = 128
	// MaxPseudonymSize bounds a slot's value before sealing.
	MaxPseudonymSize = 4 << 10
	// DefaultPseudonymQuota is the number of slots a unit may hold.
	DefaultPseudonymQuota = 64
)

// Errors at the package boundary.
var (
	// ErrInvalidInput means a slot name or value breaks the limits.
	ErrInvalidInput = errors.New("wsca: invalid input")
	// ErrNotFound means the unit has no such slot.
	ErrNotFound = errors.New("wsca: not found")
	// ErrQuota means the unit holds as many slots as it may.
	ErrQuota = errors.New("wsca: quota reached")
	// ErrUnavailable means the store failed; try later.
	ErrUnavailable = errors.New("wsca: unavailable")
	// ErrIntegrity means a stored value did not open under its unit and
	// slot: it was changed or moved in the database.
	ErrIntegrity = errors.New("wsca: stored value fails its seal")
)

// Sealer encrypts what the store keeps, under a key the store cannot read;
// ad binds a value to its use. *wscd.Sealer is one.
type Sealer interface {
	Seal(plaintext, ad []byte) ([]byte, error)
	Open(sealed, ad []byte) ([]byte, error)
}

// PseudonymStore is what Pseudonyms needs of the store.
type PseudonymStore interface {
	PutPseudonym(ctx context.Context, unitID, slot string, value []byte, now time.Time, maxPerUnit int) (bool, error)
	GetPseudonym(ctx context.Context, unitID, slot string) (store.Pseudonym, error)
	ListPseudonyms(ctx context.Context, unitID string) ([]store.Pseudonym, error)
	DeletePseudonym(ctx context.Context, unitID, slot string) error
}

// PseudonymsConfig assembles a Pseudonyms.
type PseudonymsConfig struct {
	Store  PseudonymStore
	Sealer Sealer
	// Quota is the number of slots a unit may hold (0: the default).
	Quota  int
	Now    func() time.Time
	Logger *slog.Logger
}

// Pseudonyms is per-unit pseudonym storage (ARF PA_14): named slots whose
// values the store keeps sealed, bound to their unit and slot name. The
// caller has authenticated the unit (an R2PS 2FA session). It is safe for
// concurrent use.
type Pseudonyms struct {
	st     PseudonymStore
	sealer Sealer
	quota  int
	now    func() time.Time
	log    *slog.Logger
}

// NewPseudonyms returns the pseudonym storage over cfg's store and sealer.
func NewPseudonyms(cfg PseudonymsConfig) (*Pseudonyms, error) {
	if cfg.Store == nil || cfg.Sealer == nil {
		return nil, errors.New("wsca: pseudonyms need a store and a sealer")
	}
	p := &Pseudonyms{st: cfg.Store, sealer: cfg.Sealer, quota: cfg.Quota, now: cfg.Now, log: cfg.Logger}
	if p.quota <= 0 {
		p.quota = DefaultPseudonymQuota
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

// Slot describes a stored slot, without its value.
type Slot struct {
	Name                 string
	CreatedAt, UpdatedAt time.Time
}

// CheckSlotName accepts 1 to MaxSlotNameLen characters of A–Z, a–z, 0–9
// and . _ : - (a relying party's identifier fits).
func CheckSlotName(name string) error {
	if name == "" || len(name) > MaxSlotNameLen {
		return fmt.Errorf("%w: slot name of %d bytes (1 to %d)", ErrInvalidInput, len(name), MaxSlotNameLen)
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return fmt.Errorf("%w: slot name has a character outside A-Z a-z 0-9 . _ : -", ErrInvalidInput)
		}
	}
	return nil
}

// pseudonymLabel starts the additional data of a sealed value, followed by
// the length-prefixed unit and slot: a value copied to another unit or
// slot in the database no longer opens.
const pseudonymLabel = "wsca-pseudonym-v1"

func pseudonymAD(unit, slot string) []byte {
	ad := []byte(pseudonymLabel)
	for _, p := range [...]string{unit, slot} {
		ad = binary.BigEndian.AppendUint32(ad, uint32(len(p)))
		ad = append(ad, p...)
	}
	return ad
}

// Put stores value in the unit's slot, replacing what it held, and
// reports whether the slot was new.
func (p *Pseudonyms) Put(ctx context.Context, unit, slot string, value []byte) (created bool, err error) {
	if err := CheckSlotName(slot); err != nil {
		return false, err
	}
	if len(value) == 0 || len(value) > MaxPseudonymSize {
		return false, fmt.Errorf("%w: value of %d bytes (1 to %d)", ErrInvalidInput, len(value), MaxPseudonymSize)
	}
	sealed, err := p.sealer.Seal(value, pseudonymAD(unit, slot))
	if err != nil {
		return false, fmt.Errorf("wsca: seal pseudonym: %w", err)
	}
	created, err = p.st.PutPseudonym(ctx, unit, slot, sealed, p.now().UTC(), p.quota)
	if err != nil {
		return false, storeErr(err)
	}
	p.log.InfoContext(ctx, "pseudonym stored", "unit", unit, "slot", slot, "created", created)
	return created, nil
}

// Get returns the value of the unit's slot.
func (p *Pseudonyms) Get(ctx context.Context, unit, slot string) ([]byte, error) {
	if err := CheckSlotName(slot); err != nil {
		return nil, err
	}
	rec, err := p.st.GetPseudonym(ctx, unit, slot)
	if err != nil {
		return nil, storeErr(err)
	}
	value, err := p.sealer.Open(rec.Value, pseudonymAD(unit, slot))
	if err != nil {
		p.log.ErrorContext(ctx, "pseudonym fails its seal", "unit", unit, "slot", slot)
		return nil, ErrIntegrity
	}
	return value, nil
}

// List returns the unit's slots by name.
func (p *Pseudonyms) List(ctx context.Context, unit string) ([]Slot, error) {
	recs, err := p.st.ListPseudonyms(ctx, unit)
	if err != nil {
		return nil, storeErr(err)
	}
	out := make([]Slot, len(recs))
	for i, r := range recs {
		out[i] = Slot{Name: r.Slot, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	}
	return out, nil
}

// Delete erases the unit's slot.
func (p *Pseudonyms) Delete(ctx context.Context, unit, slot string) error {
	if err := CheckSlotName(slot); err != nil {
		return err
	}
	if err := p.st.DeletePseudonym(ctx, unit, slot); err != nil {
		return storeErr(err)
	}
	p.log.InfoContext(ctx, "pseudonym deleted", "unit", unit, "slot", slot)
	return nil
}

// storeErr maps the store's refusals to this package's errors; any other
// failure of the store is ErrUnavailable.
func storeErr(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, store.ErrQuota):
		return ErrQuota
	case errors.Is(err, store.ErrInvalid), errors.Is(err, store.ErrUnitNotFound):
		return fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
