package dispatch

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/wsca/wsca/ecp256"
	"github.com/wsca/wsca/r2ps"
)

// A strict session's id is a ticket (pin.Server.OpenTicket) whose binding
// is the client signing key (CSK) that logged in. A 2FA request in the
// session then verifies its JWS without reading the unit's CSK from the
// store. The CSK cannot change while the session lives: re-enrolment,
// which replaces it, ends every session of the unit in the same
// transaction, and the session row is checked with the request's nonce
// (docs/protocol.md §2).
//
// The binding is the CSK's uncompressed SEC1 point (0x04 ‖ X ‖ Y): reading
// it checks the curve equation, where a compressed point costs a square
// root on every request. Tickets made before carry 0x01 ‖ the compressed
// point and are read until they expire.
const (
	ticketBindingLen = 1 + 64 // SEC1 uncompressed

	ticketBindingV1    byte = 1 // 0x01 ‖ compressed SEC1 point, read only
	ticketBindingV1Len      = 1 + 33
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
	raw, err := csk.Bytes() // uncompressed, checked on its curve
	if err != nil || len(raw) != ticketBindingLen {
		return nil, fmt.Errorf("dispatch: client key: not a P-256 point: %v", err)
	}
	return raw, nil
}

// parseTicketCSK decodes a ticket's binding. The ticket opened under the
// server's key, so a failure here is a bug or another version.
func parseTicketCSK(b []byte) (*ticketCSK, error) {
	var (
		pub *ecdsa.PublicKey
		err error
	)
	switch {
	case len(b) == ticketBindingLen: // the prefix is checked by the parser
		pub, err = ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b)
	case len(b) == ticketBindingV1Len && b[0] == ticketBindingV1:
		pub, err = ecp256.ParsePublicKey(b[1:])
	default:
		return nil, fmt.Errorf("dispatch: ticket binding of %d bytes", len(b))
	}
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
