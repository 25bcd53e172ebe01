package wscd

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/evidence/event"
	"github.com/wsca/wsca/secdsa"
	"github.com/wsca/wsca/store"
)

// SECDSA in the WSCD role (docs/secdsa.md, "Server"): per unit a
// derive-only device key aU, activation (Protocol 4) with at most two
// derives, and instructions authenticated by exactly one derive, with
// the counters in the store. The provider key that signs Internal
// Certificates and transaction records is a sealed software key (like
// the R2PS response key), so authenticating and recording an instruction
// costs one device call.

// Defaults of SECDSAConfig.
const (
	DefaultSECDSAMaxFailures = 5
	DefaultSECDSANonceTTL    = 5 * time.Minute
	// SECDSAContext is the PIN context of the keys SECDSA instructions
	// make and use (Keys.In): keys under the SECDSA PIN are used by
	// SECDSA instructions only, and OPAQUE sessions of other contexts
	// cannot use them.
	SECDSAContext = "secdsa"
	// PurposeSECDSAProvider names the sealed key that signs Internal
	// Certificates and transaction records.
	PurposeSECDSAProvider = "secdsa-provider-sealed"
)

// MAC domains of the SECDSA rows.
const (
	secdsaBindingMACDomain = "wsca-secdsa-binding-v1"
	secdsaPendingMACDomain = "wsca-secdsa-pending-v1"
)

// Errors of the SECDSA service. Refusals before the HSM (ErrSECDSARefused,
// ErrSECDSALocked, ErrSECDSANotActivated) count nothing; ErrSECDSAAuth is
// a counted PIN failure.
var (
	ErrSECDSANotActivated = errors.New("wscd: secdsa: unit not activated")
	ErrSECDSAActivated    = errors.New("wscd: secdsa: unit already activated")
	ErrSECDSALocked       = errors.New("wscd: secdsa: locked")
	// ErrSECDSARefused wraps the secdsa perimeter error (malformed input,
	// invalid point, replayed serial number, challenge signature,
	// account, or an activation request that does not verify).
	ErrSECDSARefused = errors.New("wscd: secdsa: refused")
	ErrSECDSAAuth    = errors.New("wscd: secdsa: instruction not authenticated")
)

// SECDSAStore is what SECDSA needs of the store.
type SECDSAStore interface {
	GetUnit(ctx context.Context, id string) (store.Unit, error)
	GetSECDSA(ctx context.Context, unitID string) (store.SECDSAUnit, error)
	PutSECDSANonce(ctx context.Context, unitID string, nonce []byte, expiresAt time.Time) (store.SECDSAPending, error)
	TakeSECDSANonce(ctx context.Context, unitID string, nonce []byte, now time.Time) error
	SetSECDSAPending(ctx context.Context, p store.SECDSAPending) error
	TakeSECDSAPending(ctx context.Context, unitID string) (store.SECDSAPending, error)
	PutSECDSA(ctx context.Context, u store.SECDSAUnit) (store.SECDSAUnit, bool, error)
	ResetSECDSA(ctx context.Context, unitID string, now time.Time) (store.SECDSAUnit, store.SECDSAPending, error)
	AdmitSECDSA(ctx context.Context, unitID, kid string, sn uint64, max int, now time.Time) (store.SECDSACounter, error)
	SECDSASucceeded(ctx context.Context, unitID, kid string, now time.Time) error
	SECDSAUncount(ctx context.Context, unitID, kid string, max int, now time.Time) error
}

var _ SECDSAStore = (*store.Store)(nil)

// SECDSAConfig assembles a SECDSA service.
type SECDSAConfig struct {
	// Device holds the aU keys; it must implement
	// device.DeriveOnlyGenerator.
	Device     device.Device
	ServerKeys *ServerKeys
	Store      SECDSAStore
	// MaxFailures locks a unit's binding after that many PIN failures
	// (default DefaultSECDSAMaxFailures).
	MaxFailures int
	// NonceTTL bounds an activation (default DefaultSECDSANonceTTL).
	NonceTTL time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
}

// SECDSA is the SECDSA provider service. It is safe for concurrent use.
type SECDSA struct {
	base
	dev      device.Device
	gen      device.DeriveOnlyGenerator
	server   *ServerKeys
	st       SECDSAStore
	max      int
	ttl      time.Duration
	provider *ecdsa.PrivateKey
	ev       Recorder
}

// SetEvidence makes the service record its events: PIN failures and the
// lock (context "secdsa") and the destruction of replaced aU keys.
func (s *SECDSA) SetEvidence(r Recorder) { s.ev = r }

// NewSECDSA loads (or creates) the provider key and returns the service.
func NewSECDSA(ctx context.Context, cfg SECDSAConfig) (*SECDSA, error) {
	if cfg.Device == nil || cfg.ServerKeys == nil || cfg.Store == nil {
		return nil, errors.New("wscd: secdsa: device, server keys and store are required")
	}
	gen, ok := cfg.Device.(device.DeriveOnlyGenerator)
	if !ok {
		return nil, errors.New("wscd: secdsa: the device cannot make derive-only keys")
	}
	s := &SECDSA{base: newBase(cfg.Now, cfg.Logger), dev: cfg.Device, gen: gen, server: cfg.ServerKeys, st: cfg.Store,
		max: cfg.MaxFailures, ttl: cfg.NonceTTL, ev: noRecorder{}}
	if s.max <= 0 {
		s.max = DefaultSECDSAMaxFailures
	}
	if s.ttl <= 0 {
		s.ttl = DefaultSECDSANonceTTL
	}
	var err error
	if s.provider, err = cfg.ServerKeys.SealedSigningKey(ctx, PurposeSECDSAProvider); err != nil {
		return nil, fmt.Errorf("wscd: secdsa provider key: %w", err)
	}
	return s, nil
}

// ProviderKey is the public key that verifies Internal Certificates and
// transaction records (secdsa.VerifyTRecord).
func (s *SECDSA) ProviderKey() *ecdsa.PublicKey { return &s.provider.PublicKey }

// MaxFailures is the configured limit.
func (s *SECDSA) MaxFailures() int { return s.max }

// activeUnit checks that the unit exists and is active: suspended and
// revoked units are refused before anything.
func (s *SECDSA) activeUnit(ctx context.Context, unit string) (device.Owner, error) {
	return activeUnit(ctx, s.st, unit)
}

func (s *SECDSA) sealer(ctx context.Context) (*Sealer, error) { return s.server.Sealer(ctx) }

// Nonce starts an activation (a first one, or a PIN change's): a fresh
// provider nonce, single use, valid for the TTL. An activation in
// progress is replaced and its new aU destroyed.
func (s *SECDSA) Nonce(ctx context.Context, unit string) ([]byte, error) {
	owner, err := s.activeUnit(ctx, unit)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, 32)
	rand.Read(nonce)
	prev, err := s.st.PutSECDSANonce(ctx, unit, nonce, s.now().Add(s.ttl).UTC())
	if err != nil {
		return nil, storeErr(err)
	}
	s.destroyPending(ctx, owner, prev)
	return nonce, nil
}

// destroyPending destroys the aU of a replaced or failed activation.
func (s *SECDSA) destroyPending(ctx context.Context, owner device.Owner, p store.SECDSAPending) {
	if p.KID == "" {
		return
	}
	s.destroyKey(ctx, owner, p.KID, p.Wrapped)
}

func (s *SECDSA) destroyKey(ctx context.Context, owner device.Owner, kid string, wrapped []byte) {
	k, err := device.ParseKID(kid)
	if err != nil {
		s.log.ErrorContext(ctx, "secdsa: stored aU kid invalid", "unit", owner, "err", err)
		return
	}
	var blob []byte
	if len(wrapped) > 0 {
		blob = wrapped
	}
	if err := s.dev.Destroy(context.WithoutCancel(ctx), device.Ref{Owner: owner, KID: k, Wrapped: blob}); err != nil && !errors.Is(err, device.ErrKeyNotFound) {
		s.log.ErrorContext(ctx, "secdsa: orphaned aU: destroy failed", "unit", owner, "kid", kid, "err", err)
		return
	}
	s.ev.Record(ctx, destroyedEvent(s.now(), string(owner), kid, wrapped))
}

// errDryRun stops secdsa.Activate at its first derive: every check that
// needs no HSM has passed.
var errDryRun = errors.New("dry run")

// dryRunPoint is a valid stand-in for G' during the dry run (the base
// point); no derive happens with it.
var dryRunPoint = func() []byte {
	k, _ := ecdh.P256().NewPrivateKey(append(make([]byte, 31), 1))
	return k.PublicKey().Bytes()
}()

// Activate answers the wallet's activation request (Protocol 4, provider
// step) for a unit without a binding. csk is the unit's client signing
// key, which must be the request's device key U. Every check that needs
// no HSM (account, points, proof, device signature) runs first; then the
// nonce is spent, aU generated and the two derives made.
func (s *SECDSA) Activate(ctx context.Context, unit string, csk *ecdsa.PublicKey, request []byte) (*secdsa.ActivationResponse, error) {
	owner, err := s.activeUnit(ctx, unit)
	if err != nil {
		return nil, err
	}
	switch _, err := s.st.GetSECDSA(ctx, unit); {
	case err == nil:
		return nil, ErrSECDSAActivated
	case !errors.Is(err, store.ErrNotFound):
		return nil, storeErr(err)
	}
	return s.activate(ctx, owner, csk, request)
}

func (s *SECDSA) activate(ctx context.Context, owner device.Owner, csk *ecdsa.PublicKey, request []byte) (*secdsa.ActivationResponse, error) {
	unit := string(owner)
	req, err := secdsa.ParseActivationRequest(request)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSECDSARefused, err)
	}
	if err := sameKey(req.U, csk); err != nil {
		return nil, err
	}
	if _, err := secdsa.Activate(req, []byte(unit), req.Nonce, dryRunPoint, func([]byte) ([]byte, error) { return nil, errDryRun }); !errors.Is(err, errDryRun) {
		return nil, fmt.Errorf("%w: %w", ErrSECDSARefused, err)
	}
	if err := s.st.TakeSECDSANonce(ctx, unit, req.Nonce, s.now().UTC()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: %w: nonce", ErrSECDSARefused, secdsa.ErrActivation)
		}
		return nil, storeErr(err)
	}
	k, err := s.gen.GenerateDeriveOnly(ctx, owner)
	if err != nil {
		return nil, s.deviceErr(ctx, err)
	}
	fail := func(err error) (*secdsa.ActivationResponse, error) {
		s.destroyKey(ctx, owner, string(k.KID), k.Wrapped)
		return nil, err
	}
	gp, err := k.Public.Bytes()
	if err != nil {
		return fail(s.deviceErr(ctx, err))
	}
	resp, err := secdsa.Activate(req, []byte(unit), req.Nonce, gp, s.derive(ctx, k.Ref()))
	if err != nil {
		return fail(s.execErr(ctx, err))
	}
	sl, err := s.sealer(ctx)
	if err != nil {
		return fail(err)
	}
	p := store.SECDSAPending{UnitID: unit, KID: string(k.KID), Wrapped: k.Wrapped,
		MAC: sl.MAC(secdsaPendingMACDomain, []byte(unit), []byte(k.KID), k.Wrapped)}
	if err := s.st.SetSECDSAPending(ctx, p); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fail(fmt.Errorf("%w: %w: activation replaced", ErrSECDSARefused, secdsa.ErrActivation))
		}
		return fail(storeErr(err))
	}
	s.log.InfoContext(ctx, "secdsa activation answered", "unit", unit, "kid", k.KID)
	return resp, nil
}

// errAdmission carries the store's refusal of an admission out of the
// derive function.
type errAdmission struct{ err error }

func (e errAdmission) Error() string { return "secdsa admission: " + e.err.Error() }
func (e errAdmission) Unwrap() error { return e.err }

// sameKey checks that the SEC 1 point u is csk.
func sameKey(u []byte, csk *ecdsa.PublicKey) error {
	if csk == nil {
		return fmt.Errorf("%w: no client signing key", ErrSECDSARefused)
	}
	want, err := csk.Bytes()
	if err != nil || !bytes.Equal(u, want) {
		return fmt.Errorf("%w: %w: the device key is not the unit's client signing key", ErrSECDSARefused, secdsa.ErrAccount)
	}
	return nil
}

// derive is the DeriveFunc of an aU: one device ECDH.
func (s *SECDSA) derive(ctx context.Context, ref device.Ref) secdsa.DeriveFunc {
	return func(peer []byte) ([]byte, error) {
		pub, err := ecdh.P256().NewPublicKey(peer)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", device.ErrInvalidPoint, err)
		}
		return s.dev.ECDH(ctx, ref, pub)
	}
}

// execErr maps an error of the secdsa provider functions: a device error
// stays the device's; anything else is a refusal.
func (s *SECDSA) execErr(ctx context.Context, err error) error {
	for _, e := range []error{device.ErrUnavailable, device.ErrClosed, device.ErrKeyNotFound, device.ErrInvalidBlob, device.ErrKeyUsage, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, e) {
			return s.deviceErr(ctx, err)
		}
	}
	if errors.Is(err, secdsa.ErrAuthentication) {
		return fmt.Errorf("%w: %w", ErrSECDSAAuth, err)
	}
	return fmt.Errorf("%w: %w", ErrSECDSARefused, err)
}

// Finish completes an activation: the pending aU (its MAC checked, not
// expired) and the wallet's Y' make the Internal Certificate, over U =
// csk, which becomes the unit's binding; a previous binding's aU (a PIN
// change) is destroyed.
func (s *SECDSA) Finish(ctx context.Context, unit string, csk *ecdsa.PublicKey, yPrime []byte) (*secdsa.InternalCert, error) {
	owner, err := s.activeUnit(ctx, unit)
	if err != nil {
		return nil, err
	}
	if _, err := secdsa.ParsePoint(yPrime); err != nil {
		return nil, fmt.Errorf("%w: Y': %w", ErrSECDSARefused, err)
	}
	u, err := csk.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: client signing key", ErrSECDSARefused)
	}
	p, err := s.st.TakeSECDSAPending(ctx, unit)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: no activation in progress", ErrSECDSANotActivated)
	}
	if err != nil {
		return nil, storeErr(err)
	}
	sl, err := s.sealer(ctx)
	if err != nil {
		return nil, err
	}
	if !sl.VerifyMAC(p.MAC, secdsaPendingMACDomain, []byte(unit), []byte(p.KID), p.Wrapped) {
		s.log.ErrorContext(ctx, "secdsa pending aU fails its MAC: the store was changed outside wsca", "unit", unit, "kid", p.KID)
		return nil, ErrSECDSANotActivated
	}
	if !s.now().Before(p.ExpiresAt) {
		s.destroyPending(ctx, owner, p)
		return nil, fmt.Errorf("%w: activation expired", ErrSECDSANotActivated)
	}
	ref, err := aURef(owner, p.KID, p.Wrapped)
	if err != nil {
		return nil, err
	}
	k, err := s.dev.PublicKey(ctx, ref)
	if err != nil {
		return nil, s.deviceErr(ctx, err)
	}
	gp, err := k.Public.Bytes()
	if err != nil {
		return nil, s.deviceErr(ctx, err)
	}
	ic, err := secdsa.IssueInternalCert([]byte(unit), u, gp, yPrime, uint64(s.now().Unix()), s.provider)
	if err != nil {
		s.destroyPending(ctx, owner, p)
		return nil, fmt.Errorf("%w: %w", ErrSECDSARefused, err)
	}
	cert := ic.Marshal()
	b := store.SECDSAUnit{UnitID: unit, KID: p.KID, Wrapped: p.Wrapped, Cert: cert, UpdatedAt: s.now().UTC(),
		MAC: sl.MAC(secdsaBindingMACDomain, []byte(unit), []byte(p.KID), p.Wrapped, cert)}
	prev, found, err := s.st.PutSECDSA(ctx, b)
	if err != nil {
		s.destroyPending(ctx, owner, p)
		if errors.Is(err, store.ErrUnitNotActive) {
			return nil, ErrUnitNotActive
		}
		return nil, storeErr(err)
	}
	if found && prev.KID != p.KID {
		s.destroyKey(ctx, owner, prev.KID, prev.Wrapped)
	}
	s.log.InfoContext(ctx, "secdsa unit activated", "unit", unit, "kid", p.KID, "reactivation", found)
	return ic, nil
}

func aURef(owner device.Owner, kid string, wrapped []byte) (device.Ref, error) {
	k, err := device.ParseKID(kid)
	if err != nil {
		return device.Ref{}, fmt.Errorf("wscd: secdsa: stored kid: %w", err)
	}
	ref := device.Ref{Owner: owner, KID: k}
	if len(wrapped) > 0 {
		ref.Wrapped = wrapped
	}
	return ref, nil
}

// binding reads the unit's binding and checks its MAC; the certificate
// is parsed.
func (s *SECDSA) binding(ctx context.Context, owner device.Owner) (store.SECDSAUnit, *secdsa.InternalCert, device.Ref, error) {
	unit := string(owner)
	b, err := s.st.GetSECDSA(ctx, unit)
	if errors.Is(err, store.ErrNotFound) {
		return b, nil, device.Ref{}, ErrSECDSANotActivated
	}
	if err != nil {
		return b, nil, device.Ref{}, storeErr(err)
	}
	sl, err := s.sealer(ctx)
	if err != nil {
		return b, nil, device.Ref{}, err
	}
	if !sl.VerifyMAC(b.MAC, secdsaBindingMACDomain, []byte(unit), []byte(b.KID), b.Wrapped, b.Cert) {
		s.log.ErrorContext(ctx, "secdsa binding fails its MAC: the store was changed outside wsca", "unit", unit, "kid", b.KID)
		return b, nil, device.Ref{}, ErrSECDSANotActivated
	}
	ic, err := secdsa.ParseInternalCert(b.Cert)
	if err != nil {
		return b, nil, device.Ref{}, fmt.Errorf("wscd: secdsa: stored certificate: %w", err)
	}
	ref, err := aURef(owner, b.KID, b.Wrapped)
	return b, ic, ref, err
}

// Cert returns the unit's Internal Certificate.
func (s *SECDSA) Cert(ctx context.Context, unit string) (*secdsa.InternalCert, error) {
	owner, err := s.activeUnit(ctx, unit)
	if err != nil {
		return nil, err
	}
	_, ic, _, err := s.binding(ctx, owner)
	return ic, err
}

// Authenticated is an instruction that Authenticate let through: what to
// execute, and the state to sign its record with.
type Authenticated struct {
	Unit string
	// Cert is the unit's Internal Certificate.
	Cert     *secdsa.InternalCert
	Executed *secdsa.Executed
}

// Authenticate runs one instruction's authentication (docs/secdsa.md,
// "Execution" and "PIN failure rules"): the unit active; the binding's
// MAC; U the unit's client signing key csk; not locked; the perimeter
// (account, SN, points, challenge signature) with no device call; then
// admission in the store (SN consumed, a failure counted in advance,
// refusing a concurrent replay and a locked binding); then exactly one
// device derive with aU; a success clears the count, a device error gives
// it back, an authentication failure keeps it (ErrSECDSAAuth).
func (s *SECDSA) Authenticate(ctx context.Context, unit string, csk *ecdsa.PublicKey, instruction []byte) (*Authenticated, error) {
	owner, err := s.activeUnit(ctx, unit)
	if err != nil {
		return nil, err
	}
	x, err := secdsa.ParseEncSignedInstruction(instruction)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSECDSARefused, err)
	}
	b, ic, ref, err := s.binding(ctx, owner)
	if err != nil {
		return nil, err
	}
	if err := sameKey(ic.U, csk); err != nil {
		return nil, err
	}
	if b.Locked || b.Failures >= s.max {
		return nil, ErrSECDSALocked
	}
	if x.SN > store.MaxSN {
		return nil, fmt.Errorf("%w: %w: serial number above 2^63-1", ErrSECDSARefused, secdsa.ErrMalformed)
	}
	// ExecESInstruction runs the perimeter (no device call) and then
	// calls derive once: the admission runs there, between the perimeter
	// and the HSM, so the perimeter is checked once.
	now := s.now().UTC()
	var c store.SECDSACounter
	admitted := false
	hsm := s.derive(ctx, ref)
	derive := func(peer []byte) ([]byte, error) {
		var err error
		if c, err = s.st.AdmitSECDSA(ctx, unit, b.KID, x.SN, s.max, now); err != nil {
			return nil, errAdmission{err}
		}
		admitted = true
		return hsm(peer)
	}
	ex, err := secdsa.ExecESInstruction(ic, x, b.LastSN, derive)
	var ae errAdmission
	switch {
	case !admitted && errors.As(err, &ae):
		switch {
		case errors.Is(ae.err, store.ErrSNUsed):
			return nil, fmt.Errorf("%w: %w", ErrSECDSARefused, secdsa.ErrReplay)
		case errors.Is(ae.err, store.ErrLocked):
			return nil, ErrSECDSALocked
		case errors.Is(ae.err, store.ErrNotFound):
			return nil, ErrSECDSANotActivated
		}
		return nil, storeErr(ae.err)
	case !admitted && err != nil:
		// A perimeter refusal: nothing consumed, nothing counted.
		return nil, fmt.Errorf("%w: %w", ErrSECDSARefused, err)
	case err == nil:
		if err := s.st.SECDSASucceeded(ctx, unit, b.KID, now); err != nil {
			return nil, storeErr(err)
		}
		return &Authenticated{Unit: unit, Cert: ic, Executed: ex}, nil
	}
	if errors.Is(err, secdsa.ErrAuthentication) {
		s.log.WarnContext(ctx, "secdsa PIN failure", "unit", unit, "sn", x.SN, "failures", c.Failures, "err", err)
		s.ev.Record(ctx, event.Event{Type: event.PINFailure, Time: s.now(), Unit: unit, Context: SECDSAContext,
			Data: []byte(strconv.Itoa(c.Failures))})
		if c.Locked {
			s.log.WarnContext(ctx, "secdsa binding locked", "unit", unit, "failures", c.Failures)
			s.ev.Record(ctx, event.Event{Type: event.PINLocked, Time: s.now(), Unit: unit, Context: SECDSAContext})
		}
		return nil, fmt.Errorf("%w: %w", ErrSECDSAAuth, err)
	}
	// Not a PIN failure (the device's, or a check that should have been
	// at the perimeter): give the failure back.
	if uerr := s.st.SECDSAUncount(ctx, unit, b.KID, s.max, now); uerr != nil {
		s.log.ErrorContext(ctx, "secdsa: giving back a failure", "unit", unit, "err", uerr)
	}
	return nil, s.execErr(ctx, err)
}

// Record signs the transaction record of an authenticated instruction
// with the provider key (no device call). result is what the provider
// says it did: never a secret (an ECDH result goes to the wallet only).
// The record's bytes and Hash() are what the evidence log appends.
func (s *SECDSA) Record(a *Authenticated, result []byte) (*secdsa.TRecord, error) {
	return secdsa.NewTRecord(a.Cert, a.Executed, result, uint64(s.now().Unix()), s.provider)
}

// PINChange answers an activation request carried by an authenticated
// instruction (a PIN change: the request is bound to the new PIN and a
// nonce from Nonce); Finish then replaces the binding and destroys the
// old aU. The old binding stays in force until then.
func (s *SECDSA) PINChange(ctx context.Context, a *Authenticated, csk *ecdsa.PublicKey, request []byte) (*secdsa.ActivationResponse, error) {
	owner, err := s.activeUnit(ctx, a.Unit)
	if err != nil {
		return nil, err
	}
	return s.activate(ctx, owner, csk, request)
}

// Reset is Units.ResetSECDSA without the evidence: it clears a unit's
// binding (keeping its last serial number) and any activation in
// progress, and destroys their aU.
func (s *SECDSA) Reset(ctx context.Context, unit string) error {
	return resetSECDSA(ctx, s.base, s.dev, s.st, s.ev, unit)
}

// secdsaResetter is what resetSECDSA needs of the store.
type secdsaResetter interface {
	ResetSECDSA(ctx context.Context, unitID string, now time.Time) (store.SECDSAUnit, store.SECDSAPending, error)
}

// resetSECDSA clears the unit's binding and activation in the store first
// (so nothing uses them from then on), then destroys their aU on dev and
// records each destruction. A device that fails leaves an orphaned aU
// (logged with its kid; a token object, since a blob went with its row):
// the error is returned.
func resetSECDSA(ctx context.Context, b base, dev device.Device, st secdsaResetter, ev Recorder, unit string) error {
	owner, err := device.ParseOwner(unit)
	if err != nil {
		return fmt.Errorf("%w: unit id", ErrInvalidInput)
	}
	bound, pending, err := st.ResetSECDSA(ctx, unit, b.now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		return ErrSECDSANotActivated
	}
	if err != nil {
		return storeErr(err)
	}
	n, err := destroyAU(context.WithoutCancel(ctx), b, dev, ev, owner,
		aUKey{bound.KID, bound.Wrapped}, aUKey{pending.KID, pending.Wrapped})
	if err != nil {
		b.log.ErrorContext(ctx, "secdsa reset: orphaned aU: destroy failed", "unit", unit,
			"bound_kid", bound.KID, "pending_kid", pending.KID, "err", err)
		return err
	}
	b.log.InfoContext(ctx, "secdsa binding reset", "unit", unit, "keys_destroyed", n)
	return nil
}

// aUKey names an aU to destroy: its kid (empty: none) and its blob in
// wrapped storage.
type aUKey struct {
	kid     string
	wrapped []byte
}

// destroyAU destroys the given aU keys of owner on dev and records each
// destruction (token object destroyed, or blob erased: the caller erases
// or has erased its row). A key the device no longer has counts as
// destroyed. It stops at the first device error.
func destroyAU(ctx context.Context, b base, dev device.Device, ev Recorder, owner device.Owner, keys ...aUKey) (int, error) {
	n := 0
	for _, k := range keys {
		if k.kid == "" {
			continue
		}
		ref, err := aURef(owner, k.kid, k.wrapped)
		if err != nil {
			return n, err
		}
		if err := dev.Destroy(ctx, ref); err != nil && !errors.Is(err, device.ErrKeyNotFound) {
			return n, b.deviceErr(ctx, err)
		}
		ev.Record(ctx, destroyedEvent(b.now(), string(owner), k.kid, k.wrapped))
		n++
	}
	return n, nil
}
