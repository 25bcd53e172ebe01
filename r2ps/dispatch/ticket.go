package dispatch

import (
	"crypto/ecdsa"
	"crypto/subtle"
	"errors"
	"fmt"

	"filippo.io/nistec"

	"github.com/wsca/wsca/ecp256"
	"github.com/wsca/wsca/r2ps"
)

// A strict session's id is a ticket (pin.Server.OpenTicket) whose binding
// is the client signing key (CSK) that logged in: one byte of version and
// its compressed SEC1 point. A 2FA request in the session then verifies
// its JWS without reading the unit's CSK from the store. The CSK cannot
// change while the session lives: re-enrolment, which replaces it, ends
// every session of the unit in the same transaction, and the session row
// is checked with the request's nonce (docs/protocol.md §2).
const (
	ticketBindingV1  byte = 1
	ticketBindingLen      = 1 + 33
)

// ticketCSK is the CSK a ticket carries.
type ticketCSK struct {
	pub *ecdsa.PublicKey
	kid string // RFC 7638 thumbprint
}

// ticketBinding encodes the CSK that authenticated a login.
func ticketBinding(csk *ecdsa.PublicKey) ([]byte, error) {
	if csk == nil {
		return nil, errors.New("dispatch: login without a verified client key")
	}
	raw, err := csk.Bytes()
	if err != nil {
		return nil, fmt.Errorf("dispatch: client key: %w", err)
	}
	p, err := nistec.NewP256Point().SetBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("dispatch: client key: %w", err)
	}
	return append([]byte{ticketBindingV1}, p.BytesCompressed()...), nil
}

// parseTicketCSK decodes a ticket's binding. The ticket opened under the
// server's key, so a failure here is a bug or another version.
func parseTicketCSK(b []byte) (*ticketCSK, error) {
	if len(b) != ticketBindingLen || b[0] != ticketBindingV1 {
		return nil, fmt.Errorf("dispatch: ticket binding of %d bytes", len(b))
	}
	pub, err := ecp256.ParsePublicKey(b[1:])
	if err != nil {
		return nil, fmt.Errorf("dispatch: ticket binding: %w", err)
	}
	return &ticketCSK{pub: pub, kid: r2ps.Thumbprint(pub)}, nil
}

// key is the verifier's rule for a request in a ticket's session: the JWS
// must name the CSK the ticket carries. Only strict sessions get tickets,
// and only a CSK of the strict profile opens one (lookupCSK), so the
// profile needs no check here.
func (t *ticketCSK) key(kid string) (*ecdsa.PublicKey, error) {
	if t.kid == "" || subtle.ConstantTimeCompare([]byte(kid), []byte(t.kid)) != 1 {
		return nil, r2ps.ErrUnknownKey
	}
	return t.pub, nil
}
