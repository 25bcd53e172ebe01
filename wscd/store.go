package wscd

import (
	"context"
	"time"

	"github.com/wsca/wsca/store"
)

// Store is what the key service needs of the store, by domain. *store.Store
// implements it; the interface lives here, where it is used, so the key
// service depends on these methods only.
type Store interface {
	// Liveness.
	Ping(ctx context.Context) error
	// Wallet units and their activation codes.
	CreateUnit(ctx context.Context, u store.Unit) error
	GetUnit(ctx context.Context, id string) (store.Unit, error)
	ListUnits(ctx context.Context) ([]store.Unit, error)
	SetUnitState(ctx context.Context, id string, st store.UnitState, at time.Time) error
	PutActivationCode(ctx context.Context, c store.ActivationCode) error
	DeleteUnitSessions(ctx context.Context, unitID string) error
	ClearAttempts(ctx context.Context, unitID, pinContext string, now time.Time) error
	// Client keys an operator provisions (compat profile).
	GetUnitClientKey(ctx context.Context, unitID string, usage store.KeyUsage) (store.ClientKey, error)
	PutClientKey(ctx context.Context, k store.ClientKey) error
	// Unit keys: ownership records of device keys.
	InsertKeyLimited(ctx context.Context, k store.Key, maxPerUnit int) error
	GetKey(ctx context.Context, kid string) (store.Key, error)
	GetKeyAccess(ctx context.Context, kid string) (store.KeyAccess, error)
	ListKeys(ctx context.Context, unitID string) ([]store.Key, error)
	CountKeys(ctx context.Context, unitID string) (int, error)
	SetKeyState(ctx context.Context, kid string, st store.KeyState) error
	DeleteKey(ctx context.Context, kid string) error
	// The server's own keys and sealed secrets.
	GetServerKey(ctx context.Context, purpose string) (store.ServerKey, error)
	PutServerKey(ctx context.Context, k store.ServerKey) error
	GetServerSecret(ctx context.Context, name string) ([]byte, error)
	PutServerSecret(ctx context.Context, name string, value []byte, now time.Time) error
}

var _ Store = (*store.Store)(nil)
