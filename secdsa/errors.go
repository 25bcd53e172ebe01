package secdsa

import "errors"

// Errors at the package boundary. A provider maps them onto its counters
// (docs/secdsa.md, "PIN failure rules"):
//
//   - ErrMalformed, ErrInvalidPoint, ErrReplay, ErrChallengeSignature and
//     ErrAccount are perimeter refusals, found before the HSM is asked;
//     they never count as a PIN failure and never consume the serial number.
//   - ErrAuthentication is a failure after the HSM derive (wrong PIN, a
//     fabricated R, a bad proof); it counts as a PIN failure.
//   - An error from the DeriveFunc is the device's and counts as nothing.
var (
	ErrMalformed          = errors.New("secdsa: malformed input")
	ErrInvalidPoint       = errors.New("secdsa: invalid point")
	ErrReplay             = errors.New("secdsa: serial number not fresh")
	ErrChallengeSignature = errors.New("secdsa: challenge signature invalid")
	ErrAccount            = errors.New("secdsa: account mismatch")
	ErrAuthentication     = errors.New("secdsa: instruction not authenticated")
	ErrProof              = errors.New("secdsa: proof invalid")
	ErrSignature          = errors.New("secdsa: signature invalid")
	ErrActivation         = errors.New("secdsa: activation refused")
)
