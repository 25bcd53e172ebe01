package wscd

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wsca/wsca/device"
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
func (s *Service) IssueActivationCode(ctx context.Context, unit string, purpose store.CodePurpose, ttl time.Duration) (ActivationCode, error) {
	if _, err := device.ParseOwner(unit); err != nil || reservedUnit(unit) {
		return ActivationCode{}, fmt.Errorf("%w: unit id", ErrInvalidInput)
	}
	u, err := s.Unit(ctx, unit)
	if err != nil {
		return ActivationCode{}, err
	}
	if u.State == store.UnitRevoked {
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
	codeHash, err := s.HashActivationCode(ctx, c.Code)
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
		return ActivationCode{}, s.storeErr(err)
	}
	if purpose == store.PurposePINReset {
		if err := s.st.DeleteUnitSessions(ctx, unit); err != nil {
			return ActivationCode{}, s.storeErr(err)
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

// Unit returns a unit's record.
func (s *Service) Unit(ctx context.Context, unit string) (store.Unit, error) {
	u, err := s.st.GetUnit(ctx, unit)
	if errors.Is(err, store.ErrNotFound) {
		return store.Unit{}, ErrUnitNotActive
	}
	if err != nil {
		return store.Unit{}, s.storeErr(err)
	}
	return u, nil
}

// Units lists every unit.
func (s *Service) Units(ctx context.Context) ([]store.Unit, error) {
	us, err := s.st.ListUnits(ctx)
	if err != nil {
		return nil, s.storeErr(err)
	}
	return us, nil
}

// SetUnitState suspends an active unit, resumes a suspended one or revokes
// either, in one conditional write (store.SetUnitState), so a resume racing
// a revocation cannot undo it. Revocation is final (ErrUnitRevoked); any
// other change the state does not allow is ErrInvalidInput. Suspension and
// revocation end the unit's sessions.
func (s *Service) SetUnitState(ctx context.Context, unit string, state store.UnitState) error {
	if _, err := device.ParseOwner(unit); err != nil {
		return fmt.Errorf("%w: unit id", ErrInvalidInput)
	}
	err := s.st.SetUnitState(ctx, unit, state, s.now().UTC())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ErrUnitNotActive
	case errors.Is(err, store.ErrStateChange):
		if u, gerr := s.st.GetUnit(ctx, unit); gerr == nil && u.State == store.UnitRevoked {
			return fmt.Errorf("%w: %v", ErrUnitRevoked, err)
		}
		return fmt.Errorf("%w: %v", ErrInvalidInput, err)
	case errors.Is(err, store.ErrInvalid):
		return fmt.Errorf("%w: %v", ErrInvalidInput, err)
	case err != nil:
		return s.storeErr(err)
	}
	if state != store.UnitActive {
		if err := s.st.DeleteUnitSessions(ctx, unit); err != nil {
			return s.storeErr(err)
		}
	}
	s.log.InfoContext(ctx, "unit state changed", "unit", unit, "to", state)
	return nil
}

// UnlockPIN clears a unit's PIN attempt counter and lock in a context: the
// operator's unlock after the unit's holder was identified.
func (s *Service) UnlockPIN(ctx context.Context, unit, pinContext string) error {
	if _, err := s.Unit(ctx, unit); err != nil {
		return err
	}
	if err := s.st.ClearAttempts(ctx, unit, pinContext, s.now().UTC()); err != nil {
		return s.storeErr(err)
	}
	s.log.InfoContext(ctx, "PIN unlocked by operator", "unit", unit, "context", pinContext)
	return nil
}
