package store

import (
	"bytes"
	"context"
	"fmt"
)

// Re-wrapping and migration of wrapped keys (docs/wrapped-keys.md). The
// store knows nothing of a blob's format: callers name the blobs to work on
// by a leading byte string (the header that names the wrapping key), and
// every change is a compare-and-swap on the blob the caller read, so that
// a concurrent destroy or another re-wrapper wins and the loser's blob is
// discarded.

// MaxBlobBatch bounds one page of KeyBlobsNotUnder and TokenKeys.
const MaxBlobBatch = 10_000

// KeyBlob is a wallet key's record as re-wrapping and migration see it.
type KeyBlob struct {
	KID, UnitID string
	// Backend names the device that made the key.
	Backend string
	// Wrapped and WrappedMAC are the blob and its MAC; empty for a token
	// object.
	Wrapped, WrappedMAC []byte
}

// BlobCount is how many blobs start with Prefix.
type BlobCount struct {
	Prefix []byte
	// Keys counts wallet keys in any state (a key being destroyed still
	// names its wrapping key), ServerKeys the server's keys, OPRFKeys the
	// PIN records' HSM OPRF keys (of records, pending registrations and
	// retired keys not yet destroyed), which no re-wrap moves.
	Keys, ServerKeys, OPRFKeys int64
}

func checkPage(after string, limit int) error {
	if after != "" {
		if err := checkID("key", "cursor", after); err != nil {
			return err
		}
	}
	if limit < 1 || limit > MaxBlobBatch {
		return invalidf("key", "page size %d outside 1..%d", limit, MaxBlobBatch)
	}
	return nil
}

// KeyBlobsNotUnder returns, by kid, up to limit active wallet keys with a
// kid after after ("" for the first page) whose blob is set and does not
// start with prefix: the keys still to re-wrap.
func (s *Store) KeyBlobsNotUnder(ctx context.Context, prefix []byte, after string, limit int) ([]KeyBlob, error) {
	if len(prefix) == 0 {
		return nil, invalidf("key", "empty blob prefix")
	}
	if err := checkPage(after, limit); err != nil {
		return nil, err
	}
	return s.keyBlobs(ctx,
		`SELECT kid, unit_id, backend, wrapped, wrapped_mac FROM keys
		 WHERE kid > $1 AND state = $2 AND length(wrapped) > 0 AND substr(wrapped, 2, $3) <> $4
		 ORDER BY kid LIMIT $5`,
		after, string(KeyActive), len(prefix), bytes.Clone(prefix), limit)
}

// CountKeyBlobsNotUnder counts the keys KeyBlobsNotUnder would return from
// after on, without a limit.
func (s *Store) CountKeyBlobsNotUnder(ctx context.Context, prefix []byte, after string) (int64, error) {
	if len(prefix) == 0 {
		return 0, invalidf("key", "empty blob prefix")
	}
	if err := checkPage(after, 1); err != nil {
		return 0, err
	}
	var n int64
	err := s.db.QueryRowContext(ctx,
		`SELECT count(*) FROM keys
		 WHERE kid > $1 AND state = $2 AND length(wrapped) > 0 AND substr(wrapped, 2, $3) <> $4`,
		after, string(KeyActive), len(prefix), bytes.Clone(prefix)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count key blobs: %w", err)
	}
	return n, nil
}

// KeyBlobsUnder returns, by kid, up to limit wallet keys (in any state)
// whose blob starts with prefix after its version byte: a sample of the
// blobs under one wrapping key, whose MACs say whether this store made
// them.
func (s *Store) KeyBlobsUnder(ctx context.Context, prefix []byte, limit int) ([]KeyBlob, error) {
	if len(prefix) == 0 {
		return nil, invalidf("key", "empty blob prefix")
	}
	if err := checkPage("", limit); err != nil {
		return nil, err
	}
	return s.keyBlobs(ctx,
		`SELECT kid, unit_id, backend, wrapped, wrapped_mac FROM keys
		 WHERE length(wrapped) > 0 AND substr(wrapped, 2, $1) = $2
		 ORDER BY kid LIMIT $3`,
		len(prefix), bytes.Clone(prefix), limit)
}

// TokenKeys returns, by kid, up to limit active wallet keys of backend
// with a kid after after ("" for the first page) that have no blob: token
// objects, to migrate.
func (s *Store) TokenKeys(ctx context.Context, backend, after string, limit int) ([]KeyBlob, error) {
	if err := checkID("key", "backend", backend); err != nil {
		return nil, err
	}
	if err := checkPage(after, limit); err != nil {
		return nil, err
	}
	return s.keyBlobs(ctx,
		`SELECT kid, unit_id, backend, wrapped, wrapped_mac FROM keys
		 WHERE kid > $1 AND state = $2 AND backend = $3 AND length(wrapped) = 0
		 ORDER BY kid LIMIT $4`,
		after, string(KeyActive), backend, limit)
}

// CountTokenKeys counts the keys TokenKeys would return from after on,
// without a limit.
func (s *Store) CountTokenKeys(ctx context.Context, backend, after string) (int64, error) {
	if err := checkID("key", "backend", backend); err != nil {
		return 0, err
	}
	if err := checkPage(after, 1); err != nil {
		return 0, err
	}
	var n int64
	err := s.db.QueryRowContext(ctx,
		`SELECT count(*) FROM keys WHERE kid > $1 AND state = $2 AND backend = $3 AND length(wrapped) = 0`,
		after, string(KeyActive), backend).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count token keys: %w", err)
	}
	return n, nil
}

func (s *Store) keyBlobs(ctx context.Context, query string, args ...any) ([]KeyBlob, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list key blobs: %w", err)
	}
	defer rows.Close()
	var out []KeyBlob
	for rows.Next() {
		var k KeyBlob
		if err := rows.Scan(&k.KID, &k.UnitID, &k.Backend, &k.Wrapped, &k.WrappedMAC); err != nil {
			return nil, fmt.Errorf("store: list key blobs: %w", err)
		}
		k.Wrapped, k.WrappedMAC = emptyNil(k.Wrapped), emptyNil(k.WrappedMAC)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list key blobs: %w", err)
	}
	return out, nil
}

// SwapKeyBlob sets the blob and MAC of the active key kid if its blob is
// still old (nil: a token object's record, no blob), and reports whether
// it did. A key destroyed, being destroyed or re-wrapped by someone else
// meanwhile is left alone (false): the caller discards its blob.
func (s *Store) SwapKeyBlob(ctx context.Context, kid string, old, blob, mac []byte) (bool, error) {
	if err := checkID("key", "kid", kid); err != nil {
		return false, err
	}
	if len(blob) == 0 || len(mac) == 0 {
		return false, invalidf("key", "empty blob or MAC")
	}
	res, err := s.db.ExecContext(ctx,
		`UPDATE keys SET wrapped = $1, wrapped_mac = $2 WHERE kid = $3 AND state = $4 AND wrapped = $5`,
		bytes.Clone(blob), bytes.Clone(mac), kid, string(KeyActive), nonNil(old))
	if err != nil {
		return false, fmt.Errorf("store: swap key blob: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: swap key blob: %w", err)
	}
	return n == 1, nil
}

// ServerKeyBlobs returns the server keys that have a blob, by purpose.
func (s *Store) ServerKeyBlobs(ctx context.Context) ([]ServerKey, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT purpose, kid, public_key, wrapped, created_at FROM server_keys WHERE length(wrapped) > 0 ORDER BY purpose`)
	if err != nil {
		return nil, fmt.Errorf("store: list server key blobs: %w", err)
	}
	defer rows.Close()
	var out []ServerKey
	for rows.Next() {
		var k ServerKey
		var created int64
		if err := rows.Scan(&k.Purpose, &k.KID, &k.PublicKey, &k.Wrapped, &created); err != nil {
			return nil, fmt.Errorf("store: list server key blobs: %w", err)
		}
		k.CreatedAt = fromMicros(created)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list server key blobs: %w", err)
	}
	return out, nil
}

// SwapServerKeyBlob sets the blob of the server key for purpose if it is
// still the key kid with blob old, and reports whether it did.
func (s *Store) SwapServerKeyBlob(ctx context.Context, purpose, kid string, old, blob []byte) (bool, error) {
	if err := checkID("server key", "purpose", purpose); err != nil {
		return false, err
	}
	if err := checkID("server key", "kid", kid); err != nil {
		return false, err
	}
	if len(old) == 0 || len(blob) == 0 {
		return false, invalidf("server key", "empty blob")
	}
	res, err := s.db.ExecContext(ctx,
		`UPDATE server_keys SET wrapped = $1 WHERE purpose = $2 AND kid = $3 AND wrapped = $4`,
		bytes.Clone(blob), purpose, kid, bytes.Clone(old))
	if err != nil {
		return false, fmt.Errorf("store: swap server key blob: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: swap server key blob: %w", err)
	}
	return n == 1, nil
}

// BlobCounts groups every blob by its n bytes after the version byte (the
// wrapping key and mechanism): wallet keys in any state, SECDSA keys (bound
// or in an activation; counted with the wallet keys), server keys and HSM
// OPRF keys (of PIN records, pending registrations and retired). A
// wrapping key no group names may be deleted, so every table that holds
// blobs must be here.
func (s *Store) BlobCounts(ctx context.Context, n int) ([]BlobCount, error) {
	if n < 1 || n > 64 {
		return nil, invalidf("key", "prefix length %d outside 1..64", n)
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT p, sum(k), sum(sk), sum(ok) FROM (
		   SELECT substr(wrapped, 2, $1) AS p, 1 AS k, 0 AS sk, 0 AS ok FROM keys WHERE length(wrapped) > 0
		   UNION ALL
		   SELECT substr(wrapped, 2, $1) AS p, 0 AS k, 1 AS sk, 0 AS ok FROM server_keys WHERE length(wrapped) > 0
		   UNION ALL
		   SELECT substr(wrapped, 2, $1) AS p, 1 AS k, 0 AS sk, 0 AS ok FROM secdsa_units WHERE length(wrapped) > 0
		   UNION ALL
		   SELECT substr(wrapped, 2, $1) AS p, 1 AS k, 0 AS sk, 0 AS ok FROM secdsa_activations WHERE length(wrapped) > 0
		   UNION ALL
		   SELECT substr(oprf_wrapped, 2, $1) AS p, 0 AS k, 0 AS sk, 1 AS ok FROM pin_records WHERE length(oprf_wrapped) > 0
		   UNION ALL
		   SELECT substr(oprf_wrapped, 2, $1) AS p, 0 AS k, 0 AS sk, 1 AS ok FROM pin_registrations WHERE length(oprf_wrapped) > 0
		   UNION ALL
		   SELECT substr(wrapped, 2, $1) AS p, 0 AS k, 0 AS sk, 1 AS ok FROM oprf_retired WHERE length(wrapped) > 0
		 ) b GROUP BY p ORDER BY p`, n)
	if err != nil {
		return nil, fmt.Errorf("store: count blobs: %w", err)
	}
	defer rows.Close()
	var out []BlobCount
	for rows.Next() {
		var c BlobCount
		if err := rows.Scan(&c.Prefix, &c.Keys, &c.ServerKeys, &c.OPRFKeys); err != nil {
			return nil, fmt.Errorf("store: count blobs: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: count blobs: %w", err)
	}
	return out, nil
}

// SECDSABlob is a SECDSA aU's record as re-wrapping sees it: a unit's
// binding (Pending false) or its activation in progress (Pending true).
type SECDSABlob struct {
	UnitID  string
	Pending bool
	KID     string
	// Wrapped is aU's blob, MAC the row's MAC (over the unit, the kid,
	// the blob and, for a binding, Cert).
	Wrapped, MAC []byte
	// Cert is the binding's Internal Certificate (empty when Pending).
	Cert []byte
}

// secdsaBlobTable is the table of a binding or of an activation.
func secdsaBlobTable(pending bool) string {
	if pending {
		return "secdsa_activations"
	}
	return "secdsa_units"
}

// SECDSABlobsNotUnder returns, by unit id, up to limit SECDSA aU records
// (bindings, or activations in progress when pending) of units after
// after ("" for the first page) whose blob is set and does not start with
// prefix after its version byte: the aU keys still to re-wrap.
func (s *Store) SECDSABlobsNotUnder(ctx context.Context, prefix []byte, pending bool, after string, limit int) ([]SECDSABlob, error) {
	if len(prefix) == 0 {
		return nil, invalidf("secdsa", "empty blob prefix")
	}
	if err := checkPage(after, limit); err != nil {
		return nil, err
	}
	cols := "unit_id, kid, wrapped, mac, cert"
	if pending {
		cols = "unit_id, kid, wrapped, mac"
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+cols+` FROM `+secdsaBlobTable(pending)+`
		 WHERE unit_id > $1 AND kid <> '' AND length(wrapped) > 0 AND substr(wrapped, 2, $2) <> $3
		 ORDER BY unit_id LIMIT $4`,
		after, len(prefix), bytes.Clone(prefix), limit)
	if err != nil {
		return nil, fmt.Errorf("store: list secdsa blobs: %w", err)
	}
	defer rows.Close()
	var out []SECDSABlob
	for rows.Next() {
		b := SECDSABlob{Pending: pending}
		dest := []any{&b.UnitID, &b.KID, &b.Wrapped, &b.MAC, &b.Cert}
		if pending {
			dest = dest[:4]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("store: list secdsa blobs: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list secdsa blobs: %w", err)
	}
	return out, nil
}

// CountSECDSABlobsNotUnder counts the records SECDSABlobsNotUnder would
// return from after on, without a limit.
func (s *Store) CountSECDSABlobsNotUnder(ctx context.Context, prefix []byte, pending bool, after string) (int64, error) {
	if len(prefix) == 0 {
		return 0, invalidf("secdsa", "empty blob prefix")
	}
	if err := checkPage(after, 1); err != nil {
		return 0, err
	}
	var n int64
	err := s.db.QueryRowContext(ctx,
		`SELECT count(*) FROM `+secdsaBlobTable(pending)+`
		 WHERE unit_id > $1 AND kid <> '' AND length(wrapped) > 0 AND substr(wrapped, 2, $2) <> $3`,
		after, len(prefix), bytes.Clone(prefix)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count secdsa blobs: %w", err)
	}
	return n, nil
}

// SwapSECDSABlob sets the blob and MAC of the record old names (a binding
// or an activation in progress) if it still holds old's kid, blob and,
// for a binding, certificate, and reports whether it did. A record reset,
// replaced, finished, erased or re-wrapped by someone else meanwhile is
// left alone (false): the caller discards its blob.
func (s *Store) SwapSECDSABlob(ctx context.Context, old SECDSABlob, blob, mac []byte) (bool, error) {
	if err := checkID("secdsa", "unit id", old.UnitID); err != nil {
		return false, err
	}
	if err := checkID("secdsa", "kid", old.KID); err != nil {
		return false, err
	}
	if len(old.Wrapped) == 0 || len(blob) == 0 || len(mac) == 0 {
		return false, invalidf("secdsa", "empty blob or MAC")
	}
	query := `UPDATE secdsa_units SET wrapped = $1, mac = $2 WHERE unit_id = $3 AND kid = $4 AND wrapped = $5 AND cert = $6`
	args := []any{bytes.Clone(blob), bytes.Clone(mac), old.UnitID, old.KID, bytes.Clone(old.Wrapped), nonNil(old.Cert)}
	if old.Pending {
		query = `UPDATE secdsa_activations SET wrapped = $1, mac = $2 WHERE unit_id = $3 AND kid = $4 AND wrapped = $5`
		args = args[:5]
	}
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return false, fmt.Errorf("store: swap secdsa blob: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: swap secdsa blob: %w", err)
	}
	return n == 1, nil
}
