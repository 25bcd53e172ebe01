package pin

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/bytemare/opaque"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/evidence/event"
	"github.com/wsca/wsca/store"
)

// DefaultSessionTTL is the lifetime of a session, pending and verified
// together, when Config.SessionTTL is zero.
const DefaultSessionTTL = 5 * time.Minute

// Config configures a Server.
type Config struct {
	Store Store
	// Sealer seals the OPAQUE key material and session secrets in the store.
	Sealer  Sealer
	Policy  Policy
	Profile Profile
	// SessionTTL is the lifetime of a session from LoginStart, pending and
	// verified together, unless LoginOptions.TTL says otherwise. Zero means
	// DefaultSessionTTL.
	SessionTTL time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Rand is the source of key material, nonces and session ids; nil means
	// crypto/rand. It must be safe for concurrent use.
	Rand io.Reader
	// Logger receives events (never secrets); nil discards them.
	Logger *slog.Logger
	// Registerer, if set, receives the attempt metrics.
	Registerer prometheus.Registerer
	// SessionsOnly makes a server that only reads sessions (a WSCA-only
	// instance, whose Sealer is the share sealer and whose store reads the
	// sessions' share secrets): no OPAQUE key material is loaded, no ticket
	// opened (a ticket is looked up by its hash), and registration and
	// login fail with ErrClosed (CanLogin is false).
	SessionsOnly bool
	// Share, if set, returns the share sealer of split WSCD/WSCA roles, or
	// nil while there is none yet: each verified session's key is then also
	// sealed under it, for WSCA instances (docs/wsca.md).
	Share func(context.Context) (Sealer, error)
	// Evidence, if set, records wrong PINs and locks in the evidence log.
	Evidence Recorder
	// OPRFDevice, if set, holds the OPRF key of every new PIN record: a
	// derive-only key made at the registration's evaluate step and used
	// by two derives per evaluation (docs/protocol.md, "HSM-bound OPRF
	// key"); units without a record are answered with one server-wide
	// fake key on it. Records made before keep their software OPRF key
	// until the next PIN change, unless RefuseSoftwareOPRF.
	OPRFDevice OPRFDevice
	// RefuseSoftwareOPRF refuses a login under a record whose OPRF key is
	// derived in software (ErrSoftwareOPRF, nothing counted): once every
	// unit moved to an HSM key, no record is left whose PIN a copy of the
	// database and memory could test offline. It needs OPRFDevice.
	RefuseSoftwareOPRF bool
}

// Recorder appends events to the evidence log (evidence.Log); it never
// fails the caller.
type Recorder interface {
	Record(ctx context.Context, e event.Event)
}

// LogValue implements slog.LogValuer: the policy, profile and session
// lifetime, without the store, sealer or random source.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("max_attempts", c.Policy.MaxAttempts),
		slog.String("delays", FormatDelays(c.Policy.Delays)),
		slog.String("opaque_context", c.Profile.Context),
		slog.String("ksf", c.Profile.KSF.String()),
		slog.Duration("session_ttl", c.SessionTTL),
	)
}

// Server runs the server side of OPAQUE registration and login for wallet
// units, with the attempt policy and sessions kept in the store. It is safe
// for concurrent use, and any number of Servers, in one process or many,
// may share one store.
type Server struct {
	st     Store
	conf   *opaque.Configuration
	sealer Sealer
	policy Policy
	waits  []store.AttemptWait // policy.Delays for the store
	m      *metrics
	ttl    time.Duration
	now    func() time.Time
	rand   io.Reader
	log    *slog.Logger
	share  func(context.Context) (Sealer, error)
	ev     Recorder // nil: none

	// dev holds the HSM OPRF keys (nil: every new record gets a software
	// one); fake is its server-wide key for units without a record.
	dev        OPRFDevice
	fake       fakeKey
	refuseSoft bool

	// tickets seals session tickets (session.go) under a key derived
	// from the sealer.
	tickets cipher.AEAD

	// mu guards op against Close, which flushes its key material.
	mu sync.RWMutex
	op *opaque.Server // nil once closed
}

// New returns a Server. It loads the OPAQUE server key material from the
// store, or creates it there, sealed, if no instance has yet.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Sealer == nil {
		return nil, fmt.Errorf("%w: store and sealer are required", ErrConfig)
	}
	policy, err := cfg.Policy.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.SessionTTL < 0 {
		return nil, fmt.Errorf("%w: negative session TTL", ErrConfig)
	}
	if cfg.RefuseSoftwareOPRF && cfg.OPRFDevice == nil {
		return nil, fmt.Errorf("%w: refusing software OPRF keys needs an OPRF device", ErrConfig)
	}
	conf, err := configuration(cfg.Profile)
	if err != nil {
		return nil, err
	}
	s := &Server{
		st:     cfg.Store,
		conf:   conf,
		sealer: cfg.Sealer,
		policy: policy,
		ttl:    cfg.SessionTTL,
		now:    cfg.Now,
		rand:   cfg.Rand,
		log:    cfg.Logger,
		share:  cfg.Share,
		ev:     cfg.Evidence,

		dev:        cfg.OPRFDevice,
		refuseSoft: cfg.RefuseSoftwareOPRF,
	}
	if !cfg.SessionsOnly {
		if s.tickets, err = newTicketAEAD(cfg.Sealer); err != nil {
			return nil, err
		}
	}
	if s.m, err = newMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	for _, d := range policy.Delays {
		s.waits = append(s.waits, store.AttemptWait{After: d.After, Wait: d.Wait})
	}
	if s.ttl == 0 {
		s.ttl = DefaultSessionTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}

	if cfg.SessionsOnly {
		return s, nil
	}
	skm, created, err := loadKeyMaterial(ctx, s.st, s.sealer, conf, s.rand, s.now())
	if err != nil {
		return nil, err
	}
	if err := s.setKeyMaterial(skm); err != nil {
		skm.Flush()
		return nil, err
	}
	if created {
		s.log.Info("pin: created OPAQUE server key material", "secret", KeyMaterialName)
	}
	if s.dev != nil {
		if s.fake, err = loadFakeKey(ctx, s.st, s.sealer, s.dev, s.log, s.now()); err != nil {
			s.Close()
			return nil, err
		}
		// How many units the operator still waits for before refusing
		// software OPRF keys (a PIN change or a pin_reset code moves one).
		if n, err := s.st.SoftwareOPRFRecords(ctx); err != nil {
			s.log.Warn("pin: counting software OPRF records", "err", err)
		} else if n > 0 {
			s.log.Info("pin: PIN records with a software OPRF key", "records", n, "accepted", !s.refuseSoft)
		}
	}
	return s, nil
}

func (s *Server) setKeyMaterial(skm *opaque.ServerKeyMaterial) error {
	op, err := s.conf.Server()
	if err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	if err := op.SetKeyMaterial(skm); err != nil {
		return fmt.Errorf("pin: key material: %w", err)
	}
	s.op = op
	return nil
}

// HeldBlobs returns the wrapped blobs of device keys the PIN server keeps
// sealed in the store, where no report of the store's blobs can read
// them: the fake records' OPRF key, in wrapped storage. The wrapping key a
// blob names must stay on the device (wscd.Keys.SetHeldBlobs).
func (s *Server) HeldBlobs() [][]byte {
	if len(s.fake.key.Wrapped) == 0 {
		return nil
	}
	return [][]byte{bytes.Clone(s.fake.key.Wrapped)}
}

// Close flushes the key material from memory. Calls in progress finish
// first; later registrations and logins fail with ErrClosed. The store is
// not closed.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.op != nil {
		s.op.ServerKeyMaterial.Flush()
		s.op = nil
	}
	return nil
}

// CanLogin reports whether the server registers PINs and logs units in:
// false for a SessionsOnly server and after Close.
func (s *Server) CanLogin() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.op != nil
}

// acquire returns the OPAQUE server with the read lock held, and the
// function that releases it; or ErrClosed.
func (s *Server) acquire() (*opaque.Server, func(), error) {
	s.mu.RLock()
	if s.op == nil {
		s.mu.RUnlock()
		return nil, nil, ErrClosed
	}
	return s.op, s.mu.RUnlock, nil
}

// RegistrationTTL bounds the time between a registration's evaluate and
// finalize steps.
const RegistrationTTL = 10 * time.Minute

// MaxPendingRegistrations bounds the pending registrations a unit keeps
// over all its contexts: a newer one evicts the oldest, so an
// unauthenticated flood of evaluate steps cannot grow the store.
const MaxPendingRegistrations = 4

// credNonceSize is the size of a record's credential-identifier nonce.
const credNonceSize = 16

// RegistrationResponse answers a RegistrationRequest for a unit in a PIN
// context (RFC 9807 §5.2.2, CreateRegistrationResponse). The OPRF key is
// derived from a credential identifier with a fresh random nonce, kept as
// the requester's pending registration until FinishRegistration: the step
// needs no authorisation (the I-D puts it before the activation code), and
// it must not be an oracle for the OPRF key of the record in use, nor for
// that of any later record. requester names who asks (the client key's
// thumbprint, or the session of a PIN change); only it can finish.
//
// With an OPRF device the step makes the record's derive-only HSM key
// and evaluates with it (the request validated first); the key waits
// with the pending registration, and a replaced or evicted one is
// destroyed.
func (s *Server) RegistrationResponse(ctx context.Context, unit, pinContext, requester string, req []byte) ([]byte, error) {
	nonce := make([]byte, credNonceSize)
	if _, err := io.ReadFull(s.rand, nonce); err != nil {
		return nil, fmt.Errorf("pin: %w", err)
	}
	credID, err := credentialIdentifier(unit, pinContext, nonce)
	if err != nil {
		return nil, err
	}
	p := store.PendingRegistration{
		UnitID: unit, Context: pinContext, Requester: requester, CredNonce: nonce,
		ExpiresAt: s.now().Add(RegistrationTTL),
	}
	var resp []byte
	var key device.Key
	if s.dev != nil {
		resp, key, err = s.evaluateOnDevice(ctx, unit, req)
		if err != nil {
			return nil, err
		}
		p.OPRF = s.oprfKey(unit, key)
	} else if resp, err = s.evaluate(credID, req); err != nil {
		return nil, err
	}
	if err = s.st.PutPendingRegistration(ctx, p, MaxPendingRegistrations); err != nil {
		if s.dev != nil {
			s.destroyKey(ctx, key.Ref())
		}
		return nil, fmt.Errorf("pin: pending registration: %w", err)
	}
	if s.dev != nil {
		// The put retired the requester's earlier key and evicted ones.
		s.DestroyRetiredOPRFKeys(ctx, unit)
	}
	return resp, nil
}

// FinishRegistration checks the client's RegistrationRecord and takes the
// requester's pending registration, giving what the caller stores (with
// store.Enrol or store.ReplacePINRecord). Without a pending registration
// of that requester it fails with ErrNoRegistration.
func (s *Server) FinishRegistration(ctx context.Context, unit, pinContext, requester string, record []byte) (store.PINRecord, error) {
	if err := s.CheckRecord(record); err != nil {
		return store.PINRecord{}, err
	}
	p, err := s.st.TakePendingRegistration(ctx, unit, pinContext, requester, s.now())
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
		return store.PINRecord{}, ErrNoRegistration
	}
	if err != nil {
		return store.PINRecord{}, fmt.Errorf("pin: pending registration: %w", err)
	}
	if !p.OPRF.IsZero() && !hmac.Equal(p.OPRF.MAC, oprfKeyMAC(s.sealer, unit, p.OPRF.Public, p.OPRF.Wrapped)) {
		s.log.Error("pin: pending registration's OPRF key fails its MAC", "unit", unit, "context", pinContext)
		return store.PINRecord{}, fmt.Errorf("%w: pending registration", ErrIntegrity)
	}
	return store.PINRecord{
		Record: bytes.Clone(record), CredNonce: p.CredNonce, OPRF: p.OPRF,
		MAC: RecordMAC(s.sealer, unit, pinContext, record, p.CredNonce, p.OPRF),
	}, nil
}

// DiscardRecord destroys the HSM OPRF key of a record FinishRegistration
// returned that the caller could not store (store.Enrol, ReplacePINRecord
// or SetFirstRecord failed, or a step before them): once the pending
// registration is taken, nothing else names that key. A key the unit's
// stored record names (a write that failed after it committed) is kept;
// if the store cannot tell, the key is left and logged.
func (s *Server) DiscardRecord(ctx context.Context, unit, pinContext string, rec store.PINRecord) {
	if s.dev == nil || rec.OPRF.IsZero() {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if !hmac.Equal(rec.OPRF.MAC, oprfKeyMAC(s.sealer, unit, rec.OPRF.Public, rec.OPRF.Wrapped)) {
		s.log.ErrorContext(ctx, "pin: discarded record's OPRF key fails its MAC: not destroyed", "unit", unit, "context", pinContext)
		return
	}
	stored, err := s.st.GetPINRecord(ctx, unit, pinContext)
	switch {
	case err == nil && bytes.Equal(stored.OPRF.Public, rec.OPRF.Public):
		return
	case err != nil && !errors.Is(err, store.ErrNotFound):
		s.log.ErrorContext(ctx, "pin: OPRF key of a record not stored: left on the device", "unit", unit, "context", pinContext, "err", err)
		return
	}
	ref, err := oprfRef(unit, rec.OPRF)
	if err != nil {
		s.log.ErrorContext(ctx, "pin: OPRF key of a record not stored", "unit", unit, "context", pinContext, "err", err)
		return
	}
	s.destroyKey(ctx, ref)
}

func (s *Server) evaluate(credID, req []byte) ([]byte, error) {
	op, unlock, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer unlock()
	msg, err := op.Deserialize.RegistrationRequest(req)
	if err != nil {
		return nil, fmt.Errorf("%w: registration request: %w", ErrMalformed, err)
	}
	resp, err := op.RegistrationResponse(msg, credID, nil)
	if err != nil {
		return nil, fmt.Errorf("pin: registration response: %w", err)
	}
	return resp.Serialize(), nil
}

// CheckRecord validates a client's RegistrationRecord before the caller
// stores it (with store.Enrol or store.ReplacePINRecord): exact length, a
// client public key on P-256, a non-zero masking key and an envelope that
// is not the all-zero one of fake records. It gives ErrMalformed.
func (s *Server) CheckRecord(record []byte) error {
	op, unlock, err := s.acquire()
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := op.Deserialize.RegistrationRecord(record)
	if err != nil {
		return fmt.Errorf("%w: registration record: %w", ErrMalformed, err)
	}
	if allZero(rec.Envelope) {
		return fmt.Errorf("%w: registration record: zero envelope", ErrMalformed)
	}
	return nil
}

func allZero(b []byte) bool {
	var acc byte
	for _, x := range b {
		acc |= x
	}
	return acc == 0
}

// Unlock lifts a lock and clears the attempt counter of a unit in a PIN
// context: the operator's action after MaxAttempts failures.
func (s *Server) Unlock(ctx context.Context, unit, pinContext string) error {
	if _, err := credentialIdentifier(unit, pinContext, nil); err != nil {
		return err
	}
	if err := s.st.ClearAttempts(ctx, unit, pinContext, s.now()); err != nil {
		return fmt.Errorf("pin: unlock: %w", err)
	}
	s.log.Info("pin: attempts unlocked", "unit", unit, "context", pinContext)
	return nil
}

// Attempts returns the attempt counter of a unit in a PIN context. Locked
// is also true once the count has reached MaxAttempts, before a further
// attempt has set the lock in the store.
func (s *Server) Attempts(ctx context.Context, unit, pinContext string) (store.Attempts, error) {
	if _, err := credentialIdentifier(unit, pinContext, nil); err != nil {
		return store.Attempts{}, err
	}
	a, err := s.st.GetAttempts(ctx, unit, pinContext)
	if err != nil {
		return store.Attempts{}, fmt.Errorf("pin: attempts: %w", err)
	}
	if a.Failures >= s.policy.MaxAttempts {
		a.Locked = true
	}
	return a, nil
}
