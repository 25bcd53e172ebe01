package wsca

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wsca/wsca/attest"
	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/statuslist"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// Defaults of AttestationsConfig.
const (
	// DefaultKeyAttestationLifetime is exp − iat of a key attestation.
	// Its key_storage_status stays checkable for at least 31 days (TS3).
	DefaultKeyAttestationLifetime = 24 * time.Hour
	// DefaultWalletAttestationLifetime is exp − iat of a wallet instance
	// attestation (at most 24 h).
	DefaultWalletAttestationLifetime = 12 * time.Hour
	// DefaultProofLifetime is exp − iat of a proof of association.
	DefaultProofLifetime = 10 * time.Minute
	// MaxAttestedKeys bounds the keys one attestation names.
	MaxAttestedKeys = 32
)

// ErrForeignKey means a kid named for an attestation is not one of the
// calling unit's usable keys: unknown, another unit's, or being destroyed.
// It is never silently dropped.
var ErrForeignKey = errors.New("wsca: key is not the unit's")

// ErrUnitState means the unit is no longer active: it was suspended or
// revoked while its attestation was being issued.
var ErrUnitState = errors.New("wsca: the unit is not active")

// AttestStore is what Attestations needs of the store.
type AttestStore interface {
	GetKey(ctx context.Context, kid string) (store.Key, error)
	GetUnit(ctx context.Context, id string) (store.Unit, error)
}

// StatusAllocator gives out Token Status List entries
// (wsca/statuslists.Publisher); for a key attestation, attested are the
// keys it names, recorded with the entry.
type StatusAllocator interface {
	Allocate(ctx context.Context, unit string, kind store.StatusKind, kid string, attested ...string) (statuslist.Reference, error)
}

// WalletSolution is what a wallet instance attestation says of the wallet
// solution, from configuration.
type WalletSolution struct {
	// Subject is sub: the wallet solution's client_id, shared by all its
	// instances.
	Subject string
	// Issuer is iss; empty leaves it out (TS3 v1.5).
	Issuer              string
	Name, Link, Version string
	// CertificationInformation is wallet_solution_certification_information
	// (a JSON value), or nil.
	CertificationInformation json.RawMessage
}

// AttestationsConfig assembles an Attestations.
type AttestationsConfig struct {
	Store    AttestStore
	Statuses StatusAllocator
	// Issuer signs with the Wallet Provider's attestation key.
	Issuer *attest.Issuer
	// KeyStorage is the configured assurance of the wallet-key device;
	// UserAuthentication that of the PIN that gates the keys.
	KeyStorage, UserAuthentication device.Assurance
	// Published, if set, replaces both on a WSCA-only instance: the
	// assurance the WSCD published, read (and its MAC checked) at each
	// attestation; it claims nothing while there is none.
	Published func(context.Context) (device.Assurance, error)
	// KeyMAC checks each key record's MAC (wscd.KeyMAC) before the key is
	// named in an attestation: the WSCD's HSM-derived sealer or, on a
	// WSCA-only instance whose Store is a ShareView, the share key.
	// Required.
	KeyMAC wscd.MACer
	// Backend is the wallet-key device's backend: a key recorded by
	// another (an earlier device) is not attested with this one's
	// assurance. PublishedBackend, if set, replaces it on a WSCA-only
	// instance: the backend the WSCD published, "" (attesting no key)
	// while there is none. One of the two is required.
	Backend          string
	PublishedBackend func(context.Context) (string, error)
	// Certification is an optional URL describing the certification.
	Certification string
	Wallet        WalletSolution
	// Lifetimes; zero takes the defaults above.
	KeyAttestationLifetime, WalletAttestationLifetime, ProofLifetime time.Duration
	Logger                                                           *slog.Logger
}

// Attestations issues the WSCA's attestations for authenticated units: key
// attestations, wallet instance attestations and proofs of association
// (docs/attestations.md). It reads keys from the store and opens none. It
// is safe for concurrent use.
type Attestations struct {
	cfg       AttestationsConfig
	assurance attest.KeyAssurance
	log       *slog.Logger
}

// NewAttestations checks cfg and returns the attestation service.
func NewAttestations(cfg AttestationsConfig) (*Attestations, error) {
	if cfg.Store == nil || cfg.Statuses == nil || cfg.Issuer == nil {
		return nil, errors.New("wsca: attestations need a store, a status allocator and an issuer")
	}
	if cfg.KeyMAC == nil || (cfg.Backend == "" && cfg.PublishedBackend == nil) {
		return nil, errors.New("wsca: attestations need the key records' MAC key and the wallet-key device's backend")
	}
	ks, err := attest.ParseAssurance(string(cfg.KeyStorage))
	if err != nil {
		return nil, fmt.Errorf("wsca: key storage assurance: %w", err)
	}
	ua, err := attest.ParseAssurance(string(cfg.UserAuthentication))
	if err != nil {
		return nil, fmt.Errorf("wsca: user authentication assurance: %w", err)
	}
	if err := (attest.KeyAssurance{KeyStorage: ks, UserAuthentication: ua}).Check(); err != nil {
		return nil, fmt.Errorf("wsca: %w", err)
	}
	if cfg.Wallet.Subject == "" || cfg.Wallet.Name == "" || cfg.Wallet.Link == "" || cfg.Wallet.Version == "" {
		return nil, errors.New("wsca: the wallet solution needs a subject, name, link and version")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.KeyAttestationLifetime, DefaultKeyAttestationLifetime)
	def(&cfg.WalletAttestationLifetime, DefaultWalletAttestationLifetime)
	def(&cfg.ProofLifetime, DefaultProofLifetime)
	if cfg.WalletAttestationLifetime > attest.MaxWalletAttestationLifetime {
		return nil, fmt.Errorf("wsca: wallet attestation lifetime %v exceeds %v", cfg.WalletAttestationLifetime, attest.MaxWalletAttestationLifetime)
	}
	a := &Attestations{cfg: cfg, assurance: attest.KeyAssurance{KeyStorage: ks, UserAuthentication: ua}, log: cfg.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a, nil
}

// keyAssurance is what an attestation may claim now.
func (a *Attestations) keyAssurance(ctx context.Context) (attest.KeyAssurance, error) {
	if a.cfg.Published == nil {
		return a.assurance, nil
	}
	p, err := a.cfg.Published(ctx)
	if err != nil {
		return attest.KeyAssurance{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	as, err := attest.ParseAssurance(string(p))
	if err != nil {
		as = attest.AssuranceNotCertified
	}
	return attest.KeyAssurance{KeyStorage: as, UserAuthentication: as}, nil
}

// backend is the wallet-key device's backend now ("" while a WSCA-only
// instance has none published).
func (a *Attestations) backend(ctx context.Context) (string, error) {
	if a.cfg.PublishedBackend == nil {
		return a.cfg.Backend, nil
	}
	b, err := a.cfg.PublishedBackend(ctx)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return b, nil
}

// unitKeys returns the public keys of kids, each an active key of unit, in
// order. An empty, repeated, foreign, unknown or destroyed kid fails the
// whole request (ErrForeignKey or ErrInvalidInput), and so does a key
// whose record fails its MAC (planted or changed in the database, or made
// before key records had one and not proven by the WSCD since) or names
// another device backend than the wallet-key device's: the store alone
// never gets a key attested.
func (a *Attestations) unitKeys(ctx context.Context, unit string, kids []string) ([]*ecdsa.PublicKey, error) {
	if len(kids) == 0 || len(kids) > MaxAttestedKeys {
		return nil, fmt.Errorf("%w: %d keys (1 to %d)", ErrInvalidInput, len(kids), MaxAttestedKeys)
	}
	backend, err := a.backend(ctx)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(kids))
	pubs := make([]*ecdsa.PublicKey, 0, len(kids))
	for _, kid := range kids {
		if _, err := device.ParseKID(kid); err != nil {
			return nil, fmt.Errorf("%w: kid %q", ErrInvalidInput, kid)
		}
		if seen[kid] {
			return nil, fmt.Errorf("%w: kid %s named twice", ErrInvalidInput, kid)
		}
		seen[kid] = true
		k, err := a.cfg.Store.GetKey(ctx, kid)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrForeignKey, kid)
		}
		if err != nil {
			return nil, storeErr(err)
		}
		if k.UnitID != unit || k.State != store.KeyActive {
			a.log.WarnContext(ctx, "attestation of another unit's or a destroyed key refused", "unit", unit, "kid", kid)
			return nil, fmt.Errorf("%w: %s", ErrForeignKey, kid)
		}
		if !wscd.VerifyKeyMAC(a.cfg.KeyMAC, k, k.MAC) {
			a.log.ErrorContext(ctx, "attestation refused: the key record fails its MAC (changed outside wsca, or not proven yet)", "unit", unit, "kid", kid)
			return nil, fmt.Errorf("%w: %s", ErrForeignKey, kid)
		}
		if k.Backend != backend {
			a.log.WarnContext(ctx, "attestation refused: the key was made by another device backend", "unit", unit, "kid", kid, "backend", k.Backend)
			return nil, fmt.Errorf("%w: %s", ErrForeignKey, kid)
		}
		pub, err := device.PublicKeyFromBytes(k.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("wsca: stored key %s: %w", kid, err)
		}
		pubs = append(pubs, pub)
	}
	return pubs, nil
}

// allocErr maps a status allocation's failure: a unit that is not active
// (checked again in the allocation's transaction) or has had its share of
// entries for now is refused as such; anything else is the store's.
func allocErr(err error) error {
	switch {
	case errors.Is(err, store.ErrUnitNotActive), errors.Is(err, store.ErrUnitNotFound):
		return fmt.Errorf("%w: %w", ErrUnitState, err)
	case errors.Is(err, store.ErrQuota):
		return fmt.Errorf("%w: status entries: %w", ErrQuota, err)
	}
	return fmt.Errorf("%w: status entry: %w", ErrUnavailable, err)
}

// stillActive checks, once the attestation's status entry is allocated,
// that the unit is still active. A suspension or revocation set the unit's
// entries in the transaction that changed its state: one that committed
// before this entry was allocated left it VALID, and is refused here; one
// that commits later sets it too.
func (a *Attestations) stillActive(ctx context.Context, unit string) error {
	u, err := a.cfg.Store.GetUnit(ctx, unit)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: unit %s is gone", ErrUnitState, unit)
	}
	if err != nil {
		return storeErr(err)
	}
	if u.State != store.UnitActive {
		a.log.WarnContext(ctx, "attestation refused: the unit changed state while it was issued", "unit", unit, "state", u.State)
		return fmt.Errorf("%w: unit %s is %s", ErrUnitState, unit, u.State)
	}
	return nil
}

func ref(r statuslist.Reference) attest.StatusRef {
	return attest.StatusRef{Idx: r.Index, URI: r.URI}
}

// KeyAttestation attests the unit's keys kids (the first is the key a
// wallet signs an OpenID4VCI proof with). Each attestation gets its own
// status entry (TS3 v1.5.2 option 2), invalidated when the unit is revoked
// or any of the keys destroyed; nonce, when set, is the issuer's c_nonce.
func (a *Attestations) KeyAttestation(ctx context.Context, unit string, kids []string, nonce string) (string, error) {
	pubs, err := a.unitKeys(ctx, unit, kids)
	if err != nil {
		return "", err
	}
	r, err := a.cfg.Statuses.Allocate(ctx, unit, store.StatusKindKey, kids[0], kids...)
	if err != nil {
		return "", allocErr(err)
	}
	if err := a.stillActive(ctx, unit); err != nil {
		return "", err
	}
	// Checked again now that the entry names the keys: a key destroyed
	// since the first check is refused here, and one destroyed from now on
	// invalidates the entry (store.SetKeyStatus).
	if _, err := a.unitKeys(ctx, unit, kids); err != nil {
		return "", err
	}
	assurance, err := a.keyAssurance(ctx)
	if err != nil {
		return "", err
	}
	jwt, err := a.cfg.Issuer.KeyAttestation(attest.KeyAttestationInput{
		Keys: pubs, Assurance: assurance, Certification: a.cfg.Certification, Nonce: nonce,
		Status: ref(r), Lifetime: a.cfg.KeyAttestationLifetime,
	})
	if err != nil {
		return "", fmt.Errorf("wsca: key attestation: %w", err)
	}
	a.log.InfoContext(ctx, "key attestation issued", "unit", unit, "keys", len(kids), "status_uri", r.URI, "status_idx", r.Index)
	return jwt, nil
}

// WalletAttestation attests the wallet instance whose key is the unit's
// key kid (cnf.jwk), with its own status entry (client_status).
func (a *Attestations) WalletAttestation(ctx context.Context, unit, kid string) (string, error) {
	pubs, err := a.unitKeys(ctx, unit, []string{kid})
	if err != nil {
		return "", err
	}
	r, err := a.cfg.Statuses.Allocate(ctx, unit, store.StatusKindWIA, "")
	if err != nil {
		return "", allocErr(err)
	}
	if err := a.stillActive(ctx, unit); err != nil {
		return "", err
	}
	w := a.cfg.Wallet
	jwt, err := a.cfg.Issuer.WalletAttestation(attest.WalletAttestationInput{
		Subject: w.Subject, Issuer: w.Issuer, Key: pubs[0], WalletName: w.Name, WalletLink: w.Link, WalletVersion: w.Version,
		CertificationInformation: w.CertificationInformation, Status: ref(r), Lifetime: a.cfg.WalletAttestationLifetime,
	})
	if err != nil {
		return "", fmt.Errorf("wsca: wallet attestation: %w", err)
	}
	a.log.InfoContext(ctx, "wallet instance attestation issued", "unit", unit, "status_uri", r.URI, "status_idx", r.Index)
	return jwt, nil
}

// ProofOfAssociation states that the unit's keys kids (two or more) are
// held by this WSCA for one unit (ARF ACP_01); audience and nonce are
// optional.
func (a *Attestations) ProofOfAssociation(ctx context.Context, unit string, kids []string, audience, nonce string) (string, error) {
	if len(kids) < 2 {
		return "", fmt.Errorf("%w: a proof of association names at least two keys", ErrInvalidInput)
	}
	pubs, err := a.unitKeys(ctx, unit, kids)
	if err != nil {
		return "", err
	}
	jwt, err := a.cfg.Issuer.ProofOfAssociation(attest.ProofOfAssociationInput{
		Keys: pubs, Audience: audience, Nonce: nonce, Lifetime: a.cfg.ProofLifetime,
	})
	if err != nil {
		return "", fmt.Errorf("wsca: proof of association: %w", err)
	}
	a.log.InfoContext(ctx, "proof of association issued", "unit", unit, "keys", len(kids))
	return jwt, nil
}
