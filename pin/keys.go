package pin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bytemare/ecc"
	"github.com/bytemare/opaque"

	"github.com/wsca/wsca/store"
)

// Sealer encrypts the secrets the store keeps, with an AEAD: ad binds a
// sealed value to its use, and Open fails on any other ad. Implementations
// must be safe for concurrent use.
type Sealer interface {
	Seal(plaintext, ad []byte) ([]byte, error)
	Open(sealed, ad []byte) ([]byte, error)
	// MAC returns a MAC over the length-prefixed parts under a key the
	// store alone cannot compute, separated by domain.
	MAC(domain string, parts ...[]byte) []byte
}

// MAC domains of a PIN record: v1 for a software OPRF key, v2 for an
// HSM one (the key's point, blob and own MAC covered too); and of an HSM
// OPRF key alone.
const (
	recordMACDomain   = "wsca-pin-record-v1"
	recordMACDomainV2 = "wsca-pin-record-v2"
	oprfKeyMACDomain  = "wsca-pin-oprf-key-v1"
)

// RecordMAC returns the MAC binding a PIN record, its credential nonce and
// its HSM OPRF key (zero for a software one) to the unit and context.
func RecordMAC(sealer Sealer, unit, pinContext string, record, credNonce []byte, key store.OPRFKey) []byte {
	if key.IsZero() {
		return sealer.MAC(recordMACDomain, []byte(unit), []byte(pinContext), record, credNonce)
	}
	return sealer.MAC(recordMACDomainV2, []byte(unit), []byte(pinContext), record, credNonce, key.Public, key.Wrapped, key.MAC)
}

// oprfKeyMAC returns the MAC binding an HSM OPRF key to its unit: checked
// before the key is moved into a record and before it is destroyed.
func oprfKeyMAC(sealer Sealer, unit string, public, wrapped []byte) []byte {
	return sealer.MAC(oprfKeyMACDomain, []byte(unit), public, wrapped)
}

// KeyMaterialName is the name of the server secret that holds the sealed
// OPAQUE server key material (AKE key pair and OPRF seed); it is also the
// additional data of its sealing.
const KeyMaterialName = "opaque-server-key"

// loadKeyMaterial returns the OPAQUE server key material kept in the store,
// creating and storing it if there is none. When another instance stores
// its own first, that one is used.
func loadKeyMaterial(ctx context.Context, st Store, sealer Sealer, conf *opaque.Configuration,
	random io.Reader, now time.Time) (skm *opaque.ServerKeyMaterial, created bool, err error) {
	sealed, err := st.GetServerSecret(ctx, KeyMaterialName)
	if err == nil {
		skm, err := openKeyMaterial(sealer, conf, sealed)
		return skm, false, err
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, false, fmt.Errorf("pin: load key material: %w", err)
	}

	skm, err = generateKeyMaterial(conf, random)
	if err != nil {
		return nil, false, err
	}
	enc := encodeKeyMaterial(skm)
	sealed, err = sealer.Seal(enc, []byte(KeyMaterialName))
	clear(enc)
	if err != nil {
		skm.Flush()
		return nil, false, fmt.Errorf("pin: seal key material: %w", err)
	}
	err = st.PutServerSecret(ctx, KeyMaterialName, sealed, now)
	if err == nil {
		return skm, true, nil
	}
	skm.Flush()
	if !errors.Is(err, store.ErrExists) {
		return nil, false, fmt.Errorf("pin: store key material: %w", err)
	}
	// Another instance was first: use its key material.
	sealed, err = st.GetServerSecret(ctx, KeyMaterialName)
	if err != nil {
		return nil, false, fmt.Errorf("pin: load key material: %w", err)
	}
	skm, err = openKeyMaterial(sealer, conf, sealed)
	return skm, false, err
}

func openKeyMaterial(sealer Sealer, conf *opaque.Configuration, sealed []byte) (*opaque.ServerKeyMaterial, error) {
	enc, err := sealer.Open(sealed, []byte(KeyMaterialName))
	if err != nil {
		return nil, fmt.Errorf("pin: open key material: %w", err)
	}
	defer clear(enc)
	return decodeKeyMaterial(conf, enc)
}

// The key material is kept in a format of our own, version byte 1, then
// the AKE private key (a P-256 scalar, 32 bytes big-endian) and the OPRF
// seed (32 bytes); the public key is derived on loading. The profile has no
// server identity. bytemare's ServerKeyMaterial.Encode is not used: its
// DecodeServerKeyMaterial (v0.18.0) refuses the empty identity Encode
// writes, so it cannot read back key material without an identity.
const (
	keyMaterialVersion = 1
	privateKeyLen      = 32
	oprfSeedLen        = 32
	keyMaterialLen     = 1 + privateKeyLen + oprfSeedLen
)

func encodeKeyMaterial(skm *opaque.ServerKeyMaterial) []byte {
	enc := make([]byte, 0, keyMaterialLen)
	enc = append(enc, keyMaterialVersion)
	enc = append(enc, skm.PrivateKey.Encode()...)
	return append(enc, skm.OPRFGlobalSeed...)
}

func decodeKeyMaterial(conf *opaque.Configuration, enc []byte) (*opaque.ServerKeyMaterial, error) {
	if len(enc) != keyMaterialLen || enc[0] != keyMaterialVersion {
		return nil, errors.New("pin: decode key material: unknown format")
	}
	g := conf.AKE.Group()
	sk, err := opaque.DeserializeScalar(g, enc[1:1+privateKeyLen])
	if err != nil {
		return nil, fmt.Errorf("pin: decode key material: private key: %w", err)
	}
	return &opaque.ServerKeyMaterial{
		PrivateKey:     sk,
		PublicKeyBytes: g.Base().Multiply(sk).Encode(),
		OPRFGlobalSeed: bytes.Clone(enc[1+privateKeyLen:]),
	}, nil
}

// maxScalarDraws bounds the rejection sampling of the AKE private key: a
// uniform 32-byte string is at least the P-256 order with probability
// about 2^-32, so failing this often means the source is broken.
const maxScalarDraws = 16

// generateKeyMaterial draws a new AKE key pair and OPRF seed from random.
func generateKeyMaterial(conf *opaque.Configuration, random io.Reader) (*opaque.ServerKeyMaterial, error) {
	g := conf.AKE.Group()
	buf := make([]byte, g.ScalarLength())
	defer clear(buf)
	var sk *ecc.Scalar
	for range maxScalarDraws {
		if _, err := io.ReadFull(random, buf); err != nil {
			return nil, fmt.Errorf("pin: generate key material: %w", err)
		}
		// DeserializeScalar refuses zero and values not below the order.
		if s, err := opaque.DeserializeScalar(g, buf); err == nil {
			sk = s
			break
		}
	}
	if sk == nil {
		return nil, errors.New("pin: generate key material: random source yields no valid scalar")
	}
	seed := make([]byte, oprfSeedLen)
	if _, err := io.ReadFull(random, seed); err != nil {
		sk.Zero()
		return nil, fmt.Errorf("pin: generate key material: %w", err)
	}
	return &opaque.ServerKeyMaterial{
		PrivateKey:     sk,
		PublicKeyBytes: g.Base().Multiply(sk).Encode(),
		OPRFGlobalSeed: seed,
	}, nil
}
