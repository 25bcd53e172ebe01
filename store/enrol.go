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

// HasOutstandingCode reports whether the unit has an unexpired activation
// or PIN-reset code: only such a unit may take a self-signed registration.
func (s *Store) HasOutstandingCode(ctx context.Context, unitID string, now time.Time) (bool, error) {
	if err := checkID("activation code", "unit id", unitID); err != nil {
		return false, nil
	}
	at, err := toMicros("activation code", "now", now)
	if err != nil {
		return false, err
	}
	var one int
	err = s.db.QueryRowContext(ctx,
		`SELECT 1 FROM activation_codes WHERE unit_id = $1 AND expires_at > $2 LIMIT 1`, unitID, at).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: outstanding code: %w", err)
	}
	return true, nil
}

// KeyUsage says what a client key is for.
type KeyUsage string

const (
	// UsageSign marks the client signing key (CSK): requests are signed
	// with it.
	UsageSign KeyUsage = "sig"
	// UsageAgree marks the client agreement key (CAK): 1FA responses are
	// encrypted to it.
	UsageAgree KeyUsage = "enc"
)

// ClientKey is one of a wallet unit's context keys.
type ClientKey struct {
	// KID is the key's RFC 7638 JWK thumbprint (base64url).
	KID    string
	UnitID string
	Usage  KeyUsage
	// PublicKey is the uncompressed SEC1 point.
	PublicKey []byte
	// Profile is the R2PS profile the unit enrolled under ("strict" or
	// "compat"); requests in the other profile are refused.
	Profile string
	// MAC binds the row (kid, unit, usage, point, profile) under a key
	// derived from an HSM key; the caller computes and checks it, so a row
	// planted by someone who can write the database does not verify.
	MAC []byte
	// ShareMAC is the same MAC under the share key of split WSCD/WSCA roles
	// (docs/wsca.md), or empty; a WSCA instance reads it as MAC
	// (ShareView).
	ShareMAC  []byte
	CreatedAt time.Time
	// UnitState is the state of the owning unit at the time of the read
	// (filled by the reads, ignored on writes).
	UnitState UnitState
	// Agreement is, on a signing key read by GetClientKey, the unit's
	// agreement key (CAK) read in the same statement, or nil.
	Agreement *ClientKey
}

// selectClientKey reads a client key row, its MAC as col says.
func (s *Store) selectClientKey() string {
	return `SELECT c.kid, c.unit_id, c.usage, c.public_key, c.profile, ` + s.col("c", "mac") + `, c.created_at, u.state
	FROM client_keys c JOIN units u ON u.id = c.unit_id`
}

// GetClientKey returns the client key with that kid, with its unit's state
// and, for a signing key, the unit's agreement key, in one read, or
// [ErrNotFound].
func (s *Store) GetClientKey(ctx context.Context, kid string) (ClientKey, error) {
	if err := checkID("client key", "kid", kid); err != nil {
		return ClientKey{}, err
	}
	var k, a ClientKey
	var usage, state string
	var created int64
	var aKID, aUsage, aProfile sql.NullString
	var aCreated sql.NullInt64
	err := s.db.QueryRowContext(ctx,
		`SELECT c.kid, c.unit_id, c.usage, c.public_key, c.profile, `+s.col("c", "mac")+`, c.created_at, u.state,
		        a.kid, a.usage, a.public_key, a.profile, `+s.col("a", "mac")+`, a.created_at
		 FROM client_keys c JOIN units u ON u.id = c.unit_id
		 LEFT JOIN client_keys a ON a.unit_id = c.unit_id AND a.usage = $2 AND c.usage = $3
		 WHERE c.kid = $1`, kid, string(UsageAgree), string(UsageSign)).
		Scan(&k.KID, &k.UnitID, &usage, &k.PublicKey, &k.Profile, &k.MAC, &created, &state,
			&aKID, &aUsage, &a.PublicKey, &aProfile, &a.MAC, &aCreated)
	if errors.Is(err, sql.ErrNoRows) {
		return ClientKey{}, fmt.Errorf("%w: client key", ErrNotFound)
	}
	if err != nil {
		return ClientKey{}, fmt.Errorf("store: get client key: %w", err)
	}
	k.Usage, k.CreatedAt, k.UnitState = KeyUsage(usage), fromMicros(created), UnitState(state)
	if aKID.Valid {
		a.KID, a.UnitID, a.Usage, a.Profile = aKID.String, k.UnitID, KeyUsage(aUsage.String), aProfile.String
		a.CreatedAt, a.UnitState = fromMicros(aCreated.Int64), k.UnitState
		k.Agreement = &a
	}
	return k, nil
}

// SessionAuth is a session with what authenticating a request made in it
// needs: the unit's state and signing key (zero KID when it has none).
type SessionAuth struct {
	Session
	UnitState  UnitState
	SigningKey ClientKey
}

// GetSessionAuth returns the unexpired session whose id hashes to idHash,
// with its unit's state and signing key, in one read, or [ErrNotFound].
func (s *Store) GetSessionAuth(ctx context.Context, idHash []byte, now time.Time) (SessionAuth, error) {
	if len(idHash) != HashSize {
		return SessionAuth{}, invalidf("session", "id hash must be %d bytes", HashSize)
	}
	at, err := toMicros("session", "now", now)
	if err != nil {
		return SessionAuth{}, err
	}
	sa := SessionAuth{Session: Session{IDHash: bytes.Clone(idHash)}}
	se := &sa.Session
	var state, ustate string
	var created, expires int64
	var cKID, cProfile sql.NullString
	var cCreated sql.NullInt64
	err = s.db.QueryRowContext(ctx,
		`SELECT s.unit_id, s.context, s.state, `+s.col("s", "secret")+`, s.task, s.uses_left, s.created_at, s.expires_at, s.record_nonce,
		        u.state, c.kid, c.public_key, c.profile, `+s.col("c", "mac")+`, c.created_at
		 FROM sessions s JOIN units u ON u.id = s.unit_id
		 LEFT JOIN client_keys c ON c.unit_id = s.unit_id AND c.usage = $3
		 WHERE s.id_hash = $1 AND s.expires_at > $2`, idHash, at, string(UsageSign)).
		Scan(&se.UnitID, &se.Context, &state, &se.Secret, &se.Task, &se.UsesLeft, &created, &expires, &se.RecordNonce,
			&ustate, &cKID, &sa.SigningKey.PublicKey, &cProfile, &sa.SigningKey.MAC, &cCreated)
	if errors.Is(err, sql.ErrNoRows) {
		return SessionAuth{}, fmt.Errorf("%w: session", ErrNotFound)
	}
	if err != nil {
		return SessionAuth{}, fmt.Errorf("store: get session: %w", err)
	}
	se.State, se.CreatedAt, se.ExpiresAt = SessionState(state), fromMicros(created), fromMicros(expires)
	sa.UnitState = UnitState(ustate)
	if cKID.Valid {
		k := &sa.SigningKey
		k.KID, k.UnitID, k.Usage, k.Profile, k.CreatedAt, k.UnitState = cKID.String, se.UnitID, UsageSign, cProfile.String, fromMicros(cCreated.Int64), sa.UnitState
	}
	return sa, nil
}

// GetUnitClientKey returns a unit's client key for a usage, or
// [ErrNotFound].
func (s *Store) GetUnitClientKey(ctx context.Context, unitID string, usage KeyUsage) (ClientKey, error) {
	if err := checkID("client key", "unit id", unitID); err != nil {
		return ClientKey{}, err
	}
	return scanClientKey(s.db.QueryRowContext(ctx, s.selectClientKey()+` WHERE c.unit_id = $1 AND c.usage = $2`,
		unitID, string(usage)))
}

// PutClientKey records an operator-provisioned client key for a unit
// (the compat profile, where the operator, not an activation code, binds
// the wallet's signing key), replacing the unit's keys of that usage if
// they have the same profile ([ErrProfileConflict] otherwise); a revoked
// or destroyed unit gets none ([ErrUnitNotActive]), an unknown one neither
// ([ErrUnitNotFound]).
func (s *Store) PutClientKey(ctx context.Context, k ClientKey) error {
	if err := k.check(k.UnitID, k.Usage); err != nil {
		return err
	}
	created, err := toMicros("client key", "created at", k.CreatedAt)
	if err != nil {
		return err
	}
	return s.inTx(ctx, "put client key", func(tx *sql.Tx) error {
		// Decided with the unit's row locked, so that an enrolment or a
		// revocation committing meanwhile is seen, not overwritten.
		state, err := s.lockUnit(ctx, tx, k.UnitID)
		if err != nil {
			return err
		}
		if state.Final() {
			return fmt.Errorf("%w: unit %q is %s", ErrUnitNotActive, k.UnitID, state)
		}
		var profile string
		err = tx.QueryRowContext(ctx, `SELECT profile FROM client_keys WHERE unit_id = $1 AND usage = $2`, k.UnitID, string(k.Usage)).Scan(&profile)
		switch {
		case err == nil && profile != k.Profile:
			return fmt.Errorf("%w: unit %q holds a %s-profile key", ErrProfileConflict, k.UnitID, profile)
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM client_keys WHERE unit_id = $1 AND usage = $2`, k.UnitID, string(k.Usage)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO client_keys (kid, unit_id, usage, public_key, profile, mac, share_mac, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			k.KID, k.UnitID, string(k.Usage), bytes.Clone(k.PublicKey), k.Profile, bytes.Clone(k.MAC), nonNil(k.ShareMAC), created)
		switch classify(err) {
		case foreignKeyViolation:
			return fmt.Errorf("%w: %q", ErrUnitNotFound, k.UnitID)
		case uniqueViolation:
			return fmt.Errorf("%w: client key", ErrExists)
		}
		return err
	})
}

func scanClientKey(row scanner) (ClientKey, error) {
	var k ClientKey
	var usage, state string
	var created int64
	err := row.Scan(&k.KID, &k.UnitID, &usage, &k.PublicKey, &k.Profile, &k.MAC, &created, &state)
	k.UnitState = UnitState(state)
	if errors.Is(err, sql.ErrNoRows) {
		return ClientKey{}, fmt.Errorf("%w: client key", ErrNotFound)
	}
	if err != nil {
		return ClientKey{}, fmt.Errorf("store: get client key: %w", err)
	}
	k.Usage, k.CreatedAt = KeyUsage(usage), fromMicros(created)
	return k, nil
}

func (k ClientKey) check(unitID string, usage KeyUsage) error {
	if err := checkID("client key", "kid", k.KID); err != nil {
		return err
	}
	switch {
	case k.UnitID != unitID:
		return invalidf("client key", "of another unit")
	case k.Usage != usage:
		return invalidf("client key", "usage %q where %q is needed", k.Usage, usage)
	case len(k.PublicKey) != PublicKeySize || k.PublicKey[0] != 4:
		return invalidf("client key", "not a %d-byte uncompressed point", PublicKeySize)
	case k.Profile == "":
		return invalidf("client key", "no profile")
	case len(k.MAC) == 0:
		return invalidf("client key", "no MAC")
	}
	return checkID("client key", "profile", k.Profile)
}

// PINRecord is an OPAQUE registration record and the nonce of its
// credential identifier, with a MAC binding both to the unit and context
// under a key derived from an HSM key (computed and checked by the caller).
type PINRecord struct {
	Record    []byte
	CredNonce []byte
	MAC       []byte
	// OPRF is the record's HSM-held OPRF key; zero when the OPRF key is
	// derived in software from the sealed seed and CredNonce.
	OPRF OPRFKey
}

// OPRFKey names a derive-only HSM key that holds a PIN record's OPRF key
// (docs/protocol.md, "HSM-bound OPRF key").
type OPRFKey struct {
	// Public is the key's public point, compressed SEC1 (the kid is
	// derived from it); nil for a software OPRF key.
	Public []byte
	// Wrapped is the key's blob in wrapped storage; nil for a token
	// object.
	Wrapped []byte
	// MAC is the key's own MAC (unit, Public, Wrapped), made by the PIN
	// server and checked before the key is used or destroyed.
	MAC []byte
}

// IsZero reports whether k names no HSM key (a software OPRF key).
func (k OPRFKey) IsZero() bool { return len(k.Public) == 0 }

func (r PINRecord) check() error {
	if len(r.Record) == 0 || len(r.CredNonce) == 0 || len(r.MAC) == 0 {
		return invalidf("PIN record", "empty record, nonce or MAC")
	}
	return r.OPRF.check("PIN record")
}

func (k OPRFKey) check(what string) error {
	if k.IsZero() {
		if len(k.Wrapped) != 0 || len(k.MAC) != 0 {
			return invalidf(what, "OPRF key blob or MAC without a public point")
		}
		return nil
	}
	if len(k.MAC) == 0 {
		return invalidf(what, "OPRF key without its MAC")
	}
	return nil
}

// Enrolment is what a wallet registers with an activation code: its
// context keys and its OPAQUE record for one context.
type Enrolment struct {
	CodeHash []byte
	UnitID   string
	Context  string
	// SigningKey (UsageSign) and AgreementKey (UsageAgree) replace the
	// unit's client keys. AgreementKey may be zero (compat clients, whose
	// responses are not encrypted, have none).
	SigningKey   ClientKey
	AgreementKey ClientKey
	Record       PINRecord
	Now          time.Time
}

// Enrol consumes an activation code and, in the same transaction, sets the
// unit's client key (replacing earlier ones), stores its PIN record for the
// context, clears its PIN attempt counter there and ends all its sessions.
// A code that is unknown, of another unit or expired gives [ErrNotFound];
// the code is spent either way once it matched the unit. A unit that is
// missing or revoked gives [ErrNotFound] too. It returns the code's
// purpose.
func (s *Store) Enrol(ctx context.Context, e Enrolment) (CodePurpose, error) {
	if len(e.CodeHash) != HashSize {
		return "", invalidf("enrolment", "code hash must be %d bytes", HashSize)
	}
	if err := checkPINKey(e.UnitID, e.Context); err != nil {
		return "", err
	}
	if err := e.SigningKey.check(e.UnitID, UsageSign); err != nil {
		return "", err
	}
	hasCAK := e.AgreementKey.KID != ""
	if hasCAK {
		if err := e.AgreementKey.check(e.UnitID, UsageAgree); err != nil {
			return "", err
		}
	}
	if err := e.Record.check(); err != nil {
		return "", err
	}
	now, err := toMicros("enrolment", "now", e.Now)
	if err != nil {
		return "", err
	}
	var purpose CodePurpose
	err = s.inTx(ctx, "enrol", func(tx *sql.Tx) error {
		// A revoked or destroyed unit enrols no more. The no-op write locks
		// the unit's row, so a concurrent revocation is ordered before or
		// after.
		res, err := tx.ExecContext(ctx, `UPDATE units SET updated_at = updated_at WHERE id = $1 AND state NOT IN ($2, $3)`,
			e.UnitID, string(UnitRevoked), string(UnitDestroyed))
		if err := affectedOne(res, err, "enrol: unit not found or revoked"); err != nil {
			return err
		}
		var p string
		var expires int64
		err = tx.QueryRowContext(ctx,
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
			{`INSERT INTO client_keys (kid, unit_id, usage, public_key, profile, mac, share_mac, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				[]any{e.SigningKey.KID, e.UnitID, string(UsageSign), bytes.Clone(e.SigningKey.PublicKey), e.SigningKey.Profile, bytes.Clone(e.SigningKey.MAC), nonNil(e.SigningKey.ShareMAC), now}},
			{`INSERT INTO client_keys (kid, unit_id, usage, public_key, profile, mac, share_mac, created_at) SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE $9`,
				[]any{e.AgreementKey.KID, e.UnitID, string(UsageAgree), bytes.Clone(e.AgreementKey.PublicKey), e.AgreementKey.Profile, bytes.Clone(e.AgreementKey.MAC), nonNil(e.AgreementKey.ShareMAC), now, hasCAK}},
			{retireRecordKey, []any{e.UnitID, e.Context}},
			{`INSERT INTO pin_records (unit_id, context, record, cred_nonce, mac, oprf_public, oprf_wrapped, oprf_mac, created_at, updated_at)
			  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
			  ON CONFLICT (unit_id, context) DO UPDATE SET record = excluded.record, cred_nonce = excluded.cred_nonce, mac = excluded.mac,
			  oprf_public = excluded.oprf_public, oprf_wrapped = excluded.oprf_wrapped, oprf_mac = excluded.oprf_mac, updated_at = excluded.updated_at`,
				[]any{e.UnitID, e.Context, bytes.Clone(e.Record.Record), bytes.Clone(e.Record.CredNonce), bytes.Clone(e.Record.MAC),
					nonNil(e.Record.OPRF.Public), nonNil(e.Record.OPRF.Wrapped), nonNil(e.Record.OPRF.MAC), now}},
			{`DELETE FROM pin_attempts WHERE unit_id = $1 AND context = $2`, []any{e.UnitID, e.Context}},
			{`DELETE FROM sessions WHERE unit_id = $1`, []any{e.UnitID}},
		}
		for _, st := range steps {
			if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
				if classify(err) == uniqueViolation {
					return fmt.Errorf("%w: client key", ErrExists)
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
	tx, done, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	defer done()
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
