package pin

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
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

// sessionIDLen is the length of a plain (random) session id before
// encoding.
const sessionIDLen = 32

var sessionIDEncoding = base64.RawURLEncoding.Strict()

// newSessionID makes the id of a new session: a sealed ticket
// (ticket.go) when the caller bound something to the session and the
// ticket fits MaxSessionIDLen, else 32 random bytes. The store keeps only
// the SHA-256 of the decoded id.
func (s *Server) newSessionID(key []byte, unit, pinContext string, opts LoginOptions) (id string, idHash []byte, err error) {
	if opts.Binding != nil {
		id, raw, ok, err := s.sealTicket(key, unit, pinContext, opts.Task, opts.Binding)
		if err != nil {
			return "", nil, err
		}
		if ok {
			h := sha256.Sum256(raw)
			return id, h[:], nil
		}
	}
	var raw [sessionIDLen]byte
	if _, err := io.ReadFull(s.rand, raw[:]); err != nil {
		return "", nil, fmt.Errorf("pin: session id: %w", err)
	}
	h := sha256.Sum256(raw[:])
	return sessionIDEncoding.EncodeToString(raw[:]), h[:], nil
}

// parseSessionID returns the hash of a well-formed session id: 32 bytes in
// base64url without padding, or a ticket's shape (its seal is not checked
// here: a forged ticket hashes to no row), strictly.
func parseSessionID(id string) ([]byte, bool) {
	if len(id) != sessionIDEncoding.EncodedLen(sessionIDLen) {
		raw, ok := decodeTicket(id)
		if !ok {
			return nil, false
		}
		h := sha256.Sum256(raw)
		return h[:], true
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

// Session tickets (docs/protocol.md §2, "Session ids"). The id of a session
// whose login bound something to it (LoginOptions.Binding) is a ticket:
//
//	ticket = version (1) ‖ nonce (12) ‖ AES-256-GCM(key, nonce, plaintext, ad = ticketLabel ‖ version)
//	plaintext = session key (32) ‖ SHA-256(task)[:16] ‖ len8 ‖ binding ‖ len8 ‖ unit ‖ len8 ‖ context
//
// in base64url without padding. The key is derived with HKDF-SHA256 (its
// own label) from a MAC under the sealer's HSM-derived key, so every
// instance opens every ticket and nobody without the HSM can make one. A
// ticket replaces only reads of what never changes during a session (its
// key, unit, context, task and the binding); the session row, found by the
// SHA-256 of the ticket, stays the only source of validity.
const (
	ticketVersion  byte = 1
	ticketLabel         = "wsca-session-ticket-v1"
	ticketKeyLabel      = "wsca-session-ticket-key-v1"
	ticketNonceLen      = 12
	ticketTaskLen       = 16
	// MaxSessionIDLen is the longest session id the R2PS profile carries
	// (docs/protocol.md §1): a ticket that would be longer (a very long
	// unit id or context) is replaced by a plain random id.
	MaxSessionIDLen = 256
	// MaxTicketBinding bounds LoginOptions.Binding (dispatch binds an
	// uncompressed P-256 point: 65 bytes).
	MaxTicketBinding = 65
)

// ticketOverhead is what a ticket adds to its variable parts.
const ticketOverhead = 1 + ticketNonceLen + 16 + keyLen + ticketTaskLen + 3

// minTicketLen is the shortest decoded ticket: no binding, unit or context.
const minTicketLen = ticketOverhead

// ErrNotTicket is returned by OpenTicket for a session id that is a plain
// random id: the caller reads the session from the store instead.
var ErrNotTicket = errors.New("pin: the session id is not a ticket")

// Ticket is an opened session ticket: the immutable part of a session,
// which a request in it needs before the store is read. Whether the
// session is still valid is known only from the store (Ticket.Session).
// Its String and LogValue leave out the id and key.
type Ticket struct {
	// ID is the ticket as the client sends it; IDHash its store key.
	ID      string
	IDHash  []byte
	Unit    string
	Context string
	Key     []byte
	// Binding is what the login bound to the session.
	Binding  []byte
	taskHash [ticketTaskLen]byte
}

// String describes the ticket without its id or key.
func (t Ticket) String() string {
	return fmt.Sprintf("pin.Ticket{Unit:%q Context:%q}", t.Unit, t.Context)
}

// LogValue implements slog.LogValuer without the id or key.
func (t Ticket) LogValue() slog.Value {
	return slog.GroupValue(slog.String("unit", t.Unit), slog.String("context", t.Context))
}

func taskHash(task string) [ticketTaskLen]byte {
	h := sha256.Sum256([]byte(task))
	return [ticketTaskLen]byte(h[:ticketTaskLen])
}

// newTicketAEAD derives the ticket key from the sealer.
func newTicketAEAD(sl Sealer) (cipher.AEAD, error) {
	ikm := sl.MAC(ticketKeyLabel)
	defer clear(ikm)
	key, err := hkdf.Key(sha256.New, ikm, nil, ticketLabel, 32)
	if err != nil {
		return nil, fmt.Errorf("pin: ticket key: %w", err)
	}
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("pin: ticket key: %w", err)
	}
	return cipher.NewGCM(block)
}

var ticketAD = []byte(ticketLabel + string(ticketVersion))

// sealTicket makes a ticket; ok is false when it would be longer than
// MaxSessionIDLen (the caller then makes a plain id).
func (s *Server) sealTicket(key []byte, unit, pinContext, task string, binding []byte) (id string, raw []byte, ok bool, err error) {
	if len(binding) > MaxTicketBinding {
		return "", nil, false, fmt.Errorf("%w: ticket binding of %d bytes", ErrConfig, len(binding))
	}
	if len(key) != keyLen || len(unit) > 255 || len(pinContext) > 255 {
		return "", nil, false, nil
	}
	n := ticketOverhead + len(binding) + len(unit) + len(pinContext)
	if sessionIDEncoding.EncodedLen(n) > MaxSessionIDLen {
		return "", nil, false, nil
	}
	pt := make([]byte, 0, n)
	pt = append(pt, key...)
	th := taskHash(task)
	pt = append(pt, th[:]...)
	for _, p := range [...][]byte{binding, []byte(unit), []byte(pinContext)} {
		pt = append(pt, byte(len(p)))
		pt = append(pt, p...)
	}
	defer clear(pt)
	raw = make([]byte, 1+ticketNonceLen, n)
	raw[0] = ticketVersion
	if _, err := io.ReadFull(s.rand, raw[1:]); err != nil {
		return "", nil, false, fmt.Errorf("pin: ticket nonce: %w", err)
	}
	raw = s.tickets.Seal(raw, raw[1:], pt, ticketAD)
	return sessionIDEncoding.EncodeToString(raw), raw, true, nil
}

// decodeTicket returns the bytes of a string shaped like a ticket.
func decodeTicket(id string) ([]byte, bool) {
	if len(id) > MaxSessionIDLen || len(id) < sessionIDEncoding.EncodedLen(minTicketLen) {
		return nil, false
	}
	raw, err := sessionIDEncoding.DecodeString(id)
	if err != nil || len(raw) < minTicketLen || raw[0] != ticketVersion {
		return nil, false
	}
	return raw, true
}

// OpenTicket opens a session ticket without reading the store. A plain
// random id gives ErrNotTicket; anything else that does not open as a
// ticket of this server (forged, modified, of another deployment) gives
// ErrNoSession.
func (s *Server) OpenTicket(id string) (Ticket, error) {
	// A SessionsOnly server (a WSCA-only instance) cannot open tickets: it
	// looks every session up by the hash of its id.
	if len(id) == sessionIDEncoding.EncodedLen(sessionIDLen) || s.tickets == nil {
		return Ticket{}, ErrNotTicket
	}
	raw, ok := decodeTicket(id)
	if !ok {
		return Ticket{}, ErrNoSession
	}
	pt, err := s.tickets.Open(nil, raw[1:1+ticketNonceLen], raw[1+ticketNonceLen:], ticketAD)
	if err != nil {
		return Ticket{}, ErrNoSession
	}
	// The plaintext is ours (it opened): a malformed one is our bug.
	bad := fmt.Errorf("%w: ticket plaintext", ErrIntegrity)
	if len(pt) < keyLen+ticketTaskLen {
		return Ticket{}, bad
	}
	h := sha256.Sum256(raw)
	t := Ticket{ID: id, IDHash: h[:], Key: pt[:keyLen:keyLen]}
	copy(t.taskHash[:], pt[keyLen:])
	rest := pt[keyLen+ticketTaskLen:]
	var parts [3][]byte
	for i := range parts {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return Ticket{}, bad
		}
		parts[i], rest = rest[1:1+int(rest[0]):1+int(rest[0])], rest[1+int(rest[0]):]
	}
	if len(rest) != 0 {
		return Ticket{}, bad
	}
	t.Binding, t.Unit, t.Context = parts[0], string(parts[1]), string(parts[2])
	return t, nil
}

// Session returns the session of the ticket from what the store says of
// it now (the row's task, uses left and expiry, read with the request's
// nonce). A task that is not the one sealed into the ticket means the row
// was changed outside wsca: ErrIntegrity.
func (t Ticket) Session(task string, usesLeft int, expiresAt time.Time) (Session, error) {
	th := taskHash(task)
	if subtle.ConstantTimeCompare(th[:], t.taskHash[:]) != 1 {
		return Session{}, fmt.Errorf("%w: the session's task is not its ticket's", ErrIntegrity)
	}
	return Session{ID: t.ID, Unit: t.Unit, Context: t.Context, Key: t.Key, Task: task, UsesLeft: usesLeft, ExpiresAt: expiresAt}, nil
}
