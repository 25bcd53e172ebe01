package pin

import (
	"bytes"
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"filippo.io/nistec"
	"github.com/bytemare/opaque"
	"github.com/bytemare/opaque/message"

	"github.com/wsca/wsca/evidence/event"
	"github.com/wsca/wsca/store"
)

// Sizes of the P256-SHA256 suite (RFC 9807 Nn, Nx and Nm).
const (
	nonceLen = 32
	keyLen   = 32
	macLen   = 32
)

// LoginOptions says what the session a login creates may do.
type LoginOptions struct {
	// Task restricts what the session may do ("" for nothing special); the
	// caller interprets it.
	Task string
	// Uses is the number of operations the session allows (at least 1), or
	// store.Unlimited. Zero is refused rather than read as a default.
	Uses int
	// TTL is the session's lifetime from LoginStart, pending and verified
	// together. Zero means Config.SessionTTL.
	TTL time.Duration
	// RequireRecord refuses a unit without a record in the context with
	// ErrNoRegistration before anything is counted, instead of answering
	// from a fake record. Callers that authenticated the unit first set it:
	// there is nothing to hide from the unit itself, and a context without
	// a record then leaves no attempt counter behind.
	RequireRecord bool
	// Binding, when not nil, makes the session id a sealed ticket that
	// carries it (at most MaxTicketBinding bytes; OpenTicket returns it):
	// what the caller must know of the session before reading the store,
	// such as the client key that opened it.
	Binding []byte
}

func (s *Server) sessionTTL(opts LoginOptions) (time.Duration, error) {
	if opts.Uses == 0 || opts.Uses < store.Unlimited {
		return 0, fmt.Errorf("%w: session uses %d: want store.Unlimited or at least 1", ErrConfig, opts.Uses)
	}
	switch {
	case opts.TTL < 0:
		return 0, fmt.Errorf("%w: negative session TTL", ErrConfig)
	case opts.TTL == 0:
		return s.ttl, nil
	}
	return opts.TTL, nil
}

// LoginStart answers a unit's KE1 with KE2 (RFC 9807 GenerateKE2) and
// returns the id of the pending session that LoginFinish completes.
//
// KE1, the unit id and the context are checked first (ErrMalformed), and
// nothing is counted for a malformed request. The record is read next: a
// stored record whose MAC fails is ErrIntegrity; a unit without a record
// gets ErrNoRegistration when opts.RequireRecord is set (nothing counted),
// and otherwise a KE2 from a fake record, indistinguishable from a real
// one, after which LoginFinish fails with ErrWrongPIN. Then the attempt is
// counted in the store, atomically with its admission and with the wait
// the policy sets for it, before the PIN can be tested: a locked counter
// gives ErrLocked and a counter within a wait gives ErrTooSoon, without
// KE2. An attempt admitted stays counted whatever happens afterwards,
// until a correct KE3 clears the count. The pending session remembers the
// record's credential nonce, so a PIN change before KE3 ends the login.
//
// The session id is 32 random bytes, base64url without padding; the store
// keeps only its SHA-256 and, sealed, the session key and the expected
// client MAC.
func (s *Server) LoginStart(ctx context.Context, unit, pinContext string, ke1 []byte, opts LoginOptions) (sessionID string, ke2 []byte, err error) {
	if _, err := credentialIdentifier(unit, pinContext, nil); err != nil {
		return "", nil, err
	}
	ttl, err := s.sessionTTL(opts)
	if err != nil {
		return "", nil, err
	}
	op, unlock, err := s.acquire()
	if err != nil {
		return "", nil, err
	}
	defer unlock()
	msg, err := op.Deserialize.KE1(ke1)
	if err != nil {
		return "", nil, fmt.Errorf("%w: KE1: %w", ErrMalformed, err)
	}

	now := s.now()
	rec, stored, fake, err := s.clientRecord(ctx, op, unit, pinContext, opts.RequireRecord)
	if err != nil {
		return "", nil, err
	}
	// With an HSM OPRF key (or the fake one) the blinded element is
	// checked here, before anything is counted and before any device call.
	onDevice := !stored.OPRF.IsZero() || fake && s.dev != nil
	var m *nistec.P256Point
	switch {
	case onDevice && s.dev == nil:
		s.log.Error("pin: record has an HSM OPRF key but the server has no OPRF device", "unit", unit, "context", pinContext)
		return "", nil, fmt.Errorf("%w: no OPRF device for an HSM OPRF key", ErrConfig)
	case onDevice:
		if m, err = parseElement(ke1[:blindedLen]); err != nil {
			return "", nil, err
		}
	case !fake && s.refuseSoft:
		s.log.Warn("pin: login refused: software OPRF key", "unit", unit, "context", pinContext)
		return "", nil, ErrSoftwareOPRF
	}
	if err := s.takeAttempt(ctx, unit, pinContext, now); err != nil {
		return "", nil, err
	}
	var ke2Bytes []byte
	secret := make([]byte, 0, keyLen+macLen)
	defer clear(secret)
	if onDevice {
		out, err := s.ke2OnDevice(ctx, op, msg, rec, unit, pinContext, stored.OPRF, fake, m)
		if err != nil {
			return "", nil, err
		}
		ke2Bytes = out.ke2
		secret = append(append(secret, out.sessionSecret...), out.clientMAC...)
		clear(out.sessionSecret)
		clear(out.clientMAC)
	} else {
		resp, out, err := s.ke2(op, msg, rec)
		if err != nil {
			return "", nil, err
		}
		ke2Bytes = resp.Serialize()
		secret = append(append(secret, out.SessionSecret...), out.ClientMAC...)
		clear(out.SessionSecret)
		clear(out.ClientMAC)
	}
	recNonce := stored.CredNonce

	id, idHash, err := s.newSessionID(secret[:keyLen], unit, pinContext, opts)
	if err != nil {
		return "", nil, err
	}
	sealed, err := s.sealer.Seal(secret, sessionAD(idHash, unit, pinContext, opts.Task))
	if err != nil {
		return "", nil, fmt.Errorf("pin: seal session: %w", err)
	}
	err = s.st.CreateSession(ctx, store.Session{
		IDHash:      idHash,
		UnitID:      unit,
		Context:     pinContext,
		State:       store.SessionPending,
		Secret:      sealed,
		Task:        opts.Task,
		UsesLeft:    opts.Uses,
		RecordNonce: recNonce,
		CreatedAt:   now,
		ExpiresAt:   now.Add(ttl),
	})
	if err != nil {
		return "", nil, fmt.Errorf("pin: create session: %w", err)
	}
	return id, ke2Bytes, nil
}

// takeAttempt counts one attempt, or refuses it with ErrLocked or
// ErrTooSoon, and starts the policy's wait for the new failure count in
// the same store statement, so no concurrent attempt slips into the wait.
func (s *Server) takeAttempt(ctx context.Context, unit, pinContext string, now time.Time) error {
	limit := s.policy.MaxAttempts
	a, ok, err := s.st.TakeAttempt(ctx, unit, pinContext, limit, now, s.waits...)
	if err != nil {
		return fmt.Errorf("pin: take attempt: %w", err)
	}
	if !ok {
		switch {
		case a.Locked || a.Failures >= limit:
			s.m.count("refused_locked")
			s.log.Warn("pin: attempt refused: locked", "unit", unit, "context", pinContext, "failures", a.Failures)
			return ErrLocked
		case now.Before(a.NotBefore):
			s.m.count("refused_wait")
			s.log.Info("pin: attempt refused: too soon", "unit", unit, "context", pinContext, "not_before", a.NotBefore)
			return fmt.Errorf("%w: next attempt at %s", ErrTooSoon, a.NotBefore.Format(time.RFC3339))
		}
		// The store refused at the limit, and a concurrent success cleared
		// the counter before we read it back: still a refusal, with no KE2.
		s.m.count("refused_locked")
		s.log.Info("pin: attempt refused: limit reached by attempts in flight", "unit", unit, "context", pinContext)
		return ErrLocked
	}
	s.m.count("admitted")
	s.recordAttempt(ctx, unit, pinContext, now, a.Failures, a.Failures >= limit)
	if a.Failures == limit {
		s.m.count("lock")
		s.log.Warn("pin: last attempt before lock", "unit", unit, "context", pinContext, "failures", a.Failures)
	}
	return nil
}

// clientRecord returns the unit's record and what the store holds of it
// (its credential nonce, its HSM OPRF key), or a fake record (fake true,
// stored zero) if it has none, unless required. A stored record whose MAC
// does not verify is ErrIntegrity, and one that does not parse is an
// error; neither is ever replaced by a fake.
func (s *Server) clientRecord(ctx context.Context, op *opaque.Server, unit, pinContext string, required bool) (*opaque.ClientRecord, store.PINRecord, bool, error) {
	stored, err := s.st.GetPINRecord(ctx, unit, pinContext)
	if errors.Is(err, store.ErrNotFound) {
		if required {
			return nil, store.PINRecord{}, false, ErrNoRegistration
		}
		credID, err := credentialIdentifier(unit, pinContext, nil)
		if err != nil {
			return nil, store.PINRecord{}, false, err
		}
		rec, err := s.conf.GetFakeRecord(credID)
		if err != nil {
			return nil, store.PINRecord{}, false, fmt.Errorf("pin: fake record: %w", err)
		}
		return rec, store.PINRecord{}, true, nil
	}
	if err != nil {
		return nil, store.PINRecord{}, false, fmt.Errorf("pin: load record: %w", err)
	}
	if !hmac.Equal(stored.MAC, RecordMAC(s.sealer, unit, pinContext, stored.Record, stored.CredNonce, stored.OPRF)) {
		s.log.Error("pin: PIN record fails its MAC", "unit", unit, "context", pinContext)
		return nil, store.PINRecord{}, false, fmt.Errorf("%w: PIN record", ErrIntegrity)
	}
	credID, err := credentialIdentifier(unit, pinContext, stored.CredNonce)
	if err != nil {
		return nil, store.PINRecord{}, false, err
	}
	reg, err := op.Deserialize.RegistrationRecord(stored.Record)
	if err != nil {
		return nil, store.PINRecord{}, false, fmt.Errorf("pin: stored record of unit %q in context %q: %w", unit, pinContext, err)
	}
	return &opaque.ClientRecord{RegistrationRecord: reg, CredentialIdentifier: credID}, stored, false, nil
}

// ke2OnDevice is GenerateKE2 with the OPRF evaluated on the device: by
// the record's HSM key, or for a fake record by the fake key on t_u·M.
// Both paths compute t_u·M, so they make the same software work and the
// same two derives. Its randomness is drawn as ke2 draws it.
func (s *Server) ke2OnDevice(ctx context.Context, op *opaque.Server, ke1 *message.KE1, rec *opaque.ClientRecord,
	unit, pinContext string, key store.OPRFKey, fake bool, m *nistec.P256Point) (*ke2Output, error) {
	var rnd [3 * nonceLen]byte
	defer clear(rnd[:])
	if _, err := io.ReadFull(s.rand, rnd[:]); err != nil {
		return nil, fmt.Errorf("pin: KE2 randomness: %w", err)
	}
	credID, err := credentialIdentifier(unit, pinContext, nil)
	if err != nil {
		return nil, err
	}
	t := fakeScalar(op.ServerKeyMaterial.OPRFGlobalSeed, credID)
	defer clear(t)
	mt, err := nistec.NewP256Point().ScalarMult(m, t)
	if err != nil {
		return nil, fmt.Errorf("pin: fake evaluation: %w", err)
	}
	// Both paths build the device reference from the stored key the same
	// way, so they cost the same.
	owner := unit
	if fake {
		m, owner, key = mt, string(fakeOwner), s.fake.key
	}
	ref, err := oprfRef(owner, key)
	if err != nil {
		return nil, err
	}
	z, err := deviceEvaluate(ctx, s.dev, ref, key.Public, m)
	if err != nil {
		return nil, err
	}
	skm := op.ServerKeyMaterial
	return buildKE2(ke2Input{
		context: s.conf.Context, serverSK: skm.PrivateKey, serverPK: skm.PublicKeyBytes, serverID: skm.Identity,
		ke1: ke1, rec: rec,
		maskingNonce: rnd[:nonceLen], keyShareSeed: rnd[nonceLen : 2*nonceLen], serverNonce: rnd[2*nonceLen:],
	}, z)
}

// ke2 runs GenerateKE2 with its randomness drawn from s.rand, in this
// order: masking nonce, seed of the ephemeral key share, server nonce.
func (s *Server) ke2(op *opaque.Server, ke1 *message.KE1, rec *opaque.ClientRecord) (*message.KE2, *opaque.ServerOutput, error) {
	var rnd [3 * nonceLen]byte
	defer clear(rnd[:])
	if _, err := io.ReadFull(s.rand, rnd[:]); err != nil {
		return nil, nil, fmt.Errorf("pin: KE2 randomness: %w", err)
	}
	ke2, out, err := op.GenerateKE2(ke1, rec, &opaque.ServerOptions{
		MaskingNonce: rnd[:nonceLen],
		AKE: &opaque.AKEOptions{
			SecretKeyShareSeed: rnd[nonceLen : 2*nonceLen],
			Nonce:              rnd[2*nonceLen:],
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("pin: KE2: %w", err)
	}
	if len(out.SessionSecret) != keyLen || len(out.ClientMAC) != macLen {
		return nil, nil, errors.New("pin: internal error: KE2 output sizes")
	}
	return ke2, out, nil
}

// LoginFinish checks a unit's KE3 against the pending session LoginStart
// created (RFC 9807 ServerFinish; bytemare compares the MACs in constant
// time) and returns the verified session with its key.
//
// A malformed KE3 gives ErrMalformed and leaves the session as it was. A
// session that is unknown, expired, already finished, or of another unit
// or context gives ErrNoSession. A KE3 that does not prove the PIN gives
// ErrWrongPIN, ends the session and leaves the attempt counted. Success
// clears the attempt counter (but never lifts a lock).
func (s *Server) LoginFinish(ctx context.Context, sessionID, unit, pinContext string, ke3 []byte) (Session, error) {
	op, unlock, err := s.acquire()
	if err != nil {
		return Session{}, err
	}
	defer unlock()
	msg, err := op.Deserialize.KE3(ke3)
	if err != nil {
		return Session{}, fmt.Errorf("%w: KE3: %w", ErrMalformed, err)
	}
	idHash, ok := parseSessionID(sessionID)
	if !ok {
		return Session{}, ErrNoSession
	}
	now := s.now()
	se, err := s.st.GetSession(ctx, idHash, now)
	if errors.Is(err, store.ErrNotFound) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("pin: load session: %w", err)
	}
	if se.State != store.SessionPending || se.UnitID != unit || se.Context != pinContext {
		return Session{}, ErrNoSession
	}
	secret, err := s.openSecret(se, keyLen+macLen)
	if err != nil {
		return Session{}, err
	}
	defer clear(secret)
	key, mac := secret[:keyLen], secret[keyLen:]

	if err := op.LoginFinish(msg, mac); err != nil {
		s.m.count("wrong")
		s.log.Info("pin: wrong PIN", "unit", unit, "context", pinContext)
		if err := s.st.DeleteSession(ctx, idHash); err != nil {
			return Session{}, fmt.Errorf("%w; end session: %w", ErrWrongPIN, err)
		}
		return Session{}, ErrWrongPIN
	}
	// The PIN is proven: clear the count even if the session is lost below.
	s.m.count("correct")
	if err := s.st.ClearAttempts(ctx, unit, pinContext, now); err != nil {
		return Session{}, fmt.Errorf("pin: clear attempts: %w", err)
	}
	sealed, err := s.sealer.Seal(key, sessionAD(idHash, se.UnitID, se.Context, se.Task))
	if err != nil {
		return Session{}, fmt.Errorf("pin: seal session: %w", err)
	}
	err = s.st.VerifySession(ctx, idHash, sealed, se.ExpiresAt, now)
	if errors.Is(err, store.ErrNotFound) {
		// Expired in between, or finished concurrently.
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("pin: verify session: %w", err)
	}
	s.shareSession(ctx, idHash, key, se)
	s.log.Debug("pin: session verified", "unit", unit, "context", pinContext, "task", se.Task)
	return Session{
		ID:        sessionID,
		Unit:      unit,
		Context:   pinContext,
		Key:       bytes.Clone(key),
		Task:      se.Task,
		UsesLeft:  se.UsesLeft,
		ExpiresAt: se.ExpiresAt,
	}, nil
}

// recordAttempt records a counted PIN attempt in the evidence log with
// the count it brought the counter to, and the lock when it reached the
// limit. An OPAQUE client finds a wrong PIN itself and sends no KE3, so
// the counted attempt is all the server sees of a failure; a correct KE3
// clears the counter later, and the event stays.
func (s *Server) recordAttempt(ctx context.Context, unit, pinContext string, now time.Time, failures int, locked bool) {
	if s.ev == nil {
		return
	}
	s.ev.Record(ctx, event.Event{Type: event.PINFailure, Time: now, Unit: unit, Context: pinContext, Data: []byte(strconv.Itoa(failures))})
	if locked {
		s.ev.Record(ctx, event.Event{Type: event.PINLocked, Time: now, Unit: unit, Context: pinContext})
	}
}

// shareSession seals a verified session's key under the share key of
// split roles, when there is one, so that WSCA instances can open the
// session. A failure is logged: the session still works on the WSCD.
func (s *Server) shareSession(ctx context.Context, idHash, key []byte, se store.Session) {
	if s.share == nil {
		return
	}
	sl, err := s.share(ctx)
	if err == nil && sl != nil {
		var sealed []byte
		if sealed, err = sl.Seal(key, sessionAD(idHash, se.UnitID, se.Context, se.Task)); err == nil {
			err = s.st.SetSessionShare(ctx, idHash, sealed)
		}
	}
	if err != nil {
		s.log.WarnContext(ctx, "pin: session not shared with the WSCA role", "unit", se.UnitID, "err", err)
	}
}
