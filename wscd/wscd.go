// Package wscd is the WSCD: a [device.Device] plus the store's record of
// which wallet unit owns which key, in three types by domain, each with the
// store interface it needs:
//
//   - [Keys]: wallet-unit keys on the device, behind ownership checks.
//   - [ServerKeys]: the server's own device keys, the [Sealer] derived
//     from one of them, sealed software keys and activation-code hashing.
//   - [Units]: wallet units' lifecycle, activation codes, operator-
//     provisioned client keys and PIN unlock; it uses ServerKeys for MACs.
//
// [New] builds all three over one device and store.
//
// Every key operation names the calling unit and the key. Keys checks, in
// this order, that the unit exists and is active, that the key record
// exists, belongs to that unit and is active, and only then calls the
// device, which checks the owner once more against its own label. A key of
// another unit is answered exactly like a kid that does not exist
// ([ErrKeyNotFound]), so units cannot probe each other's kids.
//
// Protocol code (R2PS, SECDSA) uses this package and never the device or
// the store directly for key operations.
package wscd

import (
	"context"
	"crypto/ecdh"
	"crypto/hmac"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/evidence/event"
	"github.com/wsca/wsca/store"
)

// Errors of the WSCD services. Clients see at most these classes; the causes
// go to the log.
var (
	ErrKeyNotFound = errors.New("wscd: key not found")
	// ErrUnitNotActive means the unit does not exist or is suspended or
	// revoked.
	ErrUnitNotActive = errors.New("wscd: wallet unit not active")
	ErrInvalidInput  = errors.New("wscd: invalid input")
	ErrUnavailable   = errors.New("wscd: service unavailable")
	// ErrQuota means the unit holds as many keys as it may.
	ErrQuota = errors.New("wscd: key quota reached")
	// ErrStoreDown and ErrDeviceDown say which part Ready found failing;
	// both come wrapped with ErrUnavailable.
	ErrStoreDown  = errors.New("wscd: store unreachable")
	ErrDeviceDown = errors.New("wscd: device unreachable")
)

// Config assembles the three services over one device and store (New).
type Config struct {
	Device device.Device
	Store  Store
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives security-relevant events and causes; default discards.
	Logger *slog.Logger
	// Metrics, if set, counts key operations (see NewMetrics).
	Metrics *Metrics
	// Prefix is the server keys' namespace (ServerKeysConfig.Prefix). A
	// non-empty one (WSCAPrefix) makes a WSCA-only instance over a device
	// of its own: its Units destroy no unit, issue no activation code and
	// provision no client key (ErrNoDevice), which need the WSCD's device.
	Prefix string
}

// Services are the WSCD's three services over one device and store.
type Services struct {
	Keys       *Keys
	ServerKeys *ServerKeys
	Units      *Units
}

// New builds Keys, ServerKeys and Units over cfg's device and store; Units
// uses that ServerKeys.
func New(cfg Config) (*Services, error) {
	if cfg.Device == nil || cfg.Store == nil {
		return nil, errors.New("wscd: device and store are required")
	}
	sk, err := NewServerKeys(ServerKeysConfig{Device: cfg.Device, Store: cfg.Store, Now: cfg.Now, Logger: cfg.Logger, Prefix: cfg.Prefix})
	if err != nil {
		return nil, err
	}
	keys, err := NewKeys(KeysConfig{Device: cfg.Device, Store: cfg.Store, Now: cfg.Now, Logger: cfg.Logger, Metrics: cfg.Metrics, ServerKeys: sk})
	if err != nil {
		return nil, err
	}
	uc := UnitsConfig{Store: cfg.Store, ServerKeys: sk, Keys: keys, Now: cfg.Now, Logger: cfg.Logger}
	if cfg.Prefix != "" {
		uc.Keys, uc.WSCAOnly = nil, true
	}
	units, err := NewUnits(uc)
	if err != nil {
		return nil, err
	}
	return &Services{Keys: keys, ServerKeys: sk, Units: units}, nil
}

// base is the clock and logger every service has.
type base struct {
	now func() time.Time
	log *slog.Logger
}

func newBase(now func() time.Time, log *slog.Logger) base {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return base{now: now, log: log}
}

// KeysConfig assembles a Keys.
type KeysConfig struct {
	Device device.Device
	Store  KeyStore
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives security-relevant events and causes; default discards.
	Logger *slog.Logger
	// Metrics, if set, counts operations (see NewMetrics).
	Metrics *Metrics
	// ServerKeys MACs the key records (KeyMAC) and the blobs of wrapped
	// keys; required.
	ServerKeys *ServerKeys
}

// Keys is the wallet-unit key service: keys on the device, used only by
// the unit that owns them. It is safe for concurrent use.
type Keys struct {
	base
	dev     device.Device
	st      KeyStore
	metrics *Metrics
	server  *ServerKeys
	share   *Share // SetShare
	ev      Recorder
	// held returns blobs other services keep where the store's report
	// cannot read them (SetHeldBlobs).
	held func() [][]byte
}

// SetHeldBlobs tells the wrapping-key report of blobs kept outside the
// store's key tables (the PIN server's fake OPRF key, sealed): they count
// as server keys, so their wrapping key is never reported unused. Call it
// before serving.
func (s *Keys) SetHeldBlobs(f func() [][]byte) { s.held = f }

// SetEvidence makes the key service record its events (key generated,
// signature, ECDH, key destroyed) in r. Call it before serving.
func (s *Keys) SetEvidence(r Recorder) { s.ev = r }

// NewKeys returns a Keys over cfg's device and store.
func NewKeys(cfg KeysConfig) (*Keys, error) {
	if cfg.Device == nil || cfg.Store == nil {
		return nil, errors.New("wscd: device and store are required")
	}
	if cfg.ServerKeys == nil {
		return nil, errors.New("wscd: keys need server keys to MAC their records")
	}
	return &Keys{base: newBase(cfg.Now, cfg.Logger), dev: cfg.Device, st: cfg.Store, metrics: cfg.Metrics, server: cfg.ServerKeys, ev: noRecorder{}}, nil
}

// wrappedMACDomain separates the MAC of a wrapped key's blob.
const wrappedMACDomain = "wsca-wrapped-key-v1"

// wrappedMAC binds a wrapped key's blob to its owner and kid under the
// HSM-derived MAC key: the blob names no owner, so without it someone who
// can write the database could move a key to another unit.
func (s *Keys) wrappedMAC(ctx context.Context, owner device.Owner, kid device.KID, blob []byte) ([]byte, error) {
	sl, err := s.server.Sealer(ctx)
	if err != nil {
		return nil, err
	}
	return sl.MAC(wrappedMACDomain, []byte(owner), []byte(kid), blob), nil
}

// wrappedRef returns the device reference of a key whose record carries a
// blob, after checking the blob's MAC; a token object's record has none.
func (s *Keys) wrappedRef(ctx context.Context, owner device.Owner, kid device.KID, blob, mac []byte) (device.Ref, error) {
	ref := device.Ref{Owner: owner, KID: kid}
	if len(blob) == 0 {
		return ref, nil
	}
	if s.server == nil {
		return device.Ref{}, fmt.Errorf("%w: a wrapped key without server keys", ErrUnavailable)
	}
	want, err := s.wrappedMAC(ctx, owner, kid, blob)
	if err != nil {
		return device.Ref{}, err
	}
	if !hmac.Equal(mac, want) {
		s.log.ErrorContext(ctx, "wrapped key fails its MAC: the store was changed outside wsca", "unit", owner, "kid", kid)
		return device.Ref{}, ErrKeyNotFound
	}
	ref.Wrapped = blob
	return ref, nil
}

// Device returns the underlying device (for its Info and call counts).
func (s *Keys) Device() device.Device { return s.dev }

// Ready reports whether both the store and the device answer.
func (s *Keys) Ready(ctx context.Context) error {
	if err := s.st.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %w: %v", ErrUnavailable, ErrStoreDown, err)
	}
	if err := s.dev.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %w: %v", ErrUnavailable, ErrDeviceDown, err)
	}
	return nil
}

// activeUnit checks the unit id and that the unit is active.
func (s *Keys) activeUnit(ctx context.Context, unit string) (device.Owner, error) {
	return activeUnit(ctx, s.st, unit)
}

// unitReader reads a unit; the key service's and SECDSA's stores do.
type unitReader interface {
	GetUnit(ctx context.Context, id string) (store.Unit, error)
}

// activeUnit checks the unit id and that the unit exists and is active:
// suspended and revoked units are refused before anything.
func activeUnit(ctx context.Context, st unitReader, unit string) (device.Owner, error) {
	owner, err := device.ParseOwner(unit)
	if err != nil {
		return "", fmt.Errorf("%w: unit id", ErrInvalidInput)
	}
	u, err := st.GetUnit(ctx, unit)
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrUnitNotActive
	}
	if err != nil {
		return "", storeErr(err)
	}
	if u.State != store.UnitActive {
		return "", ErrUnitNotActive
	}
	return owner, nil
}

// ownedKey returns the ref of an active key of an active unit, with one
// store read. A key of another unit is answered like a missing one.
func (s *Keys) ownedKey(ctx context.Context, unit, pinContext, kid string) (device.Ref, error) {
	owner, err := device.ParseOwner(unit)
	if err != nil {
		return device.Ref{}, fmt.Errorf("%w: unit id", ErrInvalidInput)
	}
	k, err := device.ParseKID(kid)
	if err != nil {
		return device.Ref{}, fmt.Errorf("%w: kid", ErrInvalidInput)
	}
	a, err := s.st.GetKeyAccess(ctx, kid)
	if errors.Is(err, store.ErrNotFound) {
		return device.Ref{}, ErrKeyNotFound
	}
	if err != nil {
		return device.Ref{}, storeErr(err)
	}
	return s.checkAccess(ctx, owner, k, pinContext, a)
}

// checkAccess applies the ownership rules to a key's access record.
func (s *Keys) checkAccess(ctx context.Context, owner device.Owner, k device.KID, pinContext string, a store.KeyAccess) (device.Ref, error) {
	unit, kid := string(owner), string(k)
	if a.UnitID != unit {
		s.log.WarnContext(ctx, "key of another unit refused", "unit", unit, "kid", kid)
		return device.Ref{}, ErrKeyNotFound
	}
	if a.UnitState != store.UnitActive {
		return device.Ref{}, ErrUnitNotActive
	}
	if a.KeyState != store.KeyActive {
		return device.Ref{}, ErrKeyNotFound
	}
	if pinContext != "" && a.Context != "" && a.Context != pinContext {
		// A key obeys the context that made it: from another context it
		// is as missing as another unit's.
		s.log.WarnContext(ctx, "key of another context refused", "unit", unit, "kid", kid, "context", pinContext)
		return device.Ref{}, ErrKeyNotFound
	}
	return s.wrappedRef(ctx, owner, k, a.Wrapped, a.WrappedMAC)
}

// owned is ownedKey on a given access record, or on a fresh read when a is
// nil.
func (s *Keys) owned(ctx context.Context, unit, pinContext, kid string, a *store.KeyAccess) (device.Ref, error) {
	if a == nil {
		return s.ownedKey(ctx, unit, pinContext, kid)
	}
	owner, err := device.ParseOwner(unit)
	if err != nil {
		return device.Ref{}, fmt.Errorf("%w: unit id", ErrInvalidInput)
	}
	k, err := device.ParseKID(kid)
	if err != nil {
		return device.Ref{}, fmt.Errorf("%w: kid", ErrInvalidInput)
	}
	return s.checkAccess(ctx, owner, k, pinContext, *a)
}

// Generate makes a new key for the unit and records it. If the record
// cannot be written, the device key is destroyed again, so no key exists
// on the device without an owner on record.
func (s *Keys) Generate(ctx context.Context, unit string) (device.Key, error) {
	return s.generate(ctx, unit, "", 0)
}

func (s *Keys) generate(ctx context.Context, unit, pinContext string, quota int) (_ device.Key, err error) {
	defer s.metrics.observe(opGenerate, s.now(), &err)
	owner, err := s.activeUnit(ctx, unit)
	if err != nil {
		return device.Key{}, err
	}
	if quota > 0 {
		// Checked before the device works; the insert checks again.
		n, err := s.st.CountKeys(ctx, unit)
		if err != nil {
			return device.Key{}, storeErr(err)
		}
		if n >= quota {
			return device.Key{}, fmt.Errorf("%w: %d keys", ErrQuota, n)
		}
	}
	if err != nil {
		return device.Key{}, err
	}
	k, err := s.dev.Generate(ctx, owner)
	if err != nil {
		return device.Key{}, s.deviceErr(ctx, err)
	}
	pub, err := k.Public.Bytes()
	if err != nil {
		return device.Key{}, s.deviceErr(ctx, err)
	}
	rec := store.Key{
		KID: string(k.KID), UnitID: unit, PublicKey: pub, Context: pinContext,
		Backend: s.dev.Info().Backend, State: store.KeyActive, CreatedAt: s.now().UTC(),
	}
	if len(k.Wrapped) > 0 {
		if rec.WrappedMAC, err = s.wrappedMAC(ctx, owner, k.KID, k.Wrapped); err != nil {
			return device.Key{}, err
		}
		rec.Wrapped = k.Wrapped
	}
	if err = s.recordMACs(ctx, &rec); err == nil {
		err = s.st.InsertKeyLimited(ctx, rec, quota)
	}
	if err != nil {
		if derr := s.dev.Destroy(context.WithoutCancel(ctx), k.Ref()); derr != nil {
			s.log.ErrorContext(ctx, "orphaned device key: record failed and destroy failed",
				"unit", unit, "kid", k.KID, "err", derr)
		}
		if errors.Is(err, store.ErrQuota) {
			return device.Key{}, fmt.Errorf("%w: %v", ErrQuota, err)
		}
		return device.Key{}, storeErr(err)
	}
	s.log.InfoContext(ctx, "key generated", "unit", unit, "kid", k.KID, "context", pinContext)
	s.ev.Record(ctx, event.Event{Type: event.KeyGenerated, Time: rec.CreatedAt, Unit: unit, Context: pinContext, Kid: string(k.KID)})
	return k, nil
}

// PublicKey returns an owned key's public half, from the device.
func (s *Keys) PublicKey(ctx context.Context, unit, kid string) (_ device.Key, err error) {
	ref, err := s.ownedKey(ctx, unit, "", kid)
	if err != nil {
		return device.Key{}, err
	}
	k, err := s.dev.PublicKey(ctx, ref)
	if again, ok := s.retryMigrated(ctx, unit, "", kid, ref, err); ok {
		k, err = s.dev.PublicKey(ctx, again)
	}
	if err != nil {
		return device.Key{}, s.deviceErr(ctx, err)
	}
	return k, nil
}

// Sign signs a 32-byte digest with an owned key; the signature is raw r‖s.
func (s *Keys) Sign(ctx context.Context, unit, kid string, digest []byte) ([]byte, error) {
	return s.sign(ctx, unit, "", kid, digest)
}

func (s *Keys) sign(ctx context.Context, unit, pinContext, kid string, digest []byte) (_ []byte, err error) {
	return s.signWith(ctx, unit, pinContext, kid, nil, digest)
}

// signWith signs with an owned key, checking ownership on a (read by the
// caller with its replay check) or, when a is nil, on a fresh read.
func (s *Keys) signWith(ctx context.Context, unit, pinContext, kid string, a *store.KeyAccess, digest []byte) (_ []byte, err error) {
	defer s.metrics.observe(opSign, s.now(), &err)
	if err := device.CheckDigest(digest); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	ref, err := s.owned(ctx, unit, pinContext, kid, a)
	if err != nil {
		return nil, err
	}
	sig, err := s.dev.Sign(ctx, ref, digest)
	if again, ok := s.retryMigrated(ctx, unit, pinContext, kid, ref, err); ok {
		sig, err = s.dev.Sign(ctx, again, digest)
	}
	if err != nil {
		return nil, s.deviceErr(ctx, err)
	}
	if a == nil || !a.Logged { // else the replay check's statement appended it
		s.ev.Record(ctx, event.Event{Type: event.Signature, Time: s.now(), Unit: unit, Context: pinContext, Kid: kid})
	}
	return sig, nil
}

// ECDH derives the shared secret of an owned key and a validated peer
// point (see device.ParsePoint).
func (s *Keys) ECDH(ctx context.Context, unit, kid string, peer *ecdh.PublicKey) ([]byte, error) {
	return s.ecdh(ctx, unit, "", kid, peer)
}

func (s *Keys) ecdh(ctx context.Context, unit, pinContext, kid string, peer *ecdh.PublicKey) (_ []byte, err error) {
	return s.ecdhWith(ctx, unit, pinContext, kid, nil, peer)
}

func (s *Keys) ecdhWith(ctx context.Context, unit, pinContext, kid string, a *store.KeyAccess, peer *ecdh.PublicKey) (_ []byte, err error) {
	defer s.metrics.observe(opECDH, s.now(), &err)
	if peer == nil || peer.Curve() != ecdh.P256() {
		return nil, fmt.Errorf("%w: peer point", ErrInvalidInput)
	}
	ref, err := s.owned(ctx, unit, pinContext, kid, a)
	if err != nil {
		return nil, err
	}
	z, err := s.dev.ECDH(ctx, ref, peer)
	if again, ok := s.retryMigrated(ctx, unit, pinContext, kid, ref, err); ok {
		z, err = s.dev.ECDH(ctx, again, peer)
	}
	if err != nil {
		return nil, s.deviceErr(ctx, err)
	}
	s.ev.Record(ctx, event.Event{Type: event.ECDH, Time: s.now(), Unit: unit, Context: pinContext, Kid: kid})
	return z, nil
}

// List returns the unit's active key records, oldest first.
func (s *Keys) List(ctx context.Context, unit string) (_ []store.Key, err error) {
	defer s.metrics.observe(opList, s.now(), &err)
	if _, err := s.activeUnit(ctx, unit); err != nil {
		return nil, err
	}
	keys, err := s.st.ListKeys(ctx, unit)
	if err != nil {
		return nil, storeErr(err)
	}
	out := keys[:0]
	for _, k := range keys {
		if k.State == store.KeyActive {
			out = append(out, k)
		}
	}
	return out, nil
}

// Destroy destroys an owned key on the device and erases its record. The
// record is first marked destroying, so a crash between the two steps
// leaves a key nobody can use and Destroy can be called again.
func (s *Keys) Destroy(ctx context.Context, unit, kid string) error {
	return s.destroy(ctx, unit, "", kid)
}

func (s *Keys) destroy(ctx context.Context, unit, pinContext, kid string) (err error) {
	defer s.metrics.observe(opDestroy, s.now(), &err)
	owner, err := s.activeUnit(ctx, unit)
	if err != nil {
		return err
	}
	k, err := device.ParseKID(kid)
	if err != nil {
		return fmt.Errorf("%w: kid", ErrInvalidInput)
	}
	rec, err := s.st.GetKey(ctx, kid)
	if errors.Is(err, store.ErrNotFound) {
		return ErrKeyNotFound
	}
	if err != nil {
		return storeErr(err)
	}
	if rec.UnitID != unit || pinContext != "" && rec.Context != "" && rec.Context != pinContext {
		s.log.WarnContext(ctx, "destroy of another unit's or context's key refused", "unit", unit, "kid", kid)
		return ErrKeyNotFound
	}
	if err := s.st.SetKeyState(ctx, kid, store.KeyDestroying); err != nil {
		return storeErr(err)
	}
	// Attestations of the key say it is gone before it is: a verifier
	// never sees a valid status for a key that may no longer exist.
	if _, err := s.st.SetKeyStatus(ctx, unit, kid, store.StatusInvalid, s.now().UTC()); err != nil {
		return storeErr(err)
	}
	// The blob goes with the record; this instance's cached copy, if
	// any, now (other instances' caches are refused by the state check).
	err = s.dev.Destroy(ctx, device.Ref{Owner: owner, KID: k, Wrapped: rec.Wrapped})
	if err != nil && !errors.Is(err, device.ErrKeyNotFound) {
		return s.deviceErr(ctx, err)
	}
	if err := s.st.DeleteKey(ctx, kid); err != nil && !errors.Is(err, store.ErrNotFound) {
		return storeErr(err)
	}
	// The evidence entry, after the record is gone: for a wrapped key it
	// says the blob and MAC were erased with the record and this
	// instance's unwrapped copy destroyed (TestWrappedDestroyErases).
	s.log.InfoContext(ctx, "key destroyed", "unit", unit, "kid", kid)
	s.ev.Record(ctx, destroyedEvent(s.now(), unit, kid, rec.Wrapped))
	return nil
}

// destroyAll destroys every device key of a unit that is no longer active
// (Units.Destroy), whatever context made it, and reports how many. Each
// key is marked destroying first; a key the device no longer has counts
// as destroyed. The store rows go with the unit (store.EraseUnit).
func (s *Keys) destroyAll(ctx context.Context, unit string) (int, error) {
	owner, err := device.ParseOwner(unit)
	if err != nil {
		return 0, fmt.Errorf("%w: unit id", ErrInvalidInput)
	}
	recs, err := s.st.ListKeys(ctx, unit)
	if err != nil {
		return 0, storeErr(err)
	}
	for _, rec := range recs {
		k, err := device.ParseKID(rec.KID)
		if err != nil {
			return 0, fmt.Errorf("wscd: stored kid %q: %w", rec.KID, err)
		}
		if err := s.st.SetKeyState(ctx, rec.KID, store.KeyDestroying); err != nil && !errors.Is(err, store.ErrNotFound) {
			return 0, storeErr(err)
		}
		if err := s.dev.Destroy(ctx, device.Ref{Owner: owner, KID: k, Wrapped: rec.Wrapped}); err != nil && !errors.Is(err, device.ErrKeyNotFound) {
			return 0, s.deviceErr(ctx, err)
		}
		s.ev.Record(ctx, destroyedEvent(s.now(), unit, rec.KID, rec.Wrapped))
	}
	return len(recs), nil
}

// destroyedEvent is the evidence of a destroyed key: for a wrapped key
// (its blob goes with the record), that the blob was erased.
func destroyedEvent(at time.Time, unit, kid string, wrapped []byte) event.Event {
	how := event.DestroyedTokenObject
	if len(wrapped) > 0 {
		how = event.DestroyedBlobErased
	}
	return event.Event{Type: event.KeyDestroyed, Time: at, Unit: unit, Kid: kid, Data: []byte(how)}
}

// deviceErr maps device errors to service errors and logs causes a client
// must not see: device.ErrUnavailable and device.ErrClosed become
// ErrUnavailable (R2PS: TRY_LATER); an unclassified fault stays one
// (SERVER_ERROR).
func (s base) deviceErr(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, device.ErrKeyNotFound):
		return ErrKeyNotFound
	case errors.Is(err, device.ErrInvalidDigest), errors.Is(err, device.ErrInvalidPoint),
		errors.Is(err, device.ErrInvalidKID), errors.Is(err, device.ErrInvalidOwner),
		errors.Is(err, device.ErrKeyUsage):
		// ErrKeyUsage: the client named a key for an operation it does
		// not allow (a derive-only key to sign).
		return fmt.Errorf("%w: %v", ErrInvalidInput, err)
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, device.ErrUnavailable), errors.Is(err, device.ErrClosed), errors.Is(err, context.DeadlineExceeded):
		// An outage (or a device too slow to answer): the client may
		// retry later.
		s.log.WarnContext(ctx, "device unavailable", "err", err)
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	// A fault retrying will not fix (a key file that does not open, two
	// objects with one kid): a server error.
	s.log.ErrorContext(ctx, "device failure", "err", err)
	return fmt.Errorf("wscd: device failure: %w", err)
}

func storeErr(err error) error {
	switch {
	case errors.Is(err, store.ErrExists):
		return fmt.Errorf("%w: %w", ErrInvalidInput, err)
	case errors.Is(err, store.ErrUnitNotFound):
		return ErrUnitNotActive
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// Scoped is Keys seen from one PIN context of a unit's wallet:
// keys it generates remember the context, and it can use only keys made in
// that context or by an operator (no context). R2PS requests use it, so a
// key made in a context that demands sole control (sign: tasks) cannot be
// used from a session of another context.
type Scoped struct {
	s       *Keys
	context string
	quota   int
}

// In returns the keys scoped to a PIN context, with a key quota per
// unit (0: none).
func (s *Keys) In(pinContext string, quota int) Scoped {
	return Scoped{s: s, context: pinContext, quota: quota}
}

// Generate makes a key in the scope's context, within the quota.
func (sc Scoped) Generate(ctx context.Context, unit string) (device.Key, error) {
	return sc.s.generate(ctx, unit, sc.context, sc.quota)
}

// Sign is Keys.Sign for keys usable in the scope.
func (sc Scoped) Sign(ctx context.Context, unit, kid string, digest []byte) ([]byte, error) {
	return sc.s.sign(ctx, unit, sc.context, kid, digest)
}

// SignWithAccess is Sign with the key's access record a already read (with
// the request's replay check, store.UseNonceForKey): no second read. A nil
// a means none was read, and Sign's read is made.
func (sc Scoped) SignWithAccess(ctx context.Context, unit, kid string, a *store.KeyAccess, digest []byte) ([]byte, error) {
	return sc.s.signWith(ctx, unit, sc.context, kid, a, digest)
}

// ECDHWithAccess is ECDH with the key's access record a already read (nil:
// not read).
func (sc Scoped) ECDHWithAccess(ctx context.Context, unit, kid string, a *store.KeyAccess, peer *ecdh.PublicKey) ([]byte, error) {
	return sc.s.ecdhWith(ctx, unit, sc.context, kid, a, peer)
}

// ECDH is Keys.ECDH for keys usable in the scope.
func (sc Scoped) ECDH(ctx context.Context, unit, kid string, peer *ecdh.PublicKey) ([]byte, error) {
	return sc.s.ecdh(ctx, unit, sc.context, kid, peer)
}

// Destroy is Keys.Destroy for keys usable in the scope.
func (sc Scoped) Destroy(ctx context.Context, unit, kid string) error {
	return sc.s.destroy(ctx, unit, sc.context, kid)
}

// List returns the unit's active keys usable in the scope.
func (sc Scoped) List(ctx context.Context, unit string) ([]store.Key, error) {
	keys, err := sc.s.List(ctx, unit)
	if err != nil {
		return nil, err
	}
	out := keys[:0]
	for _, k := range keys {
		if k.Context == "" || k.Context == sc.context {
			out = append(out, k)
		}
	}
	return out, nil
}
