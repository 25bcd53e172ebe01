// Package event defines the events of wsca's evidence log and their
// canonical bytes, the leaves of the log (docs/evidence.md). It is wallet
// side: it imports no server package, so a verifier can decode a leaf.
//
// A leaf is, byte for byte:
//
//	"wsca-evidence-v1" 0x00      domain and version (17 bytes)
//	type                          1 byte (Type)
//	time                          8 bytes, big-endian Unix milliseconds
//	unit, context, kid, actor     each a 2-byte big-endian length and UTF-8
//	data                          a 2-byte big-endian length and bytes
//
// and nothing after. Every field is present in every event (empty when it
// does not apply), so one parser reads them all and no two events share
// bytes. Events carry no secrets: no PIN, no key material other than a
// public kid, no request body; a unit is named by its pseudonymous id.
package event

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Domain starts every leaf: the log and the encoding's version.
const Domain = "wsca-evidence-v1\x00"

// Bounds of the fields (bytes). A leaf is at most MaxLeafSize.
const (
	MaxStringSize = 256
	MaxDataSize   = 1024
	MaxLeafSize   = len(Domain) + 1 + 8 + 4*(2+MaxStringSize) + 2 + MaxDataSize
)

// Type is what happened.
type Type uint8

// The event types. Their numbers are part of the leaf encoding: never
// renumber, only add.
const (
	// UnitCreated: an operator registered a wallet unit.
	UnitCreated Type = 1
	// Enrolled: a unit activated (PIN registered with an activation code);
	// Data is the code's purpose.
	Enrolled Type = 2
	// KeyGenerated: a key was generated for the unit (Kid).
	KeyGenerated Type = 3
	// Signature: a signature with Kid was authorised for the unit and
	// handed to the device.
	Signature Type = 4
	// ECDH: a key agreement with Kid was made for the unit.
	ECDH Type = 5
	// KeyDestroyed: Kid was destroyed; Data says how ("token object
	// destroyed" or "wrapped blob erased").
	KeyDestroyed Type = 6
	// UnitDestroyed: the unit's keys were destroyed and its records
	// erased; Data is the number of device keys, decimal.
	UnitDestroyed Type = 7
	// PINFailure: a PIN attempt was counted as a failure until a correct
	// PIN clears the counter (an OPAQUE client finds a wrong PIN itself and
	// never proves it, so the counted attempt is the server's evidence);
	// Data is the counter, decimal.
	PINFailure Type = 8
	// PINLocked: the counter reached the limit in Context: the PIN is
	// locked unless that attempt proves it.
	PINLocked Type = 9
	// PINUnlocked: an operator lifted the lock in Context.
	PINUnlocked Type = 10
	// Revoked, Suspended, Unsuspended: the unit's state changed; Actor
	// says who asked (holder, provider).
	Revoked     Type = 11
	Suspended   Type = 12
	Unsuspended Type = 13
	// SECDSARecord: a SECDSA transaction record; Data is its hash (or its
	// bytes, at most MaxDataSize).
	SECDSARecord Type = 14
	// SignatureFailed: the Signature event of Kid recorded with the
	// request's replay check was not followed by a signature (the device
	// or a check after the replay check refused); Data is empty.
	SignatureFailed Type = 15
)

var names = map[Type]string{
	UnitCreated: "unit_created", Enrolled: "enrolled", KeyGenerated: "key_generated", Signature: "signature",
	ECDH: "ecdh", KeyDestroyed: "key_destroyed", UnitDestroyed: "unit_destroyed", PINFailure: "pin_failure",
	PINLocked: "pin_locked", PINUnlocked: "pin_unlocked", Revoked: "revoked", Suspended: "suspended",
	Unsuspended: "unsuspended", SECDSARecord: "secdsa_record", SignatureFailed: "signature_failed",
}

// Valid reports whether t is a known type.
func (t Type) Valid() bool { _, ok := names[t]; return ok }

func (t Type) String() string {
	if n, ok := names[t]; ok {
		return n
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Details of KeyDestroyed.
const (
	DestroyedTokenObject = "token object destroyed"
	DestroyedBlobErased  = "wrapped blob erased"
)

// Event is one security-relevant event.
type Event struct {
	Type Type
	// Time is when it happened, kept to the millisecond.
	Time time.Time
	// Unit is the wallet unit's (pseudonymous) id; Context its PIN
	// context; Kid a key's id (lowercase hex), when the event is about one.
	Unit, Context, Kid string
	// Actor is who asked, when that is not the unit itself.
	Actor string
	// Data is the type's detail (see the types); never a secret.
	Data []byte
}

// ErrMalformed is returned for bytes that are not a leaf and for an event
// that cannot be one.
var ErrMalformed = errors.New("event: malformed")

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

// Marshal returns the canonical bytes of e.
func (e Event) Marshal() ([]byte, error) {
	if !e.Type.Valid() {
		return nil, malformed("unknown type %d", e.Type)
	}
	ms := e.Time.UnixMilli()
	if ms < 0 || ms > 1<<62 {
		return nil, malformed("time out of range")
	}
	b := make([]byte, 0, len(Domain)+9+4*2+len(e.Unit)+len(e.Context)+len(e.Kid)+len(e.Actor)+2+len(e.Data))
	b = append(b, Domain...)
	b = append(b, byte(e.Type))
	b = binary.BigEndian.AppendUint64(b, uint64(ms))
	for _, f := range []struct{ name, v string }{{"unit", e.Unit}, {"context", e.Context}, {"kid", e.Kid}, {"actor", e.Actor}} {
		if err := checkString(f.name, f.v); err != nil {
			return nil, err
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(f.v)))
		b = append(b, f.v...)
	}
	if len(e.Data) > MaxDataSize {
		return nil, malformed("data of %d bytes", len(e.Data))
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Data)))
	return append(b, e.Data...), nil
}

func checkString(name, v string) error {
	if len(v) > MaxStringSize {
		return malformed("%s of %d bytes", name, len(v))
	}
	if !utf8.ValidString(v) {
		return malformed("%s is not UTF-8", name)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return malformed("%s has a control character", name)
		}
	}
	if name == "kid" && v != "" && !isKid(v) {
		return malformed("kid is not 32 lowercase hex digits")
	}
	return nil
}

func isKid(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Parse decodes a leaf. It accepts exactly the bytes Marshal makes:
// Parse(b) succeeding means Marshal gives b back.
func Parse(b []byte) (Event, error) {
	if len(b) > MaxLeafSize {
		return Event{}, malformed("%d bytes", len(b))
	}
	if len(b) < len(Domain)+9 || string(b[:len(Domain)]) != Domain {
		return Event{}, malformed("not a wsca-evidence-v1 leaf")
	}
	b = b[len(Domain):]
	e := Event{Type: Type(b[0])}
	if !e.Type.Valid() {
		return Event{}, malformed("unknown type %d", b[0])
	}
	ms := binary.BigEndian.Uint64(b[1:9])
	if ms > 1<<62 {
		return Event{}, malformed("time out of range")
	}
	e.Time = time.UnixMilli(int64(ms)).UTC()
	b = b[9:]
	var fields [5][]byte
	for i := range fields {
		if len(b) < 2 {
			return Event{}, malformed("truncated")
		}
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		if len(b) < n {
			return Event{}, malformed("truncated")
		}
		fields[i], b = b[:n], b[n:]
	}
	if len(b) != 0 {
		return Event{}, malformed("%d trailing bytes", len(b))
	}
	e.Unit, e.Context, e.Kid, e.Actor = string(fields[0]), string(fields[1]), string(fields[2]), string(fields[3])
	for _, f := range []struct{ name, v string }{{"unit", e.Unit}, {"context", e.Context}, {"kid", e.Kid}, {"actor", e.Actor}} {
		if err := checkString(f.name, f.v); err != nil {
			return Event{}, err
		}
	}
	if len(fields[4]) > MaxDataSize {
		return Event{}, malformed("data of %d bytes", len(fields[4]))
	}
	if len(fields[4]) > 0 {
		e.Data = append([]byte(nil), fields[4]...)
	}
	return e, nil
}
