package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// KeyState is the lifecycle state of a key record.
type KeyState string

const (
	KeyActive KeyState = "active"
	// KeyDestroying marks a key whose device object is being destroyed, so
	// that a crash between the device call and DeleteKey is visible.
	KeyDestroying KeyState = "destroying"
)

func (s KeyState) valid() bool {
	return s == KeyActive || s == KeyDestroying
}

// PublicKeySize is the length of an uncompressed SEC1 P-256 point
// (SEC 1 v2.0 §2.3.3): 0x04 ‖ X ‖ Y.
const PublicKeySize = 65

// Key is the record of a device key: its owner and public part. The private
// part never leaves the device.
type Key struct {
	KID    string
	UnitID string
	// PublicKey is the uncompressed SEC1 point.
	PublicKey []byte
	// Backend names the device holding the key ("pkcs11", "soft").
	Backend string
	// Context is the security context of the session that made the key
	// ("" for keys an operator made); the key obeys that context's rules.
	Context   string
	State     KeyState
	CreatedAt time.Time
	// Wrapped is the key's blob when its device keeps keys wrapped
	// (docs/wrapped-keys.md), and WrappedMAC the caller's MAC binding the
	// blob to the owner and kid; both empty for a token object.
	Wrapped, WrappedMAC []byte
	// MAC binds the row (kid, unit, context, backend, point) under a key
	// derived from the WSCD's HSM (wscd.KeyMAC); the caller computes and
	// checks it, so a row someone who can write the database planted or
	// changed is not attested. Empty for a row made before schema 0014
	// that the WSCD has not proven with its device yet.
	MAC []byte
	// ShareMAC is the same MAC under the share key of split WSCD/WSCA
	// roles (docs/wsca.md), or empty; written only: a WSCA instance reads
	// it as MAC (ShareView).
	ShareMAC []byte
}

// InsertKey records a key. It fails with [ErrExists] if the kid is taken
// (by any unit) and with [ErrUnitNotFound] if the unit does not exist.
func (s *Store) InsertKey(ctx context.Context, k Key) error {
	return s.InsertKeyLimited(ctx, k, 0)
}

// InsertKeyLimited is InsertKey that also fails with [ErrQuota] when the
// unit already has maxPerUnit keys (0: no limit). The count and the insert
// are one statement; concurrent inserts on PostgreSQL may each see the
// count before the others, so the bound can be exceeded by the number of
// concurrent calls, never more.
func (s *Store) InsertKeyLimited(ctx context.Context, k Key, maxPerUnit int) error {
	if maxPerUnit < 0 {
		return invalidf("key", "negative quota")
	}
	// Copy first, so that the caller cannot change the point after it is
	// checked.
	k.PublicKey = bytes.Clone(k.PublicKey)
	created, err := k.check()
	if err != nil {
		return err
	}
	if err := checkContext("key", k.Context); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO keys (kid, unit_id, public_key, backend, state, created_at, context, wrapped, wrapped_mac, mac, share_mac)
		 SELECT $1, $2, $3, $4, $5, $6, $7, $9, $10, $11, $12
		 WHERE $8 = 0 OR (SELECT count(*) FROM keys WHERE unit_id = $2) < $8`,
		k.KID, k.UnitID, k.PublicKey, k.Backend, string(k.State), created, k.Context, maxPerUnit, nonNil(k.Wrapped), nonNil(k.WrappedMAC),
		nonNil(k.MAC), nonNil(k.ShareMAC))
	if err == nil {
		if n, rerr := res.RowsAffected(); rerr == nil && n == 0 {
			return fmt.Errorf("%w: unit %q has %d keys", ErrQuota, k.UnitID, maxPerUnit)
		}
	}
	switch classify(err) {
	case uniqueViolation:
		return fmt.Errorf("%w: key %q", ErrExists, k.KID)
	case foreignKeyViolation:
		// The foreign key checks the unit in the same statement, so a unit
		// deleted concurrently cannot be left with a key.
		return fmt.Errorf("%w: %q", ErrUnitNotFound, k.UnitID)
	}
	if err != nil {
		return fmt.Errorf("store: insert key: %w", err)
	}
	return nil
}

// check validates k and returns its CreatedAt in microseconds.
func (k *Key) check() (int64, error) {
	if err := checkID("key", "kid", k.KID); err != nil {
		return 0, err
	}
	if err := checkID("key", "unit id", k.UnitID); err != nil {
		return 0, err
	}
	if err := checkID("key", "backend", k.Backend); err != nil {
		return 0, err
	}
	if len(k.PublicKey) != PublicKeySize || k.PublicKey[0] != 0x04 {
		return 0, invalidf("key", "public key is not a %d-byte uncompressed point", PublicKeySize)
	}
	if !k.State.valid() {
		return 0, invalidf("key", "unknown state %q", k.State)
	}
	return toMicros("key", "created at", k.CreatedAt)
}

// selectKey reads a key row, its MAC as col says (the share MAC in a
// ShareView).
func (s *Store) selectKey() string {
	return `SELECT keys.kid, keys.unit_id, keys.public_key, keys.backend, keys.state, keys.created_at, keys.context, keys.wrapped, keys.wrapped_mac, ` +
		s.col("keys", "mac") + ` FROM keys`
}

// GetKey returns the key with that kid, or [ErrNotFound]. The caller checks
// that its UnitID is the unit asking.
func (s *Store) GetKey(ctx context.Context, kid string) (Key, error) {
	if err := checkID("key", "kid", kid); err != nil {
		return Key{}, err
	}
	k, err := scanKey(s.db.QueryRowContext(ctx, s.selectKey()+` WHERE kid = $1`, kid))
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, fmt.Errorf("%w: key %q", ErrNotFound, kid)
	}
	if err != nil {
		return Key{}, fmt.Errorf("store: get key: %w", err)
	}
	return k, nil
}

// KeyAccess is what an ownership check needs in one read: the key's owner
// and the states of the key and of its owner.
type KeyAccess struct {
	UnitID    string
	Context   string
	KeyState  KeyState
	UnitState UnitState
	// Wrapped and WrappedMAC are the key's blob and its MAC (Key), empty
	// for a token object; the caller checks the MAC before the device sees
	// the blob.
	Wrapped, WrappedMAC []byte
	// Logged: the read also appended the operation's evidence event, with
	// the nonce (UseNonceInSessionEvent).
	Logged bool
}

// GetKeyAccess returns the owner and states of the key with that kid, or
// [ErrNotFound]. It is the hot path of every key operation, so it is one
// indexed join rather than GetKey and GetUnit.
func (s *Store) GetKeyAccess(ctx context.Context, kid string) (KeyAccess, error) {
	if err := checkID("key", "kid", kid); err != nil {
		return KeyAccess{}, err
	}
	var a KeyAccess
	var ks, us string
	err := s.db.QueryRowContext(ctx,
		`SELECT k.unit_id, k.context, k.state, u.state, k.wrapped, k.wrapped_mac FROM keys k JOIN units u ON u.id = k.unit_id WHERE k.kid = $1`,
		kid).Scan(&a.UnitID, &a.Context, &ks, &us, &a.Wrapped, &a.WrappedMAC)
	if errors.Is(err, sql.ErrNoRows) {
		return KeyAccess{}, fmt.Errorf("%w: key %q", ErrNotFound, kid)
	}
	if err != nil {
		return KeyAccess{}, fmt.Errorf("store: get key access: %w", err)
	}
	a.KeyState, a.UnitState = KeyState(ks), UnitState(us)
	a.Wrapped, a.WrappedMAC = emptyNil(a.Wrapped), emptyNil(a.WrappedMAC)
	return a, nil
}

// ListKeys returns the keys of one unit, oldest first (ties by kid). A unit
// without keys, or one that does not exist, has none.
func (s *Store) ListKeys(ctx context.Context, unitID string) ([]Key, error) {
	if err := checkID("key", "unit id", unitID); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx,
		s.selectKey()+` WHERE unit_id = $1 ORDER BY created_at, kid`, unitID)
	if err != nil {
		return nil, fmt.Errorf("store: list keys: %w", err)
	}
	defer rows.Close()
	var ks []Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list keys: %w", err)
		}
		ks = append(ks, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list keys: %w", err)
	}
	return ks, nil
}

// CountKeys returns how many keys (in any state) a unit has.
func (s *Store) CountKeys(ctx context.Context, unitID string) (int, error) {
	if err := checkID("key", "unit id", unitID); err != nil {
		return 0, err
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM keys WHERE unit_id = $1`, unitID).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count keys: %w", err)
	}
	return n, nil
}

// SetKeyState changes a key's state, or fails with [ErrNotFound].
func (s *Store) SetKeyState(ctx context.Context, kid string, st KeyState) error {
	if err := checkID("key", "kid", kid); err != nil {
		return err
	}
	if !st.valid() {
		return invalidf("key", "unknown state %q", st)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE keys SET state = $1 WHERE kid = $2`, string(st), kid)
	if err != nil {
		return fmt.Errorf("store: set key state: %w", err)
	}
	return oneRow(res, "key", kid)
}

// DeleteKey removes a key record, or fails with [ErrNotFound].
func (s *Store) DeleteKey(ctx context.Context, kid string) error {
	if err := checkID("key", "kid", kid); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM keys WHERE kid = $1`, kid)
	if err != nil {
		return fmt.Errorf("store: delete key: %w", err)
	}
	return oneRow(res, "key", kid)
}

func scanKey(row scanner) (Key, error) {
	var (
		k       Key
		state   string
		created int64
	)
	// database/sql copies into a []byte destination, so the slice is the
	// caller's own.
	if err := row.Scan(&k.KID, &k.UnitID, &k.PublicKey, &k.Backend, &state, &created, &k.Context, &k.Wrapped, &k.WrappedMAC, &k.MAC); err != nil {
		return Key{}, err
	}
	k.State = KeyState(state)
	k.CreatedAt = fromMicros(created)
	k.Wrapped, k.WrappedMAC, k.MAC = emptyNil(k.Wrapped), emptyNil(k.WrappedMAC), emptyNil(k.MAC)
	return k, nil
}

// emptyNil is b, or nil when b is empty: a token object's record reads
// back no blob, not an empty one.
func emptyNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// KeysWithoutMAC returns up to limit active keys with a kid after after
// (bytewise) that have no MAC yet (made before schema 0014), for the WSCD
// to prove with its device and MAC (SetKeyMAC).
func (s *Store) KeysWithoutMAC(ctx context.Context, after string, limit int) ([]Key, error) {
	return s.keysWhere(ctx, "keys without MAC", `length(keys.mac) = 0`, after, limit)
}

// KeysWithoutShareMAC returns up to limit active keys with a kid after
// after (bytewise) that have a MAC but no share MAC yet (made before a
// WSCA instance existed), for the WSCD to check their MAC and give them
// one (SetKeyShareMAC).
func (s *Store) KeysWithoutShareMAC(ctx context.Context, after string, limit int) ([]Key, error) {
	return s.keysWhere(ctx, "keys without share MAC", `length(keys.share_mac) = 0 AND length(keys.mac) > 0`, after, limit)
}

// keysWhere reads up to limit active keys matching cond (SQL without
// parameters) with a kid after after, by kid.
func (s *Store) keysWhere(ctx context.Context, what, cond, after string, limit int) ([]Key, error) {
	if limit <= 0 {
		return nil, invalidf("key", "limit %d", limit)
	}
	rows, err := s.db.QueryContext(ctx, s.selectKey()+` WHERE `+cond+` AND keys.state = $1 AND keys.kid > $2 ORDER BY keys.kid LIMIT $3`,
		string(KeyActive), after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("store: %s: %w", what, err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return out, nil
}

// SetKeyMAC records the MAC of a key that had none, if its row still holds
// what k says (unit, point, backend, context) and is active; otherwise it
// fails with [ErrNotFound] and changes nothing. A MAC is never replaced.
func (s *Store) SetKeyMAC(ctx context.Context, k Key, mac []byte) error {
	if err := checkID("key", "kid", k.KID); err != nil {
		return err
	}
	if len(mac) == 0 {
		return invalidf("key", "empty MAC")
	}
	res, err := s.db.ExecContext(ctx,
		`UPDATE keys SET mac = $1 WHERE kid = $2 AND unit_id = $3 AND public_key = $4 AND backend = $5 AND context = $6
		 AND state = $7 AND length(mac) = 0`,
		bytes.Clone(mac), k.KID, k.UnitID, bytes.Clone(k.PublicKey), k.Backend, k.Context, string(KeyActive))
	if err != nil {
		return fmt.Errorf("store: set key MAC: %w", err)
	}
	return oneRow(res, "key", k.KID)
}

// SetKeyShareMAC records a key's MAC under the share key of split roles,
// if the key is still the one with that point; otherwise it fails with
// [ErrNotFound].
func (s *Store) SetKeyShareMAC(ctx context.Context, kid string, publicKey, mac []byte) error {
	if err := checkID("key", "kid", kid); err != nil {
		return err
	}
	if len(mac) == 0 {
		return invalidf("key", "empty share MAC")
	}
	res, err := s.db.ExecContext(ctx, `UPDATE keys SET share_mac = $1 WHERE kid = $2 AND public_key = $3`,
		bytes.Clone(mac), kid, bytes.Clone(publicKey))
	if err != nil {
		return fmt.Errorf("store: set key share MAC: %w", err)
	}
	return oneRow(res, "key", kid)
}
