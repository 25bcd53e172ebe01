package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// ServerSecret is a named value of server_secrets.
type ServerSecret struct {
	Name  string
	Value []byte
}

// ServerSecretsWithPrefix returns the server secrets whose name starts
// with prefix, oldest first (then by name).
func (s *Store) ServerSecretsWithPrefix(ctx context.Context, prefix string) ([]ServerSecret, error) {
	if err := checkID("server secret", "prefix", prefix); err != nil {
		return nil, err
	}
	// A range on the primary key rather than LIKE, whose escaping and
	// collation differ between the backends.
	rows, err := s.db.QueryContext(ctx,
		`SELECT name, value FROM server_secrets WHERE name >= $1 AND name < $2 ORDER BY created_at, name`,
		prefix, prefix+"\U0010FFFF")
	if err != nil {
		return nil, fmt.Errorf("store: server secrets: %w", err)
	}
	defer rows.Close()
	var out []ServerSecret
	for rows.Next() {
		var sc ServerSecret
		if err := rows.Scan(&sc.Name, &sc.Value); err != nil {
			return nil, fmt.Errorf("store: server secrets: %w", err)
		}
		if strings.HasPrefix(sc.Name, prefix) {
			out = append(out, sc)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: server secrets: %w", err)
	}
	return out, nil
}

// SetServerSecret records or replaces a named server value.
func (s *Store) SetServerSecret(ctx context.Context, name string, value []byte, now time.Time) error {
	if err := checkID("server secret", "name", name); err != nil {
		return err
	}
	at, err := toMicros("server secret", "time", now)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx,
		`INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3)
		 ON CONFLICT (name) DO UPDATE SET value = excluded.value, created_at = excluded.created_at`,
		name, nonNil(value), at)
	if err != nil {
		return fmt.Errorf("store: set server secret: %w", err)
	}
	return nil
}
