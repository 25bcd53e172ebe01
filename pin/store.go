package pin

import (
	"context"
	"time"

	"github.com/wsca/wsca/store"
)

// Store is what the PIN server needs of the store: PIN records and pending
// registrations, attempt counters, sessions, the replay cache (for spent
// task items) and its sealed key material. *store.Store implements it.
type Store interface {
	GetPINRecord(ctx context.Context, unitID, pinContext string) (store.PINRecord, error)
	PutFirstPINRecord(ctx context.Context, unitID, pinContext string, r store.PINRecord, now time.Time) error
	PutPendingRegistration(ctx context.Context, p store.PendingRegistration, maxPerUnit int) error
	TakePendingRegistration(ctx context.Context, unitID, pinContext, requester string, now time.Time) (store.PendingRegistration, error)

	GetAttempts(ctx context.Context, unitID, pinContext string) (store.Attempts, error)
	TakeAttempt(ctx context.Context, unitID, pinContext string, max int, now time.Time, waits ...store.AttemptWait) (store.Attempts, bool, error)
	ClearAttempts(ctx context.Context, unitID, pinContext string, now time.Time) error

	CreateSession(ctx context.Context, se store.Session) error
	GetSession(ctx context.Context, idHash []byte, now time.Time) (store.Session, error)
	GetSessionAuth(ctx context.Context, idHash []byte, now time.Time) (store.SessionAuth, error)
	VerifySession(ctx context.Context, idHash, secret []byte, expiresAt, now time.Time) error
	SetSessionShare(ctx context.Context, idHash, sealed []byte) error
	UseSession(ctx context.Context, idHash []byte, now time.Time) error
	DeleteSession(ctx context.Context, idHash []byte) error
	UseNonce(ctx context.Context, nonceHash []byte, expiresAt time.Time) error

	SoftwareOPRFRecords(ctx context.Context) (int, error)
	RetiredOPRFKeys(ctx context.Context, unitID string, limit int) ([]store.RetiredOPRFKey, error)
	DeleteRetiredOPRFKey(ctx context.Context, unitID string, public []byte) error

	GetServerSecret(ctx context.Context, name string) ([]byte, error)
	PutServerSecret(ctx context.Context, name string, value []byte, now time.Time) error
}

var _ Store = (*store.Store)(nil)
