package wscd

import (
	"context"
	"time"

	"github.com/wsca/wsca/evidence/event"
	"github.com/wsca/wsca/store"
)

// Recorder appends security-relevant events to the evidence log
// (evidence.Log). Record never fails the caller: the change it records
// has happened.
type Recorder interface {
	Record(ctx context.Context, e event.Event)
}

// noRecorder records nothing (no evidence log configured).
type noRecorder struct{}

func (noRecorder) Record(context.Context, event.Event) {}

// The store interfaces live here, where they are used, so each service
// depends on the methods it calls only: Keys on KeyStore, ServerKeys on
// ServerKeyStore (serverkeys.go), Units on UnitStore (units.go).
// *store.Store implements all three.

// KeyStore is what Keys needs of the store: liveness, the owning unit's
// state and the ownership records of device keys.
type KeyStore interface {
	Ping(ctx context.Context) error
	GetUnit(ctx context.Context, id string) (store.Unit, error)
	InsertKeyLimited(ctx context.Context, k store.Key, maxPerUnit int) error
	GetKey(ctx context.Context, kid string) (store.Key, error)
	GetKeyAccess(ctx context.Context, kid string) (store.KeyAccess, error)
	ListKeys(ctx context.Context, unitID string) ([]store.Key, error)
	CountKeys(ctx context.Context, unitID string) (int, error)
	SetKeyState(ctx context.Context, kid string, st store.KeyState) error
	DeleteKey(ctx context.Context, kid string) error
	// SetKeyStatus invalidates a destroyed key's attestations.
	SetKeyStatus(ctx context.Context, unit, kid string, status uint8, at time.Time) (int64, error)
}

// Store is what New needs: the three services' stores in one.
type Store interface {
	KeyStore
	ServerKeyStore
	UnitStore
}

var _ Store = (*store.Store)(nil)
