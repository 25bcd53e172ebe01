package r2ps

import (
	"errors"
	"fmt"
)

// Error is an error that carries a §4.2.2.2 Table 1 code. The package's
// sentinels are *Error values, and every error a decoder returns wraps one of
// them, so errors.Is tells the class and [Code] the code. Callers may build
// their own (for ACCESS_DENIED, ILLEGAL_STATE, …) and their lookup functions
// may return one (for example [ErrUnknownSession]) to choose the code.
type Error struct {
	Code string // one of the Code… constants
	Msg  string // lowercase, without the "r2ps: " prefix; safe to show
	Err  error  // optional cause, for the log only
}

// Error returns "r2ps: " followed by the message and the cause.
func (e *Error) Error() string {
	if e.Err == nil {
		return "r2ps: " + e.Msg
	}
	return "r2ps: " + e.Msg + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Sentinel errors. Detail is added by wrapping (fmt.Errorf("%w: …")).
var (
	// ErrMalformed: the message breaks a syntax or member rule (JSON,
	// base64, sizes, required members, ver).
	ErrMalformed = &Error{Code: CodeIllegalRequestData, Msg: "malformed message"}
	// ErrTooLarge: the message exceeds MaxMessageSize, or its protected
	// header MaxHeaderSize.
	ErrTooLarge = &Error{Code: CodeIllegalRequestData, Msg: "message too large"}
	// ErrHeader: a JOSE protected header breaks the profile (alg, enc, typ,
	// cty, kid, epk, apu, apv, crit, zip or an unknown member).
	ErrHeader = &Error{Code: CodeIllegalRequestData, Msg: "unacceptable protected header"}
	// ErrDecrypt: AES-GCM authentication failed (wrong key, wrong party
	// info, or a modified message).
	ErrDecrypt = &Error{Code: CodeIllegalRequestData, Msg: "decryption failed"}
	// ErrSignature: the JWS signature does not verify.
	ErrSignature = &Error{Code: CodeIllegalRequestData, Msg: "invalid signature"}
	// ErrJWEHash: jwe_hash differs from the hash of the received JWE
	// protected header (§4.2.1).
	ErrJWEHash = &Error{Code: CodeIllegalRequestData, Msg: "jwe_hash mismatch"}
	// ErrUnknownKey is for key functions: no key has this kid.
	ErrUnknownKey = &Error{Code: CodeIllegalRequestData, Msg: "unknown key"}
	// ErrUnknownSession is for session lookups: no live session has this id
	// (docs/protocol.md §7: UNAUTHORIZED).
	ErrUnknownSession = &Error{Code: CodeUnauthorized, Msg: "unknown session"}
	// ErrUnsupportedType: the service type is not one this profile defines
	// (including a legacy alias outside the compat profile).
	ErrUnsupportedType = &Error{Code: CodeUnsupportedRequestType, Msg: "unsupported request type"}
)

// errorf wraps a sentinel with detail.
func errorf(sentinel *Error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}

// Code returns the Table 1 code for err: the code of the outermost *Error in
// its chain, SERVER_ERROR for any other error, and "" for nil.
func Code(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && IsCode(e.Code) {
		return e.Code
	}
	return CodeServerError
}

// IsCode reports whether s is one of the Table 1 codes.
func IsCode(s string) bool { return HTTPStatus(s) != 0 }

// HTTPStatus returns the HTTP status Table 1 pairs with code, or 0 for a
// string that is not a Table 1 code. (Numbers, not net/http constants: only
// package server imports net/http.)
func HTTPStatus(code string) int {
	switch code {
	case CodeIllegalRequestData:
		return 400
	case CodeUnauthorized:
		return 401
	case CodeAccessDenied:
		return 403
	case CodeIllegalState:
		return 409
	case CodeUnsupportedRequestType:
		return 415
	case CodeServerError:
		return 500
	case CodeTryLater:
		return 503
	}
	return 0
}
