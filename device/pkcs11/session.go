//go:build cgo && !nopkcs11

package pkcs11

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	p11 "github.com/miekg/pkcs11"

	"github.com/wsca/wsca/device"
)

// generation is one initialisation of the library: its slot, sessions and
// the object handles found through them. A failure that invalidates the
// sessions breaks the generation; the next operation builds a new one.
type generation struct {
	slot        uint
	pool        chan p11.SessionHandle
	broken      chan struct{}
	breakOnce   sync.Once
	description string

	hmu     sync.RWMutex
	handles map[device.KID]cachedKey

	// w is the wrapped storage state (wrapping key, cache of unwrapped
	// keys); nil in token storage. It dies with the generation: a
	// re-initialisation drops the cache, whose objects died with the
	// sessions.
	w *wrapState
}

type cachedKey struct {
	owner device.Owner
	priv  p11.ObjectHandle
}

func (g *generation) markBroken() { g.breakOnce.Do(func() { close(g.broken) }) }

// errBroken tells an operation that its generation died and it should retry
// on a new one.
var errBroken = errors.New("pkcs11: generation broken")

// Open loads the module, finds the token, opens the session pool and logs in.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Device, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lib := p11.New(cfg.Module)
	if lib == nil {
		return nil, fmt.Errorf("pkcs11: cannot load module %s", cfg.Module)
	}
	d := &Device{cfg: cfg, log: log, calls: device.NewCallCounter(callNames...), lib: lib}
	g, err := d.start(ctx)
	if err != nil {
		lib.Destroy()
		return nil, err
	}
	d.g = g
	return d, nil
}

// start initialises the library (tolerating an initialisation by another
// user in this process), finds the token, opens the pool and logs in.
func (d *Device) start(ctx context.Context) (*generation, error) {
	d.calls.Inc(CallInitialize)
	if err := d.lib.Initialize(); err != nil && !isCode(err, p11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		return nil, fmt.Errorf("%w: C_Initialize: %v", device.ErrUnavailable, err)
	}
	slot, desc, err := d.findSlot()
	if err != nil {
		return nil, err
	}
	n := d.cfg.sessions()
	g := &generation{
		slot: slot, description: desc,
		pool:    make(chan p11.SessionHandle, n),
		broken:  make(chan struct{}),
		handles: make(map[device.KID]cachedKey),
	}
	for i := range n {
		if err := ctx.Err(); err != nil {
			d.closeSessions(g)
			return nil, err
		}
		d.calls.Inc(CallOpenSession)
		s, err := d.lib.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
		if err != nil {
			d.closeSessions(g)
			return nil, fmt.Errorf("%w: C_OpenSession: %v", device.ErrUnavailable, err)
		}
		if i == 0 {
			// Login is per application and slot: one login covers every session.
			d.calls.Inc(CallLogin)
			if err := d.lib.Login(s, p11.CKU_USER, d.cfg.PIN); err != nil && !isCode(err, p11.CKR_USER_ALREADY_LOGGED_IN) {
				d.lib.CloseSession(s)
				d.closeSessions(g)
				if isCode(err, p11.CKR_PIN_INCORRECT) || isCode(err, p11.CKR_PIN_LOCKED) {
					// Unavailable too: after a re-initialisation, the token
					// is unusable until its operator fixes the PIN.
					return nil, fmt.Errorf("%w: login to %s refused: %v", device.ErrUnavailable, desc, err)
				}
				return nil, fmt.Errorf("%w: C_Login: %v", device.ErrUnavailable, err)
			}
		}
		g.pool <- s
	}
	if d.cfg.storage() == device.StorageWrapped {
		s := <-g.pool
		w, err := d.openWrapped(ctx, slot, s)
		g.pool <- s
		if err != nil {
			d.closeSessions(g)
			return nil, err
		}
		g.w = w
	}
	return g, nil
}

func (d *Device) findSlot() (uint, string, error) {
	d.calls.Inc(CallGetSlotList)
	slots, err := d.lib.GetSlotList(true)
	if err != nil {
		return 0, "", fmt.Errorf("%w: C_GetSlotList: %v", device.ErrUnavailable, err)
	}
	for _, s := range slots {
		if d.cfg.SlotID != nil {
			if s == *d.cfg.SlotID {
				return s, fmt.Sprintf("slot %d", s), nil
			}
			continue
		}
		d.calls.Inc(CallGetTokenInfo)
		ti, err := d.lib.GetTokenInfo(s)
		if err != nil {
			continue // a slot may lose its token while we look
		}
		if ti.Flags&p11.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		if d.cfg.TokenLabel != "" && ti.Label == d.cfg.TokenLabel ||
			d.cfg.Serial != "" && ti.SerialNumber == d.cfg.Serial {
			return s, fmt.Sprintf("token %q (%s %s, serial %s)", ti.Label, ti.ManufacturerID, ti.Model, ti.SerialNumber), nil
		}
	}
	return 0, "", fmt.Errorf("%w: token not found: %s", device.ErrUnavailable, d.cfg)
}

func (d *Device) closeSessions(g *generation) {
	for {
		select {
		case s := <-g.pool:
			d.calls.Inc(CallCloseSession)
			d.lib.CloseSession(s)
		default:
			return
		}
	}
}

// reinit replaces a broken generation: finalise, initialise, log in. If
// another operation already replaced it, there is nothing to do.
func (d *Device) reinit(ctx context.Context, old *generation) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return device.ErrClosed
	}
	if d.g != old {
		return nil // replaced already (old == nil: an earlier re-init failed and d.g is nil)
	}
	d.log.WarnContext(ctx, "pkcs11: re-initialising the library", "device", d.cfg)
	d.g = nil
	if old != nil {
		d.closeSessions(old)
	}
	d.calls.Inc(CallFinalize)
	_ = d.lib.Finalize() // the library is usually already finalised or broken; its answer changes nothing
	g, err := d.start(ctx)
	if err != nil {
		return err
	}
	d.g = g
	d.log.InfoContext(ctx, "pkcs11: re-initialised", "token", g.description)
	return nil
}

// do runs fn on a pooled session. If the call fails in a way that means the
// library or token went away, it re-initialises and runs fn once more.
//
// Every error it returns is classified (see classify): an outage the
// re-initialisation does not cure is device.ErrUnavailable.
func (d *Device) do(ctx context.Context, fn func(g *generation, s p11.SessionHandle) error) error {
	for attempt := 0; ; attempt++ {
		g, err := d.try(ctx, fn)
		if !errors.Is(err, errBroken) {
			return classify(err)
		}
		if attempt == 1 {
			return fmt.Errorf("%w: device failed again after re-initialisation", device.ErrUnavailable)
		}
		// Only the generation this call saw fail is replaced: a late failure
		// from before a re-init must not tear down the new generation.
		if err := d.reinit(ctx, g); err != nil {
			return classify(err)
		}
	}
}

// try runs fn once on the current generation and returns that generation.
func (d *Device) try(ctx context.Context, fn func(g *generation, s p11.SessionHandle) error) (*generation, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, device.ErrClosed
	}
	g := d.g
	if g == nil {
		return nil, errBroken // an earlier re-init failed; try again
	}
	var s p11.SessionHandle
	select {
	case s = <-g.pool:
	case <-g.broken:
		return g, errBroken
	case <-ctx.Done():
		return g, ctx.Err()
	}
	err := fn(g, s)
	if fatal(err) {
		g.markBroken()
		d.log.WarnContext(ctx, "pkcs11: device failure", "err", err)
		return g, errBroken
	}
	g.pool <- s
	return g, err
}

// fatal reports whether err means the sessions or the library are gone:
// the current generation is broken and a re-initialisation may cure it.
func fatal(err error) bool {
	var e p11.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e {
	case p11.CKR_CRYPTOKI_NOT_INITIALIZED, p11.CKR_SESSION_HANDLE_INVALID, p11.CKR_SESSION_CLOSED,
		p11.CKR_DEVICE_ERROR, p11.CKR_DEVICE_REMOVED, p11.CKR_TOKEN_NOT_PRESENT,
		p11.CKR_TOKEN_NOT_RECOGNIZED, p11.CKR_USER_NOT_LOGGED_IN, p11.CKR_GENERAL_ERROR,
		p11.CKR_SLOT_ID_INVALID:
		return true
	}
	return false
}

// unavailable reports whether err means the token cannot serve now but
// may later: every fatal code (when re-initialisation did not cure it),
// and the token or host out of memory or sessions, a failed or cancelled
// function, a PIN that no longer logs in.
func unavailable(err error) bool {
	if fatal(err) {
		return true
	}
	var e p11.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e {
	case p11.CKR_DEVICE_MEMORY, p11.CKR_HOST_MEMORY, p11.CKR_SESSION_COUNT, p11.CKR_FUNCTION_FAILED,
		p11.CKR_FUNCTION_CANCELED, p11.CKR_CANCEL, p11.CKR_PIN_INCORRECT, p11.CKR_PIN_LOCKED, p11.CKR_PIN_EXPIRED:
		return true
	}
	return false
}

// stale reports whether err means a cached object handle no longer names
// an object (destroyed by another process sharing the token).
func stale(err error) bool {
	return isCode(err, p11.CKR_KEY_HANDLE_INVALID) || isCode(err, p11.CKR_OBJECT_HANDLE_INVALID)
}

func isCode(err error, code uint) bool {
	var e p11.Error
	return errors.As(err, &e) && uint(e) == code
}
