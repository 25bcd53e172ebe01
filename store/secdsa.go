package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"
)

// Errors of the SECDSA counters (docs/secdsa.md, "PIN failure rules").
var (
	// ErrSNUsed means an instruction's serial number is not above the
	// unit's last one: a replay, refused without counting.
	ErrSNUsed = errors.New("store: serial number already used")
	// ErrLocked means the unit's SECDSA binding is locked (too many
	// failures): nothing is admitted until re-activation.
	ErrLocked = errors.New("store: locked")
	// ErrUnitNotActive means a SECDSA aU was to be recorded, or a status
	// entry allocated, for a unit that is not active (being destroyed,
	// revoked or suspended).
	ErrUnitNotActive = errors.New("store: unit not active")
)

// orErr returns err if set, else e.
func orErr(err, e error) error {
	if err != nil {
		return err
	}
	return e
}

// MaxSN is the largest serial number the store keeps (a signed 64-bit
// column on both backends).
const MaxSN = math.MaxInt64

// SECDSAUnit is a unit's SECDSA binding: its derive-only device key aU,
// its Internal Certificate and its counters.
type SECDSAUnit struct {
	UnitID string
	// KID is aU's kid; Wrapped its blob in wrapped storage (else empty).
	KID     string
	Wrapped []byte
	// Cert is the encoded Internal Certificate.
	Cert []byte
	// MAC binds UnitID, KID, Wrapped and Cert under the HSM-derived MAC
	// key (the service computes and checks it).
	MAC []byte
	// LastSN is the last serial number consumed; Failures the failures
	// counted since the last success; Locked is set when they reached
	// the limit.
	LastSN    uint64
	Failures  int
	Locked    bool
	UpdatedAt time.Time
}

// SECDSAPending is an activation in progress: the nonce issued, then the
// new aU once the wallet's request was answered.
type SECDSAPending struct {
	UnitID    string
	Nonce     []byte
	ExpiresAt time.Time
	KID       string
	Wrapped   []byte
	MAC       []byte
}

// GetSECDSA returns a unit's binding, or [ErrNotFound] (also after
// [Store.ResetSECDSA], which keeps only the unit's last serial number).
func (s *Store) GetSECDSA(ctx context.Context, unitID string) (SECDSAUnit, error) {
	if err := checkID("secdsa", "unit id", unitID); err != nil {
		return SECDSAUnit{}, err
	}
	var u SECDSAUnit
	var lastSN, failures, locked, updated int64
	err := s.db.QueryRowContext(ctx,
		`SELECT unit_id, kid, wrapped, cert, mac, last_sn, failures, locked, updated_at FROM secdsa_units WHERE unit_id = $1 AND kid <> ''`,
		unitID).Scan(&u.UnitID, &u.KID, &u.Wrapped, &u.Cert, &u.MAC, &lastSN, &failures, &locked, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return SECDSAUnit{}, fmt.Errorf("%w: secdsa binding", ErrNotFound)
	}
	if err != nil {
		return SECDSAUnit{}, fmt.Errorf("store: get secdsa binding: %w", err)
	}
	u.LastSN, u.Failures, u.Locked, u.UpdatedAt = uint64(lastSN), int(failures), locked != 0, fromMicros(updated)
	return u, nil
}

// PutSECDSANonce starts an activation: it records the provider's nonce
// for the unit, replacing an activation in progress, and returns the
// replaced one (its KID non-empty if it held a new aU the caller must
// destroy).
func (s *Store) PutSECDSANonce(ctx context.Context, unitID string, nonce []byte, expiresAt time.Time) (SECDSAPending, error) {
	if err := checkID("secdsa", "unit id", unitID); err != nil {
		return SECDSAPending{}, err
	}
	if len(nonce) == 0 {
		return SECDSAPending{}, invalidf("secdsa", "empty nonce")
	}
	exp, err := toMicros("secdsa", "expires at", expiresAt)
	if err != nil {
		return SECDSAPending{}, err
	}
	var prev SECDSAPending
	err = s.inTx(ctx, "put secdsa nonce", func(tx *sql.Tx) error {
		var e int64
		err := tx.QueryRowContext(ctx, `DELETE FROM secdsa_activations WHERE unit_id = $1 RETURNING nonce, expires_at, kid, wrapped, mac`,
			unitID).Scan(&prev.Nonce, &e, &prev.KID, &prev.Wrapped, &prev.MAC)
		switch {
		case err == nil:
			prev.UnitID, prev.ExpiresAt = unitID, fromMicros(e)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO secdsa_activations (unit_id, nonce, expires_at, kid, wrapped, mac) VALUES ($1, $2, $3, '', $4, $4)`,
			unitID, bytes.Clone(nonce), exp, []byte{})
		return err
	})
	if classify(err) == foreignKeyViolation {
		return SECDSAPending{}, fmt.Errorf("%w: %q", ErrUnitNotFound, unitID)
	}
	return prev, err
}

// TakeSECDSANonce spends the unit's nonce: it succeeds once for the nonce
// issued, before it expires and before an aU was made for it, and fails
// with [ErrNotFound] otherwise.
func (s *Store) TakeSECDSANonce(ctx context.Context, unitID string, nonce []byte, now time.Time) error {
	if err := checkID("secdsa", "unit id", unitID); err != nil {
		return err
	}
	at, err := toMicros("secdsa", "now", now)
	if err != nil {
		return err
	}
	if len(nonce) == 0 {
		return fmt.Errorf("%w: secdsa nonce", ErrNotFound)
	}
	res, err := s.db.ExecContext(ctx,
		`UPDATE secdsa_activations SET nonce = $4 WHERE unit_id = $1 AND nonce = $2 AND expires_at > $3 AND kid = ''`,
		unitID, bytes.Clone(nonce), at, []byte{})
	return affectedOne(res, err, "secdsa nonce")
}

// SetSECDSAPending records the aU made for the unit's spent nonce, or
// fails with [ErrNotFound] if its activation was replaced meanwhile or the
// unit is no longer active (the caller then destroys the key): a unit
// being destroyed gets no aU that its destruction could miss.
func (s *Store) SetSECDSAPending(ctx context.Context, p SECDSAPending) error {
	if err := checkID("secdsa", "unit id", p.UnitID); err != nil {
		return err
	}
	if err := checkID("secdsa", "kid", p.KID); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx,
		`UPDATE secdsa_activations SET kid = $2, wrapped = $3, mac = $4 WHERE unit_id = $1 AND kid = '' AND length(nonce) = 0
		   AND EXISTS (SELECT 1 FROM units WHERE id = $1 AND state = $5)`,
		p.UnitID, p.KID, nonNil(p.Wrapped), nonNil(p.MAC), string(UnitActive))
	return affectedOne(res, err, "secdsa activation")
}

// TakeSECDSAPending removes and returns the unit's pending aU, or fails
// with [ErrNotFound] if there is none. An expired one is returned too (the
// caller destroys it and refuses).
func (s *Store) TakeSECDSAPending(ctx context.Context, unitID string) (SECDSAPending, error) {
	if err := checkID("secdsa", "unit id", unitID); err != nil {
		return SECDSAPending{}, err
	}
	p := SECDSAPending{UnitID: unitID}
	var e int64
	err := s.db.QueryRowContext(ctx,
		`DELETE FROM secdsa_activations WHERE unit_id = $1 AND kid <> '' RETURNING nonce, expires_at, kid, wrapped, mac`,
		unitID).Scan(&p.Nonce, &e, &p.KID, &p.Wrapped, &p.MAC)
	if errors.Is(err, sql.ErrNoRows) {
		return SECDSAPending{}, fmt.Errorf("%w: secdsa activation", ErrNotFound)
	}
	if err != nil {
		return SECDSAPending{}, fmt.Errorf("store: take secdsa activation: %w", err)
	}
	p.ExpiresAt = fromMicros(e)
	return p, nil
}

// PutSECDSA makes u the unit's binding (a first activation or a
// re-activation) and returns the binding it replaced, if any (Found
// false otherwise), whose aU the caller destroys. The counters restart
// (no failures, not locked) except the last serial number, which is kept:
// an instruction spent under an old certificate stays spent. A unit that
// is not active gets no binding ([ErrUnitNotActive]; the caller destroys
// the key), so a unit's destruction cannot miss an aU bound meanwhile.
func (s *Store) PutSECDSA(ctx context.Context, u SECDSAUnit) (prev SECDSAUnit, found bool, err error) {
	if err := checkID("secdsa", "unit id", u.UnitID); err != nil {
		return SECDSAUnit{}, false, err
	}
	if err := checkID("secdsa", "kid", u.KID); err != nil {
		return SECDSAUnit{}, false, err
	}
	if len(u.Cert) == 0 || len(u.MAC) == 0 {
		return SECDSAUnit{}, false, invalidf("secdsa", "certificate and MAC required")
	}
	at, err := toMicros("secdsa", "updated at", u.UpdatedAt)
	if err != nil {
		return SECDSAUnit{}, false, err
	}
	err = s.inTx(ctx, "put secdsa binding", func(tx *sql.Tx) error {
		var lastSN, failures, locked, updated int64
		err := tx.QueryRowContext(ctx,
			`SELECT unit_id, kid, wrapped, cert, mac, last_sn, failures, locked, updated_at FROM secdsa_units WHERE unit_id = $1`,
			u.UnitID).Scan(&prev.UnitID, &prev.KID, &prev.Wrapped, &prev.Cert, &prev.MAC, &lastSN, &failures, &locked, &updated)
		switch {
		case err == nil:
			found = prev.KID != "" // else reset (ResetSECDSA): only last_sn is left
			prev.LastSN, prev.Failures, prev.Locked, prev.UpdatedAt = uint64(lastSN), int(failures), locked != 0, fromMicros(updated)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		res, err := tx.ExecContext(ctx,
			`INSERT INTO secdsa_units (unit_id, kid, wrapped, cert, mac, last_sn, failures, locked, updated_at)
			 SELECT $1, $2, $3, $4, $5, 0, 0, 0, $6 WHERE EXISTS (SELECT 1 FROM units WHERE id = $1 AND state = $7)
			 ON CONFLICT (unit_id) DO UPDATE SET kid = excluded.kid, wrapped = excluded.wrapped, cert = excluded.cert,
			   mac = excluded.mac, failures = 0, locked = 0, updated_at = excluded.updated_at`,
			u.UnitID, u.KID, nonNil(u.Wrapped), bytes.Clone(u.Cert), bytes.Clone(u.MAC), at, string(UnitActive))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return orErr(err, fmt.Errorf("%w: %q", ErrUnitNotActive, u.UnitID))
		}
		return nil
	})
	if classify(err) == foreignKeyViolation {
		return SECDSAUnit{}, false, fmt.Errorf("%w: %q", ErrUnitNotFound, u.UnitID)
	}
	if err != nil {
		return SECDSAUnit{}, false, fmt.Errorf("store: %w", err)
	}
	return prev, found, nil
}

// SECDSAKeys returns what a unit's SECDSA rows hold of its aU keys: the
// binding's (KID empty if none) and the activation's in progress (KID
// empty if none, or no aU made yet), without changing anything. A unit's
// destruction reads them, destroys the keys, then erases the rows
// ([Store.EraseUnit]), so that a destruction failing part way can be
// repeated.
func (s *Store) SECDSAKeys(ctx context.Context, unitID string) (bound SECDSAUnit, pending SECDSAPending, err error) {
	if err := checkID("secdsa", "unit id", unitID); err != nil {
		return SECDSAUnit{}, SECDSAPending{}, err
	}
	err = s.db.QueryRowContext(ctx, `SELECT kid, wrapped FROM secdsa_units WHERE unit_id = $1 AND kid <> ''`, unitID).
		Scan(&bound.KID, &bound.Wrapped)
	switch {
	case err == nil:
		bound.UnitID = unitID
	case !errors.Is(err, sql.ErrNoRows):
		return SECDSAUnit{}, SECDSAPending{}, fmt.Errorf("store: secdsa keys: %w", err)
	}
	err = s.db.QueryRowContext(ctx, `SELECT kid, wrapped FROM secdsa_activations WHERE unit_id = $1 AND kid <> ''`, unitID).
		Scan(&pending.KID, &pending.Wrapped)
	switch {
	case err == nil:
		pending.UnitID = unitID
	case !errors.Is(err, sql.ErrNoRows):
		return SECDSAUnit{}, SECDSAPending{}, fmt.Errorf("store: secdsa keys: %w", err)
	}
	return bound, pending, nil
}

// ResetSECDSA clears a unit's binding and removes any activation in
// progress (an operator's reset of a locked unit: the wallet activates
// again), and returns what was removed for the caller to destroy the keys;
// [ErrNotFound] if there was nothing. The binding's row keeps only the
// last serial number (kid, blob, certificate and MAC empty, no failures,
// not locked): an instruction spent before the reset stays spent under
// the next binding ([Store.PutSECDSA] keeps it too).
func (s *Store) ResetSECDSA(ctx context.Context, unitID string, now time.Time) (bound SECDSAUnit, pending SECDSAPending, err error) {
	if err := checkID("secdsa", "unit id", unitID); err != nil {
		return SECDSAUnit{}, SECDSAPending{}, err
	}
	at, err := toMicros("secdsa", "now", now)
	if err != nil {
		return SECDSAUnit{}, SECDSAPending{}, err
	}
	n := 0
	err = s.inTx(ctx, "reset secdsa binding", func(tx *sql.Tx) error {
		// Read, then clear: UPDATE … RETURNING returns the new values.
		err := tx.QueryRowContext(ctx, `SELECT kid, wrapped FROM secdsa_units WHERE unit_id = $1 AND kid <> ''`, unitID).
			Scan(&bound.KID, &bound.Wrapped)
		switch {
		case err == nil:
			res, err := tx.ExecContext(ctx,
				`UPDATE secdsa_units SET kid = '', wrapped = $2, cert = $2, mac = $2, failures = 0, locked = 0, updated_at = $3
				 WHERE unit_id = $1 AND kid = $4`, unitID, []byte{}, at, bound.KID)
			if err != nil {
				return err
			}
			if k, err := res.RowsAffected(); err != nil || k != 1 {
				return orErr(err, errors.New("binding changed during its reset"))
			}
			n++
			bound.UnitID = unitID
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		err = tx.QueryRowContext(ctx, `DELETE FROM secdsa_activations WHERE unit_id = $1 RETURNING kid, wrapped`, unitID).
			Scan(&pending.KID, &pending.Wrapped)
		if err == nil {
			n++
			pending.UnitID = unitID
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		return nil
	})
	if err != nil {
		return SECDSAUnit{}, SECDSAPending{}, fmt.Errorf("store: %w", err)
	}
	if n == 0 {
		return SECDSAUnit{}, SECDSAPending{}, fmt.Errorf("%w: secdsa binding", ErrNotFound)
	}
	return bound, pending, nil
}

// SECDSACounter is a binding's counters after an admission.
type SECDSACounter struct {
	LastSN   uint64
	Failures int
	Locked   bool
}

// AdmitSECDSA admits one instruction of the binding (unit, kid) to the
// HSM, in one conditional statement: it consumes sn (last_sn = sn) and
// counts a failure in advance (failures + 1, locked when that reaches
// max), only if sn > last_sn, the binding is not locked and fewer than max
// failures are counted. So a concurrent replay of the same serial number
// loses, whatever the outcome the serial number stays consumed, and
// concurrent wrong PINs from any number of instances are all counted
// while no more than max are ever admitted (as [Store.TakeAttempt] for
// OPAQUE). A success then clears the count (SECDSASucceeded); a device
// error gives the failure back (SECDSAUncount). A refusal is
// [ErrSNUsed], [ErrLocked] or [ErrNotFound] (no such binding: kid is
// checked so that an instruction under a replaced certificate is refused).
func (s *Store) AdmitSECDSA(ctx context.Context, unitID, kid string, sn uint64, max int, now time.Time) (SECDSACounter, error) {
	if err := checkID("secdsa", "unit id", unitID); err != nil {
		return SECDSACounter{}, err
	}
	// A reset binding's row has an empty kid: never an aU's.
	if err := checkID("secdsa", "kid", kid); err != nil {
		return SECDSACounter{}, err
	}
	if max < 1 {
		return SECDSACounter{}, invalidf("secdsa", "max must be at least 1")
	}
	if sn == 0 || sn > MaxSN {
		return SECDSACounter{}, invalidf("secdsa", "serial number out of range")
	}
	at, err := toMicros("secdsa", "now", now)
	if err != nil {
		return SECDSACounter{}, err
	}
	var c SECDSACounter
	var last, failures, locked int64
	err = s.db.QueryRowContext(ctx,
		`UPDATE secdsa_units SET last_sn = $3, failures = failures + 1,
		   locked = CASE WHEN failures + 1 >= $4 THEN 1 ELSE 0 END, updated_at = $5
		 WHERE unit_id = $1 AND kid = $2 AND last_sn < $3 AND locked = 0 AND failures < $4
		 RETURNING last_sn, failures, locked`,
		unitID, kid, int64(sn), max, at).Scan(&last, &failures, &locked)
	if err == nil {
		return SECDSACounter{LastSN: uint64(last), Failures: int(failures), Locked: locked != 0}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return SECDSACounter{}, fmt.Errorf("store: admit secdsa instruction: %w", err)
	}
	u, err := s.GetSECDSA(ctx, unitID)
	switch {
	case err != nil:
		return SECDSACounter{}, err
	case u.KID != kid:
		return SECDSACounter{}, fmt.Errorf("%w: secdsa binding", ErrNotFound)
	}
	c = SECDSACounter{LastSN: u.LastSN, Failures: u.Failures, Locked: u.Locked}
	if u.Locked || u.Failures >= max {
		return c, ErrLocked
	}
	return c, ErrSNUsed
}

// SECDSASucceeded clears the failures and the lock of the binding (unit,
// kid) after an authenticated instruction. A correct PIN may lift the lock
// because it can only come from an admitted instruction, as for OPAQUE
// ([Store.ClearAttempts]).
func (s *Store) SECDSASucceeded(ctx context.Context, unitID, kid string, now time.Time) error {
	at, err := toMicros("secdsa", "now", now)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx,
		`UPDATE secdsa_units SET failures = 0, locked = 0, updated_at = $3 WHERE unit_id = $1 AND kid = $2`, unitID, kid, at)
	return affectedOne(res, err, "secdsa binding")
}

// SECDSAUncount gives back the failure counted in advance for an
// instruction the device could not run (a device error is no PIN
// failure); the serial number stays consumed.
func (s *Store) SECDSAUncount(ctx context.Context, unitID, kid string, max int, now time.Time) error {
	at, err := toMicros("secdsa", "now", now)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx,
		`UPDATE secdsa_units SET failures = failures - 1, locked = CASE WHEN failures - 1 >= $3 THEN 1 ELSE 0 END, updated_at = $4
		 WHERE unit_id = $1 AND kid = $2 AND failures > 0`, unitID, kid, max, at)
	if err != nil {
		return fmt.Errorf("store: uncount secdsa failure: %w", err)
	}
	return nil
}
