package wscd

import (
	"bytes"
	"context"
	"crypto/hmac"
	"errors"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/store"
)

// KeyMACDomain separates wallet-key record MACs from other MACs.
const KeyMACDomain = "wsca-wallet-key-v1"

// KeyMAC returns the MAC that binds a wallet key's record (kid, unit,
// context, backend, point) under the HSM-derived MAC key (or the share
// key), so someone who can write the database cannot have a point of their
// own, or a key of another unit, context or device, attested as the unit's
// key (docs/protocol.md §8a). The blob of a wrapped key has its own MAC.
func KeyMAC(m MACer, k store.Key) []byte {
	return m.MAC(KeyMACDomain, []byte(k.KID), []byte(k.UnitID), []byte(k.Context), []byte(k.Backend), k.PublicKey)
}

// VerifyKeyMAC reports, in constant time, whether mac is k's KeyMAC under
// m. An empty mac, or an m that gives no MAC (no share key yet), never
// verifies.
func VerifyKeyMAC(m MACer, k store.Key, mac []byte) bool {
	want := KeyMAC(m, k)
	return len(mac) > 0 && len(want) > 0 && hmac.Equal(mac, want)
}

// SetShare makes new keys' records carry their share MAC too (split
// roles, docs/wsca.md). Call it before serving.
func (s *Keys) SetShare(share *Share) { s.share = share }

// recordMACs sets a new key record's MAC and, once there is a share key,
// its share MAC.
func (s *Keys) recordMACs(ctx context.Context, rec *store.Key) error {
	sl, err := s.server.Sealer(ctx)
	if err != nil {
		return err
	}
	rec.MAC = KeyMAC(sl, *rec)
	if s.share == nil {
		return nil
	}
	sh, err := s.share.Sealer(ctx)
	if err != nil || sh == nil {
		return err
	}
	rec.ShareMAC = KeyMAC(sh, *rec)
	return nil
}

// KeyMACStore is what BackfillMACs needs of the store.
type KeyMACStore interface {
	KeysWithoutMAC(ctx context.Context, after string, limit int) ([]store.Key, error)
	SetKeyMAC(ctx context.Context, k store.Key, mac []byte) error
}

// backfillBatch is how many rows a backfill reads at a time.
const backfillBatch = 100

// BackfillMACs gives the active keys recorded before key records had a MAC
// (schema 0014) one, each only after the device proves the row: the row
// names this device's backend and no reserved unit, a wrapped key's blob
// passes its own MAC, and the device's key of that owner and kid has the
// row's point and signs (one signature per row, so the unit's
// derive-only keys are not taken for wallet keys). A row
// that fails gets no MAC (so no attestation) and an ERROR log line. It
// returns how many it MACed; an outage of the device or the store stops
// it with an error (call again later: it is idempotent).
func (s *Keys) BackfillMACs(ctx context.Context, st KeyMACStore) (int, error) {
	sl, err := s.server.Sealer(ctx)
	if err != nil {
		return 0, err
	}
	return backfill(ctx, st.KeysWithoutMAC, keyID, func(k store.Key) (bool, error) {
		if ok, err := s.proveRecord(ctx, k); !ok || err != nil {
			return false, err
		}
		return stored(st.SetKeyMAC(ctx, k, KeyMAC(sl, k)))
	})
}

func keyID(k store.Key) string { return k.KID }

// proveRecord reports whether the device holds the key k records: false,
// with an ERROR log line, for a row it does not prove; an error only for
// an outage.
func (s *Keys) proveRecord(ctx context.Context, k store.Key) (bool, error) {
	refuse := func(why string) (bool, error) {
		s.log.ErrorContext(ctx, "key record not proven by the device: no MAC given", "unit", k.UnitID, "kid", k.KID, "reason", why)
		return false, nil
	}
	if k.Backend != s.dev.Info().Backend {
		return refuse("made by another device backend: " + k.Backend)
	}
	if reservedUnit(k.UnitID) {
		// The server's own keys (wsca.server) and the PIN server's fake
		// OPRF key are the device's keys of such an owner.
		return refuse("a reserved unit id")
	}
	owner, err := device.ParseOwner(k.UnitID)
	if err != nil {
		return refuse("unit id")
	}
	kid, err := device.ParseKID(k.KID)
	if err != nil {
		return refuse("kid")
	}
	ref, err := s.wrappedRef(ctx, owner, kid, k.Wrapped, k.WrappedMAC)
	if errors.Is(err, ErrKeyNotFound) {
		return refuse("the blob fails its MAC")
	}
	if err != nil {
		return false, err
	}
	dk, err := s.dev.PublicKey(ctx, ref)
	switch {
	case errors.Is(err, device.ErrUnavailable), errors.Is(err, device.ErrClosed),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false, s.deviceErr(ctx, err)
	case err != nil:
		return refuse("the device has no such key")
	}
	pub, err := dk.Public.Bytes()
	if err != nil || !bytes.Equal(pub, k.PublicKey) {
		return refuse("the device's key has another point")
	}
	// A wallet key (Generate) signs; the unit's derive-only keys (its
	// SECDSA aU, its PIN records' OPRF keys) are the device's keys of
	// that owner too, but no wallet keys.
	_, err = s.dev.Sign(ctx, ref, make([]byte, device.DigestSize))
	switch {
	case errors.Is(err, device.ErrUnavailable), errors.Is(err, device.ErrClosed),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false, s.deviceErr(ctx, err)
	case err != nil:
		return refuse("the device's key does not sign: no wallet key")
	}
	return true, nil
}

// KeyShareBackfillStore is what BackfillKeys needs of the store.
type KeyShareBackfillStore interface {
	KeysWithoutShareMAC(ctx context.Context, after string, limit int) ([]store.Key, error)
	SetKeyShareMAC(ctx context.Context, kid string, publicKey, mac []byte) error
}

// BackfillKeys gives the wallet keys recorded before the share key existed
// their share MAC, after checking their own MAC under own (the WSCD's
// sealer): a row planted or changed in the database gets none. It returns
// how many it MACed; with no share key yet, none.
func (s *Share) BackfillKeys(ctx context.Context, st KeyShareBackfillStore, own MACer) (int, error) {
	sl, err := s.Sealer(ctx)
	if err != nil || sl == nil {
		return 0, err
	}
	return backfill(ctx, st.KeysWithoutShareMAC, keyID, func(k store.Key) (bool, error) {
		if !VerifyKeyMAC(own, k, k.MAC) {
			s.keys.log.ErrorContext(ctx, "key record fails its MAC: no share MAC given", "unit", k.UnitID, "kid", k.KID)
			return false, nil
		}
		return stored(st.SetKeyShareMAC(ctx, k.KID, k.PublicKey, KeyMAC(sl, k)))
	})
}
