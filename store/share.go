package store

import (
	"bytes"
	"context"
	"fmt"
)

// nonNil is b, or an empty slice for nil (the share columns are NOT NULL).
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return bytes.Clone(b)
}

// SetSessionShare records a session's key sealed under the share key of
// split roles, for WSCA instances to read (ShareView).
func (s *Store) SetSessionShare(ctx context.Context, idHash, sealed []byte) error {
	if len(idHash) != HashSize {
		return invalidf("session", "id hash must be %d bytes", HashSize)
	}
	if len(sealed) == 0 {
		return invalidf("session", "empty share secret")
	}
	res, err := s.db.ExecContext(ctx, `UPDATE sessions SET share_secret = $1 WHERE id_hash = $2`, bytes.Clone(sealed), bytes.Clone(idHash))
	if err != nil {
		return fmt.Errorf("store: set session share: %w", err)
	}
	return oneRow(res, "session", "")
}

// SetClientKeyShareMAC records a client key's MAC under the share key of
// split roles, if the key is still the one with that point (a replaced
// key keeps nothing).
func (s *Store) SetClientKeyShareMAC(ctx context.Context, kid string, publicKey, mac []byte) error {
	if err := checkID("client key", "kid", kid); err != nil {
		return err
	}
	if len(mac) == 0 {
		return invalidf("client key", "empty share MAC")
	}
	res, err := s.db.ExecContext(ctx, `UPDATE client_keys SET share_mac = $1 WHERE kid = $2 AND public_key = $3`,
		bytes.Clone(mac), kid, bytes.Clone(publicKey))
	if err != nil {
		return fmt.Errorf("store: set client key share MAC: %w", err)
	}
	return oneRow(res, "client key", kid)
}

// ClientKeysWithoutShareMAC returns up to limit client keys with a kid
// after after (bytewise) that have no share MAC yet (enrolled before a WSCA
// instance existed), for the WSCD to MAC them.
func (s *Store) ClientKeysWithoutShareMAC(ctx context.Context, after string, limit int) ([]ClientKey, error) {
	if limit <= 0 {
		return nil, invalidf("client key", "limit %d", limit)
	}
	rows, err := s.db.QueryContext(ctx, s.selectClientKey()+` WHERE length(c.share_mac) = 0 AND c.kid > $1 ORDER BY c.kid LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: client keys without share MAC: %w", err)
	}
	defer rows.Close()
	var out []ClientKey
	for rows.Next() {
		k, err := scanClientKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: client keys without share MAC: %w", err)
	}
	return out, nil
}

// ShareView returns a view of the store for a WSCA-only instance (split
// roles, docs/wsca.md): its reads of client keys (GetClientKey,
// GetUnitClientKey), of wallet keys (GetKey, ListKeys) and of sessions
// (GetSessionAuth) return each row's share MAC and share secret as MAC and
// Secret, which that instance checks and opens under the share key. Writes are the store's. Closing the view
// closes the store.
func (s *Store) ShareView() *Store {
	v := *s
	v.shareView = true
	return &v
}

// col names the column a read returns as name: its share_ twin in a
// ShareView for mac and secret.
func (s *Store) col(table, name string) string {
	if s.shareView && (name == "mac" || name == "secret") {
		return table + ".share_" + name
	}
	return table + "." + name
}
