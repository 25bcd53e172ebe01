package dispatch

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/evidence/event"
	"github.com/wsca/wsca/pin"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// Profiles a unit enrols under (store.ClientKey.Profile). A request in the
// other profile is refused for that unit.
const (
	ProfileStrict = wscd.ProfileStrict
	ProfileCompat = wscd.ProfileCompat
)

// request is an authenticated request. Only authenticate makes one, and
// its fields are unexported: a handler holding a *request knows that the
// envelope opened, the JWS verified with a key the policy allows for the
// type, jwe_hash matched (strict profile), the unit's state fits the
// policy, and iat and nonce were fresh (the nonce is now spent).
type request struct {
	profile string
	mode    r2ps.Mode
	pol     policy
	unit    string
	context string
	req     r2ps.Request
	// csk is the key the JWS verified with; selfSigned says it came in the
	// JWS header (a registration).
	csk        *ecdsa.PublicKey
	cskKID     string
	selfSigned bool
	// signer is the key the JWS verified with, registered or embedded.
	signer *ecdsa.PublicKey
	// session is the verified PIN session of a 2FA request.
	session *pin.Session
	// ticket is the opened ticket a strict 2FA request names its session
	// by (nil: a plain session id); its session is known valid, and
	// session set, only after fresh.
	ticket *pin.Ticket
	// unitState is the unit's state, read with the CSK (1FA, compat), the
	// session (plain session id) or the nonce (ticket).
	unitState store.UnitState
	// cak is the unit's agreement key read with its CSK (1FA), or nil.
	cak *store.ClientKey
	// key is the access record of the key a key operation names, read
	// with its nonce (nil: not read yet); keyMissing says there is none.
	key        *store.KeyAccess
	keyFor     string
	keyMissing bool
	// compat is the go-r2ps-service payload metadata (compat profile).
	compat *r2ps.CompatMeta
}

// refusal is a failure of authenticate. before says it happened before the
// caller was authenticated and the request was fresh: it is answered as a
// plain problem, never inside the envelope.
type refusal struct {
	err    error
	before bool
}

func refuse(err error) *refusal { return &refusal{err: err, before: true} }

// clientKey returns the registered key with that kid if it is the unit's
// key for usage, in that profile, and carries a valid MAC; ErrUnknownKey
// otherwise (the log says which).
func (d *Dispatcher) clientKey(ctx context.Context, ck store.ClientKey, unit string, usage store.KeyUsage, profile string) (*ecdsa.PublicKey, error) {
	switch {
	case ck.UnitID != unit || ck.Usage != usage:
		return nil, r2ps.ErrUnknownKey
	case !hmac.Equal(ck.MAC, wscd.ClientKeyMAC(d.sealer, ck)):
		d.logger(ctx).ErrorContext(ctx, "client key fails its MAC: the store was changed outside wsca", "unit", unit, "kid", ck.KID)
		return nil, r2ps.ErrUnknownKey
	case ck.Profile != profile:
		return nil, &r2ps.Error{Code: r2ps.CodeAccessDenied, Msg: "the unit is enrolled under the " + ck.Profile + " profile"}
	}
	pub, err := device.PublicKeyFromBytes(ck.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("dispatch: stored client key: %w", err)
	}
	return pub, nil
}

// lookupCSK reads the signing key with that kid (with its unit's state and
// agreement key, in the same read) and checks it for the unit.
func (d *Dispatcher) lookupCSK(ctx context.Context, kid, unit, profile string) (*ecdsa.PublicKey, store.ClientKey, error) {
	ck, err := d.cfg.Store.GetClientKey(ctx, kid)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
		return nil, ck, r2ps.ErrUnknownKey
	}
	if err != nil {
		return nil, ck, storeErr(err)
	}
	pub, err := d.clientKey(ctx, ck, unit, store.UsageSign, profile)
	return pub, ck, err
}

// verifier verifies a request JWS for a unit: with the registered CSK, or
// with a key embedded in the header whose thumbprint is its kid. When
// prefetched is set (a 2FA request, whose session read brought the unit's
// CSK along), it is the only registered key accepted.
type verifier struct {
	d          *Dispatcher
	ctx        context.Context
	unit       string
	profile    string
	prefetched *store.ClientKey
	selfSigned bool
	unitState  store.UnitState
	cak        *store.ClientKey
	// ticket is the client signing key sealed into the session ticket
	// (nil: none); it is then the only key accepted.
	ticket *ticketCSK
	// pub is the key the JWS verified with.
	pub *ecdsa.PublicKey
}

// key returns the key to verify a request JWS with (for r2ps.VerifyJWS),
// and remembers it.
func (v *verifier) key(kid string, embedded *jose.JSONWebKey) (*ecdsa.PublicKey, error) {
	pub, err := v.lookup(kid, embedded)
	v.pub = pub
	return pub, err
}

func (v *verifier) lookup(kid string, embedded *jose.JSONWebKey) (*ecdsa.PublicKey, error) {
	if embedded != nil {
		pub, ok := embedded.Key.(*ecdsa.PublicKey)
		if !ok || r2ps.Thumbprint(pub) != kid {
			return nil, r2ps.ErrUnknownKey
		}
		v.selfSigned = true
		return pub, nil
	}
	if v.ticket != nil {
		return v.ticket.key(kid)
	}
	if v.prefetched != nil {
		if v.prefetched.KID == "" || v.prefetched.KID != kid {
			return nil, r2ps.ErrUnknownKey
		}
		return v.d.clientKey(v.ctx, *v.prefetched, v.unit, store.UsageSign, v.profile)
	}
	pub, ck, err := v.d.lookupCSK(v.ctx, kid, v.unit, v.profile)
	v.unitState, v.cak = ck.UnitState, ck.Agreement
	return pub, err
}

// authenticate1FA opens and authenticates a strict 1FA request.
func (d *Dispatcher) authenticate1FA(ctx context.Context, jwe *r2ps.JWE) (*request, *refusal) {
	if jwe.KID() != d.agreeKID {
		// Refused before the HSM computes anything for it.
		return nil, refuse(r2ps.ErrUnknownKey)
	}
	env, err := jwe.Open1FA(func(epk *ecdh.PublicKey) ([]byte, error) {
		return d.cfg.ServerKeys.ECDH(ctx, d.agree, epk)
	})
	if err != nil {
		return nil, refuse(err)
	}
	if env.KID != d.agreeKID {
		return nil, refuse(r2ps.ErrUnknownKey)
	}
	v := &verifier{d: d, ctx: ctx, unit: env.ClientID, profile: ProfileStrict}
	payload, hdr, err := r2ps.VerifyJWS(env.JWS, r2ps.TypRequest, v.key)
	if err != nil {
		return nil, refuse(err)
	}
	r := &request{profile: ProfileStrict, mode: r2ps.Mode1FA, unit: env.ClientID, context: env.Context,
		cskKID: hdr.KID, selfSigned: v.selfSigned, cak: v.cak, signer: v.pub, unitState: v.unitState}
	if hdr.JWK != nil {
		r.csk, _ = hdr.JWK.Key.(*ecdsa.PublicKey)
	}
	if r.req, err = r2ps.DecodeRequest(payload); err != nil {
		return nil, refuse(err)
	}
	return r, d.admit(ctx, r, env.ProtectedHeader)
}

// authenticate2FA opens and authenticates a strict 2FA request: the
// session named in the envelope gives the unit, context and key. A
// session ticket gives them without a store read (a forged or modified one
// is refused here, before the store is reached), and the session's
// validity is then checked with the nonce (fresh); a plain session id is
// read from the store first.
func (d *Dispatcher) authenticate2FA(ctx context.Context, jwe *r2ps.JWE) (*request, *refusal) {
	var sa pin.SessionAuth
	var tk *pin.Ticket
	env, err := jwe.Open2FA(func(sessionID string) ([]byte, error) {
		t, err := d.cfg.PIN.OpenTicket(sessionID)
		if err == nil {
			tk = &t
			return t.Key, nil
		}
		if !errors.Is(err, pin.ErrNotTicket) {
			if errors.Is(err, pin.ErrIntegrity) {
				d.logger(ctx).ErrorContext(ctx, "session ticket opens but does not parse", "err", err)
			}
			return nil, r2ps.ErrUnknownSession
		}
		s, err := d.cfg.PIN.LookupAuth(ctx, sessionID)
		if errors.Is(err, pin.ErrNoSession) {
			return nil, r2ps.ErrUnknownSession
		}
		if err != nil {
			return nil, err
		}
		sa = s
		return s.Key, nil
	})
	if err != nil {
		return nil, refuse(err)
	}
	var r *request
	var v *verifier
	if tk != nil {
		csk, err := parseTicketCSK(tk.Binding)
		if err != nil {
			d.logger(ctx).ErrorContext(ctx, "session ticket without a client key", "err", err)
			return nil, refuse(r2ps.ErrUnknownSession)
		}
		v = &verifier{d: d, ctx: ctx, unit: tk.Unit, profile: ProfileStrict, ticket: csk}
		r = &request{profile: ProfileStrict, mode: r2ps.Mode2FA, unit: tk.Unit, context: tk.Context, ticket: tk}
	} else {
		se := sa.Session
		v = &verifier{d: d, ctx: ctx, unit: se.Unit, profile: ProfileStrict, prefetched: &sa.SigningKey, unitState: sa.UnitState}
		r = &request{profile: ProfileStrict, mode: r2ps.Mode2FA, unit: se.Unit, context: se.Context, session: &se, unitState: sa.UnitState}
	}
	payload, hdr, err := r2ps.VerifyJWS(env.JWS, r2ps.TypRequest, v.key)
	if err != nil {
		return nil, refuse(err)
	}
	r.cskKID, r.selfSigned, r.signer = hdr.KID, v.selfSigned, v.pub
	if r.req, err = r2ps.DecodeRequest(payload); err != nil {
		return nil, refuse(err)
	}
	return r, d.admit(ctx, r, env.ProtectedHeader)
}

// admit applies the policy of the request's type to an opened, verified,
// decoded request: mode, signer, jwe_hash (strict), the state of the unit,
// then freshness. Everything up to freshness is refused as a problem;
// after it, the caller is authenticated and a unit that is not active is
// told so inside the envelope.
func (d *Dispatcher) admit(ctx context.Context, r *request, protectedHeader string) *refusal {
	pol, err := d.policyFor(r.req.Type)
	if err != nil {
		return refuse(err)
	}
	r.pol = pol
	if pol.mode != r.mode {
		return refuse(&r2ps.Error{Code: r2ps.CodeIllegalState, Msg: r.req.Type + " needs " + pol.mode.String()})
	}
	if err := d.checkSigner(r, pol); err != nil {
		return refuse(err)
	}
	if r.profile == ProfileStrict {
		if err := r2ps.CheckJWEHash(r.req, protectedHeader); err != nil {
			return refuse(err)
		}
	}
	if r.selfSigned {
		// Only a unit waiting for enrolment takes a self-signed request;
		// for anyone else nothing is written (no nonce, no pending row).
		ok, err := d.cfg.Store.HasOutstandingCode(ctx, r.unit, d.cfg.Now())
		if err != nil {
			return refuse(storeErr(err))
		}
		if !ok {
			return refuse(&r2ps.Error{Code: r2ps.CodeUnauthorized, Msg: "no enrolment is open for this unit"})
		}
	}
	if err := d.fresh(ctx, r); err != nil {
		return refuse(err)
	}
	if !r.selfSigned && !r.pol.unit.admits(r.unitState) {
		return &refusal{err: &r2ps.Error{Code: r2ps.CodeAccessDenied, Msg: "the unit is " + string(r.unitState)}}
	}
	return nil
}

// checkSigner applies the policy's signer rule: only a registration may be
// self-signed, and a strict registration must be (it binds a new CSK with
// an activation code). A compat registration may also be signed by the
// CSK an operator provisioned (go-r2ps-service clients send no key).
func (d *Dispatcher) checkSigner(r *request, pol policy) error {
	bad := fmt.Errorf("%w: a self-signed request must be a 2fa_registration", r2ps.ErrUnknownKey)
	switch {
	case pol.signer == signerRegistered && r.selfSigned:
		return bad
	case pol.signer == signerSelf && !r.selfSigned && r.profile == ProfileStrict:
		return fmt.Errorf("%w: a 2fa_registration must carry its key", r2ps.ErrUnknownKey)
	}
	return nil
}

// fresh enforces the iat window and records the nonce (§4.2). The nonce
// row lives until the request could no longer pass the iat window on any
// instance whose clock is within MaxSkew of ours: iat + MaxAge + 2×MaxSkew,
// counted from the later of iat and our clock.
func (d *Dispatcher) fresh(ctx context.Context, r *request) error {
	now := d.cfg.Now()
	iat := r.req.IssuedAt
	if now.Sub(iat) > d.cfg.MaxAge {
		return &r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "iat too old"}
	}
	if iat.Sub(now) > d.cfg.MaxSkew {
		return &r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "iat in the future"}
	}
	h := sha256.New()
	h.Write([]byte("wsca-r2ps-nonce-v1\x00" + r.unit + "\x00" + r.context + "\x00"))
	h.Write(r.req.Nonce)
	base := now
	if iat.After(base) {
		base = iat
	}
	expires := base.Add(d.cfg.MaxAge + 2*d.cfg.MaxSkew)
	if r.ticket != nil {
		return d.freshInSession(ctx, r, h.Sum(nil), expires)
	}
	var err error
	if kid := keyOperationKID(r); kid != "" {
		// One round trip for the replay check and the key's ownership.
		r.keyFor = kid
		a, kerr := d.cfg.Store.UseNonceForKey(ctx, h.Sum(nil), expires, kid)
		switch {
		case kerr == nil:
			r.key = &a
		case errors.Is(kerr, store.ErrNotFound):
			r.keyMissing = true
		default:
			err = kerr
		}
	} else {
		err = d.cfg.Store.UseNonce(ctx, h.Sum(nil), expires)
	}
	if errors.Is(err, store.ErrExists) {
		return &r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "replayed nonce"}
	}
	return storeErr(err)
}

// freshInSession records the nonce of a request naming its session by a
// ticket, in one store statement with the check that the session is still
// valid (verified, unexpired, uses left, its PIN record unchanged: a PIN
// change, logout, re-enrolment or expiry ends it on every instance at
// once), the read of its task, its unit's state and the access record of
// the key a key operation names.
func (d *Dispatcher) freshInSession(ctx context.Context, r *request, nonceHash []byte, expires time.Time) error {
	kid := keyOperationKID(r)
	u, err := d.cfg.Store.UseNonceInSessionEvent(ctx, nonceHash, expires, r.ticket.IDHash, d.cfg.Now(), kid, d.signatureLeaf(r, kid))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return r2ps.ErrUnknownSession
	case errors.Is(err, store.ErrExists):
		return &r2ps.Error{Code: r2ps.CodeIllegalRequestData, Msg: "replayed nonce"}
	case err != nil:
		return storeErr(err)
	}
	se, err := r.ticket.Session(u.Task, u.UsesLeft, u.ExpiresAt)
	if err != nil {
		d.logger(ctx).ErrorContext(ctx, "session row fails its ticket: the store was changed outside wsca", "unit", r.unit, "context", r.context)
		if u.Key.Logged {
			// The row's task let the signature's event in; the request
			// ends here.
			d.cfg.Evidence.Record(ctx, event.Event{Type: event.SignatureFailed, Time: d.cfg.Now(), Unit: r.unit, Context: r.context, Kid: kid})
		}
		return r2ps.ErrUnknownSession
	}
	r.session, r.unitState = &se, u.UnitState
	if kid != "" {
		r.keyFor = kid
		if u.KeyFound {
			r.key = &u.Key
		} else {
			r.keyMissing = true
		}
	}
	return nil
}

// signatureLeaf returns the evidence event of a sign_ecdsa request, to be
// appended with its nonce (store.UseNonceInSessionEvent), or nil when the
// key service is to append it after the device signed. The event goes with
// the nonce only when nothing but the device can refuse the request after
// that statement: the data decodes strictly (as the handler decodes it:
// the kid keyOperationKID read, a 32-byte digest), the task rule (checkTask) admits
// the request in a session without a task; the statement then requires the
// session to have no task and kid to be an active key of its active unit in
// its context. A request refused later anyway (the wrapped key's MAC, the
// device: signatureFailed; a session row that fails its ticket:
// freshInSession) gets a signature_failed event.
func (d *Dispatcher) signatureLeaf(r *request, kid string) []byte {
	if d.cfg.Evidence == nil || kid == "" || r.req.Type != r2ps.TypeSignECDSA {
		return nil
	}
	var req r2ps.SignRequest
	if r2ps.DecodeData(r.req.Data, &req) != nil {
		return nil
	}
	untasked := *r
	untasked.session = &pin.Session{Unit: r.unit, Context: r.context}
	if d.checkTask(&untasked) != nil {
		return nil
	}
	leaf, err := event.Event{Type: event.Signature, Time: d.cfg.Now(), Unit: r.unit, Context: r.context, Kid: kid}.Marshal()
	if err != nil {
		return nil
	}
	return leaf
}

// signatureFailed records a signature_failed event when a sign_ecdsa
// request whose signature event went in with its nonce (signatureLeaf)
// fails after all, and returns res.
func (d *Dispatcher) signatureFailed(ctx context.Context, r *request, res result) result {
	if res.err != nil && r.req.Type == r2ps.TypeSignECDSA && r.key != nil && r.key.Logged && d.cfg.Evidence != nil {
		d.cfg.Evidence.Record(ctx, event.Event{Type: event.SignatureFailed, Time: d.cfg.Now(), Unit: r.unit, Context: r.context, Kid: r.keyFor})
	}
	return res
}

// keyOperationKID returns the kid a sign_ecdsa or agree_ecdh request names,
// read leniently for the replay check's combined read ("" when there is
// none or it is not a kid); the handler decodes the data strictly after.
func keyOperationKID(r *request) string {
	if r.req.Type != r2ps.TypeSignECDSA && r.req.Type != r2ps.TypeAgreeECDH {
		return ""
	}
	var k struct {
		KID string `json:"kid"`
	}
	if json.Unmarshal(r.req.Data, &k) != nil || len(k.KID) != 32 {
		return ""
	}
	if _, err := hex.DecodeString(k.KID); err != nil {
		return ""
	}
	return k.KID
}
