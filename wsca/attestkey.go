package wsca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wsca/wsca/attest"
	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// DefaultAttestationKeyName is the server-key purpose of the Wallet
// Provider's attestation key. A rotation names a new one.
const DefaultAttestationKeyName = "attestation"

// Names of the server secrets the attestation key keeps. None is secret:
// they are certificates, kept where every instance finds them.
const (
	secretDevChain = "attestation-dev-chain:" // + key name: PEM leaf, intermediate
	secretDevRoot  = "attestation-dev-root:"  // + key name: PEM root
	secretChains   = "attestation-chain:"     // + hash: a PEM chain signed with
)

// devCertLifetime is the validity of a development CA's certificates.
const devCertLifetime = 5 * 365 * 24 * time.Hour

// ErrNoCertificate means the attestation key has no configured
// certificate chain and the development CA is off.
var ErrNoCertificate = errors.New("wsca: the attestation key has no certificate chain")

// SecretStore is what the attestation key keeps in the store.
type SecretStore interface {
	GetServerSecret(ctx context.Context, name string) ([]byte, error)
	PutServerSecret(ctx context.Context, name string, value []byte, now time.Time) error
	ServerSecretsWithPrefix(ctx context.Context, prefix string) ([]store.ServerSecret, error)
}

// AttestationKeyConfig says where the attestation key is and what
// certifies it.
type AttestationKeyConfig struct {
	// Keys is the server-key service of the device that holds the key: the
	// wallet-key device, or a token of its own (--attest-device).
	Keys  *wscd.ServerKeys
	Store SecretStore
	// Name is the key's purpose (DefaultAttestationKeyName if empty).
	Name string
	// ChainPEM is the configured certificate chain, leaf first, without
	// the trust anchor. Empty: a development CA certifies the key, if
	// DevCA allows it.
	ChainPEM []byte
	DevCA    bool
	Now      func() time.Time
	Logger   *slog.Logger
}

// AttestationKey is the Wallet Provider's attestation signing key: a
// device key (persistent, separate from the protocol keys) with its
// certificate chain.
type AttestationKey struct {
	Issuer *attest.Issuer
	// Signer is the device key, for the status lists the WSCA signs too.
	Signer crypto.Signer
	Chain  []*x509.Certificate
	// DevRoot is the development CA's root (the trust anchor verifiers
	// need), nil for a configured chain.
	DevRoot *x509.Certificate
	// KeySet is the JWKS of every chain this deployment has signed with,
	// so a rotation invalidates nothing issued before.
	KeySet *attest.KeySet
}

// LoadAttestationKey loads (or makes, the first time) the attestation key
// on the device and its chain: the configured one, whose leaf must certify
// that key (a probe signature checks the device holds it), or the
// development CA's, made once and shared by all instances through the
// store.
func LoadAttestationKey(ctx context.Context, cfg AttestationKeyConfig) (*AttestationKey, error) {
	if cfg.Keys == nil || cfg.Store == nil {
		return nil, errors.New("wsca: the attestation key needs server keys and a store")
	}
	if cfg.Name == "" {
		cfg.Name = DefaultAttestationKeyName
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k, err := cfg.Keys.Key(ctx, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("wsca: attestation key: %w", err)
	}
	out := &AttestationKey{}
	switch {
	case len(cfg.ChainPEM) > 0:
		if out.Chain, err = attest.ParseChainPEM(cfg.ChainPEM); err != nil {
			return nil, fmt.Errorf("wsca: attestation chain: %w", err)
		}
	case cfg.DevCA:
		if out.Chain, out.DevRoot, err = devChain(ctx, cfg, k.Purpose, k.Public); err != nil {
			return nil, err
		}
		log.WarnContext(ctx, "attestations are certified by a development CA: verifiers must trust its root; configure --attest-chain in production", "key", cfg.Name)
	default:
		pub, _ := x509.MarshalPKIXPublicKey(k.Public)
		return nil, fmt.Errorf("%w: certify the public key of %q and configure its chain:\n%s", ErrNoCertificate, cfg.Name,
			pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	}
	leaf, ok := out.Chain[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || !leaf.Equal(k.Public) {
		return nil, fmt.Errorf("wsca: the attestation chain's leaf does not certify the key %q (kid %s)", cfg.Name, k.KID)
	}
	signer := cfg.Keys.Signer(context.WithoutCancel(ctx), k)
	probe := sha256.Sum256([]byte("wsca attestation key probe"))
	der, err := signer.Sign(nil, probe[:], nil)
	if err != nil || !ecdsa.VerifyASN1(leaf, probe[:], der) {
		return nil, fmt.Errorf("wsca: the device does not sign with the attestation key %q: %v", cfg.Name, err)
	}
	out.Signer = signer
	if out.Issuer, err = attest.NewIssuer(attest.IssuerConfig{Key: signer, Chain: out.Chain, Now: cfg.Now}); err != nil {
		return nil, fmt.Errorf("wsca: attestation issuer: %w", err)
	}
	chains, err := rememberChain(ctx, cfg, out.Chain)
	if err != nil {
		return nil, err
	}
	if out.KeySet, err = attest.NewKeySet(chains...); err != nil {
		return nil, fmt.Errorf("wsca: attestation JWKS: %w", err)
	}
	log.InfoContext(ctx, "attestation key ready", "key", cfg.Name, "kid", k.KID, "subject", out.Chain[0].Subject.String(),
		"not_after", out.Chain[0].NotAfter, "dev_ca", out.DevRoot != nil, "jwks_keys", len(chains))
	return out, nil
}

// devChain returns the development CA's chain for the key, making it the
// first time; of two instances making it at once, the first stored wins.
// The secrets are named by the key's stored purpose (with its role's
// prefix), so a key on another device never meets another key's chain.
func devChain(ctx context.Context, cfg AttestationKeyConfig, purpose string, pub *ecdsa.PublicKey) ([]*x509.Certificate, *x509.Certificate, error) {
	chainName, rootName := secretDevChain+purpose, secretDevRoot+purpose
	for range 2 {
		chainPEM, err1 := cfg.Store.GetServerSecret(ctx, chainName)
		rootPEM, err2 := cfg.Store.GetServerSecret(ctx, rootName)
		if err1 == nil && err2 == nil {
			chain, err := attest.ParseChainPEM(chainPEM)
			if err != nil {
				return nil, nil, fmt.Errorf("wsca: stored development chain: %w", err)
			}
			roots, err := attest.ParseChainPEM(rootPEM)
			if err != nil || len(roots) != 1 {
				return nil, nil, fmt.Errorf("wsca: stored development root: %v", err)
			}
			return chain, roots[0], nil
		}
		for _, err := range []error{err1, err2} {
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
		}
		now := cfg.Now()
		ca, err := attest.NewDevCA("wsca development CA", now.Add(-time.Hour))
		if err != nil {
			return nil, nil, err
		}
		chain, err := ca.Issue(pub, "wsca development attestation key", now.Add(-time.Hour), devCertLifetime)
		if err != nil {
			return nil, nil, err
		}
		// The root first: an instance that finds the chain finds its root.
		if err := cfg.Store.PutServerSecret(ctx, rootName, attest.EncodeChainPEM([]*x509.Certificate{ca.Root}), now); err != nil && !errors.Is(err, store.ErrExists) {
			return nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		} else if err == nil {
			if err := cfg.Store.PutServerSecret(ctx, chainName, attest.EncodeChainPEM(chain), now); err != nil && !errors.Is(err, store.ErrExists) {
				return nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
		}
	}
	return nil, nil, fmt.Errorf("%w: the development chain could not be stored", ErrUnavailable)
}

// rememberChain records chain among the chains the JWKS publishes (if
// new) and returns them all, one per key (a key's newest chain), oldest
// key first.
func rememberChain(ctx context.Context, cfg AttestationKeyConfig, chain []*x509.Certificate) ([][]*x509.Certificate, error) {
	mine := attest.EncodeChainPEM(chain)
	sum := sha256.Sum256(mine)
	err := cfg.Store.PutServerSecret(ctx, secretChains+hex.EncodeToString(sum[:16]), mine, cfg.Now())
	if err != nil && !errors.Is(err, store.ErrExists) {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	recs, err := cfg.Store.ServerSecretsWithPrefix(ctx, secretChains)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var chains [][]*x509.Certificate
	at := map[device.KID]int{}
	for _, r := range recs {
		c, err := attest.ParseChainPEM(r.Value)
		if err != nil {
			return nil, fmt.Errorf("wsca: stored attestation chain %s: %w", r.Name, err)
		}
		pub, ok := c[0].PublicKey.(*ecdsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("wsca: stored attestation chain %s: not an ECDSA key", r.Name)
		}
		kid, err := device.KIDOf(pub)
		if err != nil {
			return nil, fmt.Errorf("wsca: stored attestation chain %s: %w", r.Name, err)
		}
		if i, ok := at[kid]; ok {
			chains[i] = c
			continue
		}
		at[kid] = len(chains)
		chains = append(chains, c)
	}
	return chains, nil
}
