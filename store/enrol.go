package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// CodePurpose says what an activation code allows.
type CodePurpose string

const (
	// PurposeActivation enrols a new wallet unit: device key and PIN.
	PurposeActivation CodePurpose = "activation"
	// PurposePINReset replaces a forgotten PIN (and the device key).
	PurposePINReset CodePurpose = "pin_reset"
)

func (p CodePurpose) valid() bool { return p == PurposeActivation || p == PurposePINReset }

// HashSize is the length of the hashes the store keeps instead of
// activation codes, session ids and nonces (SHA-256).
const HashSize = 32

// ActivationCode is a one-time code an operator gives a wallet unit.
type ActivationCode struct {
	// CodeHash is the SHA-256 of the code; the code itself is never stored.
	CodeHash  []byte
	UnitID    string
	Purpose   CodePurpose
	CreatedAt time.Time
	ExpiresAt time.Time
}

// PutActivationCode records a code, replacing any earlier code of the
// unit, so at most one is outstanding.
func (s *Store) PutActivationCode(ctx context.Context, c ActivationCode) error {
	if len(c.CodeHash) != HashSize {
		return invalidf("activation code", "hash must be %d bytes", HashSize)
	}
	if err := checkID("activation code", "unit id", c.UnitID); err != nil {
		return err
	}
	if !c.Purpose.valid() {
		return invalidf("activation code", "unknown purpose %q", c.Purpose)
	}
	created, err := toMicros("activation code", "created at", c.CreatedAt)
	if err != nil {
		return err
	}
	expires, err := toMicros("activation code", "expires at", c.ExpiresAt)
	if err != nil {
		return err
	}
	return s.inTx(ctx, "put activation code", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM activation_codes WHERE unit_id = $1`, c.UnitID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx,
			`INSERT INTO activation_codes (code_hash, unit_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			bytes.Clone(c.CodeHash), c.UnitID, string(c.Purpose), created, expires)
		switch classify(err) {
		case foreignKeyViolation:
			return fmt.Errorf("%w: %q", ErrUnitNotFound, c.UnitID)
		case uniqueViolation:
			return fmt.Errorf("%w: activation code", ErrExists)
		}
		return err
	})
}

// ClientKey is a wallet unit's context signing key (CSK): requests are
// signed with it.
type ClientKey struct {
	// KID is the key's RFC 7638 JWK thumbprint (base64url).
	KID    string
	UnitID string
	// PublicKey is the uncompressed SEC1 point.
	PublicKey []byte
	CreatedAt time.Time
}

// GetClientKey returns the client key with that kid, or [ErrNotFound].
func (s *Store) GetClientKey(ctx context.Context, kid string) (ClientKey, error) {
	if err := checkID("client key", "kid", kid); err != nil {
		return ClientKey{}, err
	}
	var k ClientKey
	var created int64
	err := s.db.QueryRowContext(ctx,
		`SELECT kid, unit_id, public_key, created_at FROM client_keys WHERE kid = $1`, kid).
		Scan(&k.KID, &k.UnitID, &k.PublicKey, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return ClientKey{}, fmt.Errorf("%w: client key %q", ErrNotFound, kid)
	}
	if err != nil {
		return ClientKey{}, fmt.Errorf("store: get client key: %w", err)
	}
	k.CreatedAt = fromMicros(created)
	return k, nil
}

// Enrolment is what a wallet registers with an activation code: its
// device key and its OPAQUE record for one context.
type Enrolment struct {
	CodeHash  []byte
	UnitID    string
	Context   string
	ClientKey ClientKey
	Record    []byte
	Now       time.Time
}

// Enrol consumes an activation code and, in the same transaction, sets the
// unit's client key (replacing earlier ones), stores its PIN record for the
// context, clears its PIN attempt counter there and ends all its sessions.
// A code that is unknown, of another unit or expired gives [ErrNotFound];
// the code is spent either way once it matched the unit. It returns the
// code's purpose.
func (s *Store) Enrol(ctx context.Context, e Enrolment) (CodePurpose, error) {
	if len(e.CodeHash) != HashSize {
		return "", invalidf("enrolment", "code hash must be %d bytes", HashSize)
	}
	for field, v := range map[string]string{"unit id": e.UnitID, "context": e.Context, "client kid": e.ClientKey.KID} {
		if err := checkID("enrolment", field, v); err != nil {
			return "", err
		}
	}
	if e.ClientKey.UnitID != e.UnitID {
		return "", invalidf("enrolment", "client key of another unit")
	}
	if len(e.ClientKey.PublicKey) != PublicKeySize || e.ClientKey.PublicKey[0] != 4 {
		return "", invalidf("enrolment", "client key is not a %d-byte uncompressed point", PublicKeySize)
	}
	if len(e.Record) == 0 {
		return "", invalidf("enrolment", "empty PIN record")
	}
	now, err := toMicros("enrolment", "now", e.Now)
	if err != nil {
		return "", err
	}
	var purpose CodePurpose
	err = s.inTx(ctx, "enrol", func(tx *sql.Tx) error {
		var p string
		var expires int64
		err := tx.QueryRowContext(ctx,
			`DELETE FROM activation_codes WHERE code_hash = $1 AND unit_id = $2 RETURNING purpose, expires_at`,
			e.CodeHash, e.UnitID).Scan(&p, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: activation code", ErrNotFound)
		}
		if err != nil {
			return err
		}
		if expires <= now {
			// Commit the deletion: an expired code is gone for good.
			purpose = ""
			return errExpiredCode
		}
		purpose = CodePurpose(p)
		steps := []struct {
			q    string
			args []any
		}{
			{`DELETE FROM client_keys WHERE unit_id = $1`, []any{e.UnitID}},
			{`INSERT INTO client_keys (kid, unit_id, public_key, created_at) VALUES ($1, $2, $3, $4)`,
				[]any{e.ClientKey.KID, e.UnitID, bytes.Clone(e.ClientKey.PublicKey), now}},
			{`INSERT INTO pin_records (unit_id, context, record, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
			  ON CONFLICT (unit_id, context) DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at`,
				[]any{e.UnitID, e.Context, bytes.Clone(e.Record), now}},
			{`DELETE FROM pin_attempts WHERE unit_id = $1 AND context = $2`, []any{e.UnitID, e.Context}},
			{`DELETE FROM sessions WHERE unit_id = $1`, []any{e.UnitID}},
		}
		for _, st := range steps {
			if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
				if classify(err) == uniqueViolation {
					return fmt.Errorf("%w: client key %q", ErrExists, e.ClientKey.KID)
				}
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errExpiredCode) {
		return "", fmt.Errorf("%w: activation code expired", ErrNotFound)
	}
	return purpose, err
}

// errExpiredCode commits a transaction that only spent an expired code.
var errExpiredCode = errors.New("store: expired code")

// inTx runs fn in a transaction. fn's error rolls back, except
// errExpiredCode, which commits and is returned.
func (s *Store) inTx(ctx context.Context, what string, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		if errors.Is(err, errExpiredCode) {
			if cerr := tx.Commit(); cerr != nil {
				return fmt.Errorf("store: %s: %w", what, cerr)
			}
			return err
		}
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) || errors.Is(err, ErrUnitNotFound) || errors.Is(err, ErrInvalid) {
			return err
		}
		return fmt.Errorf("store: %s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}
