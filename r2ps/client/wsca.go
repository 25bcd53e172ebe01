package client

import (
	"context"
	"crypto"
	"errors"
	"io"
	"time"

	"github.com/wsca/wsca/r2ps"
)

// The WSCA service types (docs/protocol.md §7), each in a PIN session.

// PutPseudonym stores value in the unit's pseudonym slot and reports
// whether the slot was new.
func (s *Session) PutPseudonym(ctx context.Context, slot string, value []byte) (created bool, err error) {
	var out r2ps.PseudonymPutResponse
	if err := s.call(ctx, r2ps.TypePseudonymPut, r2ps.PseudonymPutRequest{Slot: slot, Value: value}, &out); err != nil {
		return false, err
	}
	return out.Created, nil
}

// Pseudonym returns the value of the unit's pseudonym slot.
func (s *Session) Pseudonym(ctx context.Context, slot string) ([]byte, error) {
	var out r2ps.PseudonymGetResponse
	if err := s.call(ctx, r2ps.TypePseudonymGet, r2ps.PseudonymRequest{Slot: slot}, &out); err != nil {
		return nil, err
	}
	return out.Value, nil
}

// PseudonymSlot is a slot of the unit's pseudonym storage.
type PseudonymSlot struct {
	Slot                 string
	CreatedAt, UpdatedAt time.Time
}

// Pseudonyms lists the unit's pseudonym slots by name.
func (s *Session) Pseudonyms(ctx context.Context) ([]PseudonymSlot, error) {
	var out r2ps.PseudonymListResponse
	if err := s.call(ctx, r2ps.TypePseudonymList, r2ps.EmptyRequest{}, &out); err != nil {
		return nil, err
	}
	slots := make([]PseudonymSlot, len(out.Slots))
	for i, p := range out.Slots {
		slots[i] = PseudonymSlot{Slot: p.Slot, CreatedAt: time.Unix(p.CreatedAt, 0), UpdatedAt: time.Unix(p.UpdatedAt, 0)}
	}
	return slots, nil
}

// DeletePseudonym erases the unit's pseudonym slot.
func (s *Session) DeletePseudonym(ctx context.Context, slot string) error {
	var out r2ps.DoneResponse
	return s.call(ctx, r2ps.TypePseudonymDelete, r2ps.PseudonymRequest{Slot: slot}, &out)
}

// UnitInfo returns the unit's activation and capability information.
func (s *Session) UnitInfo(ctx context.Context) (r2ps.UnitInfoResponse, error) {
	var out r2ps.UnitInfoResponse
	err := s.call(ctx, r2ps.TypeUnitInfo, r2ps.EmptyRequest{}, &out)
	return out, err
}

// SuspendUnit suspends the unit: every operation is refused, on every
// instance, until the Wallet Provider's operator resumes it.
func (s *Session) SuspendUnit(ctx context.Context) error {
	var out r2ps.DoneResponse
	return s.call(ctx, r2ps.TypeUnitSuspend, r2ps.EmptyRequest{}, &out)
}

// UnsuspendUnit lifts a suspension the holder made. The session must be
// bound to r2ps.TaskUnsuspend (LoginOptions.Task): the only session a
// suspended unit can open; it ends with the request.
func (s *Session) UnsuspendUnit(ctx context.Context) error {
	var out r2ps.DoneResponse
	return s.call(ctx, r2ps.TypeUnitUnsuspend, r2ps.EmptyRequest{}, &out)
}

// RevokeUnit revokes the unit for good; unit must be its id.
func (s *Session) RevokeUnit(ctx context.Context, unit, reason string) error {
	var out r2ps.DoneResponse
	return s.call(ctx, r2ps.TypeUnitRevoke, r2ps.UnitRevokeRequest{Confirm: unit, Reason: reason}, &out)
}

// The attestation types are 1FA: signed with the client signing key, no
// PIN session.

// KeyAttestation asks for a key attestation (key-attestation+jwt) of the
// unit's keys kids, the first being the one a proof is signed with; nonce
// is the issuer's c_nonce, if any.
func (c *Client) KeyAttestation(ctx context.Context, kids []string, nonce string) (string, error) {
	var out r2ps.KeyAttestationResponse
	if err := c.call1FA(ctx, r2ps.TypeKeyAttestation, r2ps.KeyAttestationRequest{KIDs: kids, Nonce: nonce}, &out, false); err != nil {
		return "", err
	}
	return out.KeyAttestation, nil
}

// WalletAttestation asks for a wallet instance attestation
// (oauth-client-attestation+jwt) whose instance key is the unit's key kid.
func (c *Client) WalletAttestation(ctx context.Context, kid string) (string, error) {
	var out r2ps.WalletAttestationResponse
	if err := c.call1FA(ctx, r2ps.TypeWalletAttestation, r2ps.WalletAttestationRequest{KID: kid}, &out, false); err != nil {
		return "", err
	}
	return out.WalletAttestation, nil
}

// ProofOfAssociation asks for a proof that the unit's keys kids are held
// by one WSCA for one unit; audience and nonce are optional.
func (c *Client) ProofOfAssociation(ctx context.Context, kids []string, audience, nonce string) (string, error) {
	var out r2ps.ProofOfAssociationResponse
	req := r2ps.ProofOfAssociationRequest{KIDs: kids, Audience: audience, Nonce: nonce}
	if err := c.call1FA(ctx, r2ps.TypeProofOfAssociation, req, &out, false); err != nil {
		return "", err
	}
	return out.Proof, nil
}

// Signer returns a crypto.Signer over the unit's key k that signs through
// the session (sign_ecdsa), for JOSE libraries: for example to sign the
// OAuth client attestation PoP with the wallet instance key. Its Sign
// takes a SHA-256 digest and returns an ASN.1 DER signature. ctx bounds
// every signature it makes.
func (s *Session) Signer(ctx context.Context, k Key) crypto.Signer {
	return &sessionSigner{ctx: ctx, s: s, k: k}
}

type sessionSigner struct {
	ctx context.Context
	s   *Session
	k   Key
}

func (g *sessionSigner) Public() crypto.PublicKey { return g.k.Public }

func (g *sessionSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts != nil && opts.HashFunc() != crypto.SHA256 {
		return nil, errors.New("client: the session signs SHA-256 digests only")
	}
	return g.s.Sign(g.ctx, g.k.KID, digest)
}
