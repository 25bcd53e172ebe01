// Package statuslists is the server side of wsca's Token Status Lists: it
// allocates status entries (keyed, unpredictable indices over a pool of
// shards), keeps each list's packed array in memory, applies the store's
// changes incrementally, republishes signed statuslist+jwt and
// statuslist+cwt tokens after a debounce, stores them by compare-and-set
// so that every instance serves the same bytes, and serves
// GET /statuslists/{id}. docs/status-lists.md describes the profile.
package statuslists

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/wsca/wsca/statuslist"
	"github.com/wsca/wsca/store"
)

// Bits is the number of bits per entry wsca issues: VALID, INVALID and
// SUSPENDED need two.
const Bits = 2

// MinShardSize is the smallest list wsca publishes (herd privacy).
const MinShardSize = 10000

// DefaultUnitLimit entries per DefaultUnitWindow is what one unit may be
// given when Config does not say: far above what a wallet asks for (a key
// attestation names up to 32 keys; a WIA lives up to a day), far below
// what would let one unit fill lists.
const (
	DefaultUnitLimit  = 1000
	DefaultUnitWindow = 24 * time.Hour
)

// maxShardSize keeps a list's token within what verifiers accept by
// default (statuslist.DefaultMaxEntries).
const maxShardSize = statuslist.DefaultMaxEntries

// ErrConfig means a bad Config.
var ErrConfig = errors.New("statuslists: bad configuration")

// Config sets up a Publisher.
type Config struct {
	// BaseURI is the public base of the WSCA role, such as
	// https://wsca.example; a list's URI (the token's sub and the
	// referenced tokens' uri) is BaseURI + "/statuslists/" + id.
	BaseURI string
	// ShardSize is the number of entries of a list (≥ 10 000).
	ShardSize int
	// Pool is the number of lists kept active (K ≥ 1).
	Pool int
	// Lifetime is exp − iat of a token; TTL its ttl claim (and the HTTP
	// max-age). 0 < TTL ≤ Lifetime.
	Lifetime, TTL time.Duration
	// Debounce is how long a change waits for others before the lists are
	// republished (≥ 0).
	Debounce time.Duration
	// Refresh is how often the lists are checked for changes made by other
	// instances and tokens older than Lifetime/2 are signed again; 0 means
	// min(TTL, Lifetime/2).
	Refresh time.Duration
	// Signer signs the tokens (ES256, P-256), Chain certifies it (leaf
	// first, no trust anchor), KeyID names it; give Chain, KeyID or both.
	Signer crypto.Signer
	Chain  []*x509.Certificate
	KeyID  string
	// UnitLimit is how many entries (key attestations and WIAs together)
	// one unit may be given within UnitWindow; one more is refused
	// (store.ErrQuota), so that no unit can grow the lists without bound.
	// 0 means DefaultUnitLimit per DefaultUnitWindow.
	UnitLimit  int
	UnitWindow time.Duration
	// IndexKey is the 32-byte secret of the index permutation; each list
	// derives its own key from it. It must be the same on every instance
	// and must not change while lists are active.
	IndexKey []byte
	// Logger receives errors of background publishing; nil means
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// after is the timer (tests replace it).
	after func(time.Duration) <-chan time.Time
	// onPublish is called after a list's tokens are stored (tests).
	onPublish func(listID string, version int64)
}

func (c *Config) check() error {
	u, err := url.Parse(c.BaseURI)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("%w: base URI %q is not an absolute URL", ErrConfig, c.BaseURI)
	case !secureBase(u):
		// Attestations refuse such a status list uri (attest.StatusRef):
		// every one would fail when issued.
		return fmt.Errorf("%w: base URI %q is not https (http only on a loopback host): set the public URL", ErrConfig, c.BaseURI)
	case c.ShardSize < MinShardSize || c.ShardSize > maxShardSize:
		return fmt.Errorf("%w: shard size %d not in [%d, %d]", ErrConfig, c.ShardSize, MinShardSize, maxShardSize)
	case c.Pool < 1:
		return fmt.Errorf("%w: pool %d < 1", ErrConfig, c.Pool)
	case c.TTL < time.Second || c.Lifetime < c.TTL:
		return fmt.Errorf("%w: need 1s ≤ ttl (%v) ≤ lifetime (%v)", ErrConfig, c.TTL, c.Lifetime)
	case c.Debounce < 0 || c.Refresh < 0:
		return fmt.Errorf("%w: negative debounce or refresh", ErrConfig)
	case c.UnitLimit < 0 || c.UnitWindow < 0:
		return fmt.Errorf("%w: negative unit limit or window", ErrConfig)
	case len(c.IndexKey) != statuslist.IndexKeySize:
		return fmt.Errorf("%w: index key of %d bytes, want %d", ErrConfig, len(c.IndexKey), statuslist.IndexKeySize)
	case c.Signer == nil || (len(c.Chain) == 0 && c.KeyID == ""):
		return fmt.Errorf("%w: a signer with a chain or key id is required", ErrConfig)
	}
	return nil
}

// secureBase reports whether u is https, or http on a loopback host
// (development), as a status list uri must be.
func secureBase(u *url.URL) bool {
	switch u.Scheme {
	case "https":
		return true
	case "http":
		ip, err := netip.ParseAddr(u.Hostname())
		return u.Hostname() == "localhost" || err == nil && ip.IsLoopback()
	}
	return false
}

// Store is what the publisher needs of the store.
type Store interface {
	AllocateStatus(ctx context.Context, a store.StatusAllocation) (store.StatusEntry, error)
	StatusLists(ctx context.Context) ([]store.StatusList, error)
	GetStatusList(ctx context.Context, id string) (store.StatusList, error)
	ListStatuses(ctx context.Context, listID string) ([]store.StatusChange, int64, error)
	StatusChangesSince(ctx context.Context, listID string, seq int64) ([]store.StatusChange, error)
	PutStatusToken(ctx context.Context, t store.StatusToken) (bool, error)
	GetStatusToken(ctx context.Context, listID, format string) (store.StatusToken, error)
}

// Publisher publishes the status lists of one store. Its methods are safe
// for concurrent use.
type Publisher struct {
	cfg    Config
	st     Store
	base   string
	notify chan struct{}

	mu    sync.Mutex // serialises builds; guards lists
	lists map[string]*memList
}

// memList is a list as last built: its array and the version it shows.
type memList struct {
	list    *statuslist.List
	version int64
}

// New returns a publisher; start its background loop with Run.
func New(st Store, cfg Config) (*Publisher, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if err := (&statuslist.SignOptions{Chain: cfg.Chain, KeyID: cfg.KeyID}).Check(cfg.Signer); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.Refresh == 0 {
		cfg.Refresh = min(cfg.TTL, cfg.Lifetime/2)
	}
	if cfg.UnitLimit == 0 {
		cfg.UnitLimit = DefaultUnitLimit
	}
	if cfg.UnitWindow == 0 {
		cfg.UnitWindow = DefaultUnitWindow
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.after == nil {
		cfg.after = time.After
	}
	return &Publisher{
		cfg:    cfg,
		st:     st,
		base:   strings.TrimRight(cfg.BaseURI, "/") + "/statuslists/",
		notify: make(chan struct{}, 1),
		lists:  make(map[string]*memList),
	}, nil
}

// URI returns the URI of a list: the sub of its tokens and the uri of the
// references to it.
func (p *Publisher) URI(listID string) string { return p.base + listID }

// Allocate hands out a status entry for a unit's WIA (kind wia, kid "") or
// one of its keys, and returns the reference the attestation carries. For
// a key attestation, attested are all the keys it names, recorded with the
// entry so that destroying any of them invalidates it.
func (p *Publisher) Allocate(ctx context.Context, unit string, kind store.StatusKind, kid string, attested ...string) (statuslist.Reference, error) {
	e, err := p.st.AllocateStatus(ctx, store.StatusAllocation{
		Unit: unit, Kind: kind, KID: kid, Attested: attested,
		Pool: p.cfg.Pool, Size: int64(p.cfg.ShardSize), Bits: Bits,
		Index: p.index,
		At:    p.cfg.Now(),
		Limit: p.cfg.UnitLimit, Window: p.cfg.UnitWindow,
	})
	if err != nil {
		return statuslist.Reference{}, fmt.Errorf("statuslists: allocate: %w", err)
	}
	return statuslist.Reference{Index: uint64(e.Index), URI: p.URI(e.ListID)}, nil
}

// index is the permutation of a list's counters.
func (p *Publisher) index(listID string, size, counter int64) (int64, error) {
	key, err := statuslist.ListIndexKey(p.cfg.IndexKey, listID)
	if err != nil {
		return 0, err
	}
	perm, err := statuslist.NewPermutation(key, uint64(size))
	if err != nil {
		return 0, err
	}
	x, err := perm.Index(uint64(counter))
	return int64(x), err
}

// Notify tells the publisher that statuses changed; the lists are
// republished once the debounce delay has passed, however many
// notifications arrive meanwhile. It never blocks.
func (p *Publisher) Notify() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// Run republishes after notifications (debounced) and every Refresh, until
// ctx ends.
func (p *Publisher) Run(ctx context.Context) error {
	refresh := p.cfg.after(p.cfg.Refresh)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.notify:
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-p.cfg.after(p.cfg.Debounce):
			}
			// Notifications that came during the delay are covered by
			// this publication: it reads the store after them.
			select {
			case <-p.notify:
			default:
			}
		case <-refresh:
			refresh = p.cfg.after(p.cfg.Refresh)
		}
		if err := p.PublishAll(ctx); err != nil && ctx.Err() == nil {
			p.cfg.Logger.Error("status lists: publish", "err", err)
		}
	}
}

// PublishAll publishes every list that is not retired, and returns the
// first error after trying them all.
func (p *Publisher) PublishAll(ctx context.Context) error {
	ls, err := p.st.StatusLists(ctx)
	if err != nil {
		return fmt.Errorf("statuslists: %w", err)
	}
	var first error
	for _, l := range ls {
		if err := p.Publish(ctx, l.ID); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Publish brings a list's array up to date from the store (in full the
// first time, then only the changes) and, when its version is newer than
// the stored tokens or they are older than Lifetime/2, signs new tokens
// and stores them; a newer token stored by another instance wins.
func (p *Publisher) Publish(ctx context.Context, listID string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, err := p.update(ctx, listID)
	if err != nil {
		return err
	}
	now := p.cfg.Now()
	stale := func(format string) bool {
		t, err := p.st.GetStatusToken(ctx, listID, format)
		return err != nil || t.Version < m.version || now.Sub(t.IssuedAt) >= p.cfg.Lifetime/2
	}
	if !stale(store.StatusFormatJWT) && !stale(store.StatusFormatCWT) {
		return nil
	}
	lst, err := m.list.Encode()
	if err != nil {
		return fmt.Errorf("statuslists: %w", err)
	}
	tok := &statuslist.Token{
		Subject:  p.URI(listID),
		IssuedAt: now.Truncate(time.Second),
		TTL:      p.cfg.TTL,
		Bits:     Bits,
		Lst:      lst,
	}
	tok.Expiry = tok.IssuedAt.Add(p.cfg.Lifetime)
	opts := statuslist.SignOptions{Chain: p.cfg.Chain, KeyID: p.cfg.KeyID}
	for _, f := range []struct {
		name string
		sign func(*statuslist.Token, crypto.Signer, statuslist.SignOptions) ([]byte, error)
	}{
		{store.StatusFormatJWT, statuslist.SignJWT},
		{store.StatusFormatCWT, statuslist.SignCWT},
	} {
		b, err := f.sign(tok, p.cfg.Signer, opts)
		if err != nil {
			return fmt.Errorf("statuslists: list %s: %w", listID, err)
		}
		if _, err := p.st.PutStatusToken(ctx, store.StatusToken{
			ListID: listID, Format: f.name, Version: m.version,
			IssuedAt: now, ETag: etag(b), Token: b,
		}); err != nil {
			return fmt.Errorf("statuslists: list %s: %w", listID, err)
		}
	}
	if p.cfg.onPublish != nil {
		p.cfg.onPublish(listID, m.version)
	}
	return nil
}

// update returns the list brought up to date; p.mu is held.
func (p *Publisher) update(ctx context.Context, listID string) (*memList, error) {
	m := p.lists[listID]
	if m == nil {
		l, err := p.st.GetStatusList(ctx, listID)
		if err != nil {
			return nil, fmt.Errorf("statuslists: %w", err)
		}
		list, err := statuslist.New(l.Bits, int(l.Size))
		if err != nil {
			return nil, fmt.Errorf("statuslists: list %s: %w", listID, err)
		}
		changes, version, err := p.st.ListStatuses(ctx, listID)
		if err != nil {
			return nil, fmt.Errorf("statuslists: %w", err)
		}
		if err := apply(list, changes); err != nil {
			return nil, fmt.Errorf("statuslists: list %s: %w", listID, err)
		}
		m = &memList{list: list, version: version}
		p.lists[listID] = m
		return m, nil
	}
	changes, err := p.st.StatusChangesSince(ctx, listID, m.version)
	if err != nil {
		return nil, fmt.Errorf("statuslists: %w", err)
	}
	if err := apply(m.list, changes); err != nil {
		return nil, fmt.Errorf("statuslists: list %s: %w", listID, err)
	}
	for _, c := range changes {
		m.version = max(m.version, c.Seq)
	}
	return m, nil
}

func apply(l *statuslist.List, changes []store.StatusChange) error {
	for _, c := range changes {
		if err := l.Set(int(c.Index), statuslist.Status(c.Status)); err != nil {
			return err
		}
	}
	return nil
}

// etag is a strong validator of a token's bytes.
func etag(b []byte) string {
	h := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(h[:18]) + `"`
}
