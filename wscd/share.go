package wscd

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/store"
)

// PurposeShare names the device key each role agrees the share key with.
const PurposeShare = "share"

// shareLabel starts the HKDF info of the share keys.
const shareLabel = "wsca-share-v1"

// ErrNoPeer means the other role's share key is not in the store yet: no
// instance of it has started.
var ErrNoPeer = errors.New("wscd: the other role's share key is not in the store yet")

// ErrPeerNotPinned means the other role's share key in the store is not
// the one this role was configured to share with (SharePeer): a database
// writer's key, or a role re-created without reconfiguring this one.
var ErrPeerNotPinned = errors.New("wscd: the other role's share key in the store is not the configured one")

// ShareSealer derives the sealer the WSCD and WSCA roles share when they
// run in processes with devices of their own: static ECDH between this
// role's share key (on its own device) and the other role's (its public
// key from the store), HKDF-SHA256 with both public keys in the info.
// Each role computes it inside its own HSM; the store holds only public
// keys, so neither the database nor a role without its device can derive
// it. peerPrefix is the other role's Prefix ("" for the WSCD, WSCAPrefix
// for the WSCA). The WSCD seals what a WSCA instance must read under it
// (session keys, client-key MACs); the WSCA never writes under it what
// the WSCD relies on. The other role's public key comes from the store:
// with pin set, it must be the key whose kid pin is (ErrPeerNotPinned),
// else a database writer could put a key of their own there and derive
// the share key with this role.
func (s *ServerKeys) ShareSealer(ctx context.Context, peerPrefix string, pin device.KID) (*Sealer, error) {
	if peerPrefix == s.prefix {
		return nil, errors.New("wscd: a share key is agreed with the other role")
	}
	own, err := s.Key(ctx, PurposeShare)
	if err != nil {
		return nil, err
	}
	rec, err := s.st.GetServerKey(ctx, peerPrefix+PurposeShare)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoPeer
	}
	if err != nil {
		return nil, storeErr(err)
	}
	peerKey, err := serverKeyFromRecord(rec)
	if err != nil {
		return nil, err
	}
	if pin != "" {
		kid, err := device.KIDOf(peerKey.Public)
		if err != nil || subtle.ConstantTimeCompare([]byte(kid), []byte(pin)) != 1 {
			return nil, fmt.Errorf("%w: found %s, configured %s", ErrPeerNotPinned, kid, pin)
		}
	}
	peer, err := peerKey.Public.ECDH()
	if err != nil {
		return nil, fmt.Errorf("%w: peer share key: %v", ErrUnavailable, err)
	}
	z, err := s.ECDH(ctx, own, peer)
	if err != nil {
		return nil, err
	}
	defer clear(z)
	// The info names both keys in a fixed order, so both sides derive the
	// same key and no other pair does.
	a, err := own.Public.Bytes()
	if err != nil {
		return nil, err
	}
	b, err := peerKey.Public.Bytes()
	if err != nil {
		return nil, err
	}
	if bytes.Compare(a, b) > 0 {
		a, b = b, a
	}
	info := append(append([]byte(shareLabel), a...), b...)
	key, err := hkdf.Key(sha256.New, z, nil, string(append(bytes.Clone(info), "-aead"...)), 32)
	if err != nil {
		return nil, fmt.Errorf("wscd: share key: %w", err)
	}
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("wscd: share key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("wscd: share key: %w", err)
	}
	macKey, err := hkdf.Key(sha256.New, z, nil, string(append(info, "-mac"...)), 32)
	if err != nil {
		return nil, fmt.Errorf("wscd: share MAC key: %w", err)
	}
	s.log.InfoContext(ctx, "share key agreed with the other role", "own", own.KID, "peer", device.KID(rec.KID))
	return &Sealer{aead: aead, macKey: macKey, rand: rand.Reader}, nil
}

// shareRetry is how often Share looks for the other role's key again.
const shareRetry = 10 * time.Second

// Share is the share key as one role holds it: derived when first needed
// and the other role's key is in the store, looked for again at most every
// shareRetry until then. It is safe for concurrent use.
type Share struct {
	keys       *ServerKeys
	peerPrefix string
	pin        device.KID
	off        bool

	mu     sync.Mutex
	sealer *Sealer
	next   time.Time
}

// NewShare returns the share key of keys' role with the role whose prefix
// is peerPrefix. With pin set, only the other role's key whose kid it is
// is shared with (see ShareSealer); "" shares with whatever key the store
// holds under the other role's name.
func NewShare(keys *ServerKeys, peerPrefix string, pin device.KID) *Share {
	return &Share{keys: keys, peerPrefix: peerPrefix, pin: pin}
}

// NoShare returns a Share that never has a sealer: the role shares nothing
// (an instance serving both roles with no WSCA-only instance configured).
func NoShare(keys *ServerKeys) *Share { return &Share{keys: keys, off: true} }

// Sealer returns the share sealer, or nil without an error while the other
// role has no share key in the store yet.
func (s *Share) Sealer(ctx context.Context) (*Sealer, error) {
	if s == nil || s.off {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sealer != nil {
		return s.sealer, nil
	}
	now := s.keys.now()
	if now.Before(s.next) {
		return nil, nil
	}
	sl, err := s.keys.ShareSealer(ctx, s.peerPrefix, s.pin)
	if errors.Is(err, ErrPeerNotPinned) {
		// Nothing is shared with that key; looked for again later (an
		// operator may put the right key back).
		s.keys.log.ErrorContext(ctx, "share key: the other role's key in the store is not the configured one; nothing shared", "err", err)
		s.next = now.Add(shareRetry)
		return nil, nil
	}
	if errors.Is(err, ErrNoPeer) {
		s.next = now.Add(shareRetry)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.sealer = sl
	return sl, nil
}

// BackfillStore is what Backfill needs of the store.
type BackfillStore interface {
	ClientKeysWithoutShareMAC(ctx context.Context, after string, limit int) ([]store.ClientKey, error)
	SetClientKeyShareMAC(ctx context.Context, kid string, publicKey, mac []byte) error
}

// Backfill gives the client keys enrolled before the share key existed
// their share MAC, after checking their own MAC under own (the WSCD's
// sealer): a row planted in the database gets none. It returns how many
// it MACed; with no share key yet, none.
func (s *Share) Backfill(ctx context.Context, st BackfillStore, own MACer) (int, error) {
	sl, err := s.Sealer(ctx)
	if err != nil || sl == nil {
		return 0, err
	}
	return backfill(ctx, st.ClientKeysWithoutShareMAC, func(k store.ClientKey) string { return k.KID },
		func(k store.ClientKey) (bool, error) {
			if !hmac.Equal(k.MAC, ClientKeyMAC(own, k)) {
				s.keys.log.ErrorContext(ctx, "client key fails its MAC: no share MAC given", "unit", k.UnitID, "kid", k.KID)
				return false, nil
			}
			return stored(st.SetClientKeyShareMAC(ctx, k.KID, k.PublicKey, ClientKeyMAC(sl, k)))
		})
}

// backfill pages through the rows list gives (after the id of the last
// row seen, backfillBatch at a time) and calls one on each, which reports
// whether it gave the row its MAC; an error from one stops the backfill.
// It returns how many rows got their MAC.
func backfill[T any](ctx context.Context, list func(ctx context.Context, after string, limit int) ([]T, error),
	id func(T) string, one func(T) (bool, error)) (int, error) {
	n, after := 0, ""
	for {
		rows, err := list(ctx, after, backfillBatch)
		if err != nil {
			return n, storeErr(err)
		}
		if len(rows) == 0 {
			return n, nil
		}
		for _, r := range rows {
			after = id(r)
			ok, err := one(r)
			if err != nil {
				return n, err
			}
			if ok {
				n++
			}
		}
	}
}

// stored is the outcome of writing a backfilled MAC: a row changed or
// removed since it was read (store.ErrNotFound) is skipped.
func stored(err error) (bool, error) {
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	}
	return false, storeErr(err)
}

// assuranceSecret names the WSCD's configured device assurance as it
// publishes it for WSCA instances, MACed under the share key.
const assuranceSecret = "wscd-device-assurance"

// assuranceMACDomain separates that MAC from others.
const assuranceMACDomain = "wsca-wscd-assurance-v1"

// AssuranceStore is what PublishAssurance and ReadAssurance need.
type AssuranceStore interface {
	GetServerSecret(ctx context.Context, name string) ([]byte, error)
	SetServerSecret(ctx context.Context, name string, value []byte, now time.Time) error
}

// backendSecret names the WSCD's wallet-key device backend as it
// publishes it for WSCA instances, MACed under the share key.
const backendSecret = "wscd-device-backend"

// backendMACDomain separates that MAC from others.
const backendMACDomain = "wsca-wscd-backend-v1"

// PublishAssurance records the wallet-key device's configured assurance
// and its backend for WSCA instances, which put the assurance in key
// attestations of keys of that backend only: MACed under the share key, so
// someone who can write the database cannot raise the one or change the
// other. It does nothing while there is no share key.
func (s *Share) PublishAssurance(ctx context.Context, st AssuranceStore, info device.Info) error {
	sl, err := s.Sealer(ctx)
	if err != nil || sl == nil {
		return err
	}
	for _, p := range []struct{ name, domain, value string }{
		{assuranceSecret, assuranceMACDomain, string(info.Assurance)},
		{backendSecret, backendMACDomain, info.Backend},
	} {
		mac := sl.MAC(p.domain, []byte(p.value))
		v := append(append([]byte(p.value), 0), mac...)
		if err := st.SetServerSecret(ctx, p.name, v, s.keys.now().UTC()); err != nil {
			return storeErr(err)
		}
	}
	return nil
}

// ReadBackend returns the wallet-key device backend the WSCD published, or
// "" (no key is of that backend) when there is none, no share key yet, or
// its MAC fails.
func (s *Share) ReadBackend(ctx context.Context, st AssuranceStore) (string, error) {
	sl, err := s.Sealer(ctx)
	if err != nil || sl == nil {
		return "", err
	}
	v, err := st.GetServerSecret(ctx, backendSecret)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", storeErr(err)
	}
	i := bytes.IndexByte(v, 0)
	if i <= 0 || !hmac.Equal(v[i+1:], sl.MAC(backendMACDomain, v[:i])) {
		s.keys.log.ErrorContext(ctx, "the WSCD's published device backend fails its MAC: attesting no key")
		return "", nil
	}
	return string(v[:i]), nil
}

// ReadAssurance returns the assurance the WSCD published, or
// device.AssuranceNotCertified (claiming nothing) when there is none, no
// share key yet, or its MAC fails.
func (s *Share) ReadAssurance(ctx context.Context, st AssuranceStore) (device.Assurance, error) {
	sl, err := s.Sealer(ctx)
	if err != nil || sl == nil {
		return device.AssuranceNotCertified, err
	}
	v, err := st.GetServerSecret(ctx, assuranceSecret)
	if errors.Is(err, store.ErrNotFound) {
		return device.AssuranceNotCertified, nil
	}
	if err != nil {
		return device.AssuranceNotCertified, storeErr(err)
	}
	i := bytes.IndexByte(v, 0)
	if i < 0 || !hmac.Equal(v[i+1:], sl.MAC(assuranceMACDomain, v[:i])) {
		s.keys.log.ErrorContext(ctx, "the WSCD's published device assurance fails its MAC: claiming nothing")
		return device.AssuranceNotCertified, nil
	}
	a, err := device.ParseAssurance(string(v[:i]))
	if err != nil {
		return device.AssuranceNotCertified, nil
	}
	return a, nil
}

// Prefix returns the namespace of these server keys (ServerKeysConfig).
func (s *ServerKeys) Prefix() string { return s.prefix }
