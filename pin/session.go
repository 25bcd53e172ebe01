package pin

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/wsca/wsca/store"
)

// Session is a verified PIN session of a unit in a PIN context. Its String
// and LogValue leave out the id and the key.
type Session struct {
	// ID is the session id the client names the session by: a bearer
	// secret.
	ID      string
	Unit    string
	Context string
	// Key is the 32-byte OPAQUE session key shared with the client.
	Key  []byte
	Task string
	// UsesLeft counts the operations the session still allows, or is
	// store.Unlimited.
	UsesLeft  int
	ExpiresAt time.Time
}

// String describes the session without its id or key.
func (se Session) String() string {
	return fmt.Sprintf("pin.Session{Unit:%q Context:%q Task:%q UsesLeft:%d ExpiresAt:%s}",
		se.Unit, se.Context, se.Task, se.UsesLeft, se.ExpiresAt.Format(time.RFC3339))
}

// LogValue implements slog.LogValuer without the id or key.
func (se Session) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("unit", se.Unit),
		slog.String("context", se.Context),
		slog.String("task", se.Task),
		slog.Int("uses_left", se.UsesLeft),
		slog.Time("expires_at", se.ExpiresAt),
	)
}

// sessionLabel starts the additional data a session secret is sealed with,
// followed by the SHA-256 of the session id and the length-prefixed unit,
// context and task: a row whose unit, context or task was changed in the
// database no longer opens.
const sessionLabel = "wsca-session-v2"

func sessionAD(idHash []byte, unit, pinContext, task string) []byte {
	ad := append([]byte(sessionLabel), idHash...)
	for _, p := range [...]string{unit, pinContext, task} {
		ad = binary.BigEndian.AppendUint32(ad, uint32(len(p)))
		ad = append(ad, p...)
	}
	return ad
}

// sessionIDLen is the length of a session id before encoding.
const sessionIDLen = 32

var sessionIDEncoding = base64.RawURLEncoding.Strict()

func (s *Server) newSessionID() (id string, idHash []byte, err error) {
	var raw [sessionIDLen]byte
	if _, err := io.ReadFull(s.rand, raw[:]); err != nil {
		return "", nil, fmt.Errorf("pin: session id: %w", err)
	}
	h := sha256.Sum256(raw[:])
	return sessionIDEncoding.EncodeToString(raw[:]), h[:], nil
}

// parseSessionID returns the hash of a well-formed session id: 32 bytes in
// base64url without padding, strictly.
func parseSessionID(id string) ([]byte, bool) {
	if len(id) != sessionIDEncoding.EncodedLen(sessionIDLen) {
		return nil, false
	}
	raw, err := sessionIDEncoding.DecodeString(id)
	if err != nil || len(raw) != sessionIDLen {
		return nil, false
	}
	h := sha256.Sum256(raw)
	return h[:], true
}

// openSecret opens the secret of a session row, of the expected length.
func (s *Server) openSecret(se store.Session, size int) ([]byte, error) {
	secret, err := s.sealer.Open(se.Secret, sessionAD(se.IDHash, se.UnitID, se.Context, se.Task))
	if err != nil {
		s.log.Error("pin: session row fails its seal", "unit", se.UnitID, "context", se.Context)
		return nil, fmt.Errorf("%w: session: %w", ErrIntegrity, err)
	}
	if len(secret) != size {
		clear(secret)
		return nil, fmt.Errorf("pin: session secret of %d bytes, want %d", len(secret), size)
	}
	return secret, nil
}

// Session returns the verified, unexpired session with that id of the unit
// in the PIN context, with its key, if it has uses left. Otherwise it gives
// ErrNoSession, whichever check failed.
func (s *Server) Session(ctx context.Context, sessionID, unit, pinContext string) (Session, error) {
	se, err := s.Lookup(ctx, sessionID)
	if err != nil {
		return Session{}, err
	}
	if se.Unit != unit || se.Context != pinContext {
		return Session{}, ErrNoSession
	}
	return se, nil
}

// Lookup returns the verified, unexpired session with that id, whoever it
// belongs to, if it has uses left: a 2FA envelope names only its session,
// which then tells the unit and context. Otherwise it gives ErrNoSession.
func (s *Server) Lookup(ctx context.Context, sessionID string) (Session, error) {
	a, err := s.LookupAuth(ctx, sessionID)
	return a.Session, err
}

// SessionAuth is a verified session with, from the same store read, the
// state of its unit and the unit's client signing key (zero KID if none),
// which the caller verifies (its MAC included) before trusting.
type SessionAuth struct {
	Session
	UnitState  store.UnitState
	SigningKey store.ClientKey
}

// LookupAuth is Lookup that also returns what authenticating a request in
// the session needs, in one store read.
func (s *Server) LookupAuth(ctx context.Context, sessionID string) (SessionAuth, error) {
	idHash, ok := parseSessionID(sessionID)
	if !ok {
		return SessionAuth{}, ErrNoSession
	}
	sa, err := s.st.GetSessionAuth(ctx, idHash, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return SessionAuth{}, ErrNoSession
	}
	if err != nil {
		return SessionAuth{}, fmt.Errorf("pin: load session: %w", err)
	}
	if sa.State != store.SessionVerified || sa.UsesLeft == 0 {
		return SessionAuth{}, ErrNoSession
	}
	key, err := s.openSecret(sa.Session, keyLen)
	if err != nil {
		return SessionAuth{}, err
	}
	return SessionAuth{
		Session: Session{
			ID:        sessionID,
			Unit:      sa.UnitID,
			Context:   sa.Context,
			Key:       key,
			Task:      sa.Task,
			UsesLeft:  sa.UsesLeft,
			ExpiresAt: sa.ExpiresAt,
		},
		UnitState:  sa.UnitState,
		SigningKey: sa.SigningKey,
	}, nil
}

// Use spends one use of a verified session (one bound to store.Unlimited
// uses is unchanged), or gives ErrNoSession if it is unknown, expired,
// pending or used up.
func (s *Server) Use(ctx context.Context, sessionID string) error {
	idHash, ok := parseSessionID(sessionID)
	if !ok {
		return ErrNoSession
	}
	err := s.st.UseSession(ctx, idHash, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return ErrNoSession
	}
	if err != nil {
		return fmt.Errorf("pin: use session: %w", err)
	}
	return nil
}

// End ends a session. Ending a session that is gone is not an error; a
// malformed id gives ErrNoSession.
func (s *Server) End(ctx context.Context, sessionID string) error {
	idHash, ok := parseSessionID(sessionID)
	if !ok {
		return ErrNoSession
	}
	if err := s.st.DeleteSession(ctx, idHash); err != nil {
		return fmt.Errorf("pin: end session: %w", err)
	}
	return nil
}

// taskItemLabel separates the markers of spent task items in the store's
// replay cache from request nonces.
const taskItemLabel = "wsca-task-item-v1\x00"

// UseTaskItem spends one item of a task-bound session (one hash of a
// sign: task) and one of its uses. Each item can be spent once, whatever
// the order: a second use gives ErrTaskItemUsed. The marker lives in the
// store's replay cache until the session expires, so every instance sees
// it.
func (s *Server) UseTaskItem(ctx context.Context, se Session, item string) error {
	idHash, ok := parseSessionID(se.ID)
	if !ok {
		return ErrNoSession
	}
	h := sha256.New()
	h.Write([]byte(taskItemLabel))
	h.Write(idHash)
	h.Write([]byte(item))
	err := s.st.UseNonce(ctx, h.Sum(nil), se.ExpiresAt)
	if errors.Is(err, store.ErrExists) {
		return ErrTaskItemUsed
	}
	if err != nil {
		return fmt.Errorf("pin: spend task item: %w", err)
	}
	return s.Use(ctx, se.ID)
}

// SetFirstRecord stores a unit's first PIN record in a context, or fails
// with ErrRecordExists if it has one: a PIN registered without an
// activation code (under a client key an operator provisioned) can never
// replace one.
func (s *Server) SetFirstRecord(ctx context.Context, unit, pinContext string, rec store.PINRecord) error {
	err := s.st.PutFirstPINRecord(ctx, unit, pinContext, rec, s.now())
	if errors.Is(err, store.ErrExists) {
		return ErrRecordExists
	}
	if err != nil {
		return fmt.Errorf("pin: first record: %w", err)
	}
	return nil
}
