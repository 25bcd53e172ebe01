package attest

import "errors"

// Errors returned by the builders and verifiers, wrapped with detail; test
// them with errors.Is. A verification error says which check failed, never
// a key or a token.
var (
	// ErrMalformed: the token is not a well-formed compact JWS with JSON
	// header and claims (base64url, strict JSON, no crit, size bounds).
	ErrMalformed = errors.New("attest: malformed token")
	// ErrTyp: the typ header is not the one the token type requires.
	ErrTyp = errors.New("attest: wrong typ")
	// ErrAlg: the alg header is not ES256.
	ErrAlg = errors.New("attest: alg is not ES256")
	// ErrNoX5C: the x5c header is missing or empty.
	ErrNoX5C = errors.New("attest: no x5c certificate chain")
	// ErrChain: the x5c chain does not verify up to a trust anchor, is out
	// of order or of validity, or its leaf is not a P-256 signing key.
	ErrChain = errors.New("attest: certificate chain not trusted")
	// ErrSelfSigned: the x5c leaf is self-signed (HAIP §4.5.1).
	ErrSelfSigned = errors.New("attest: leaf certificate is self-signed")
	// ErrAnchorInChain: the x5c chain contains a trust anchor (HAIP §4.5.1).
	ErrAnchorInChain = errors.New("attest: trust anchor in certificate chain")
	// ErrUntrustedKey: the signing key is not in the configured key set.
	ErrUntrustedKey = errors.New("attest: signing key not in the key set")
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("attest: bad signature")
	// ErrTime: iat, nbf or exp is missing, in the future, in the past, or
	// inconsistent.
	ErrTime = errors.New("attest: token not valid now")
	// ErrLifetime: the validity period breaks a profile bound (WIA over
	// 24 h, key_storage_status under 31 days).
	ErrLifetime = errors.New("attest: lifetime out of bounds")
	// ErrNonce: the nonce (or c_nonce, or PoP challenge) is missing or does
	// not match.
	ErrNonce = errors.New("attest: nonce mismatch")
	// ErrAudience: aud is missing or does not name the expected audience.
	ErrAudience = errors.New("attest: audience mismatch")
	// ErrSubject: sub is missing or not the expected one, or the PoP iss is
	// not the attestation's sub.
	ErrSubject = errors.New("attest: subject mismatch")
	// ErrIssuer: iss is missing where required or not the expected one.
	ErrIssuer = errors.New("attest: issuer mismatch")
	// ErrReplay: the PoP jti was seen before or is missing.
	ErrReplay = errors.New("attest: proof replayed")
	// ErrKey: a JWK is not a public P-256 key (bad coordinates, private
	// member, kid that is not the key's), or keys repeat.
	ErrKey = errors.New("attest: bad key")
	// ErrStatus: key_storage_status or client_status is missing or malformed.
	ErrStatus = errors.New("attest: bad status reference")
	// ErrAssurance: an assurance value is unknown, or a claim exceeds what
	// the configured assurance allows.
	ErrAssurance = errors.New("attest: bad assurance")
	// ErrInput: a builder or configuration input is invalid.
	ErrInput = errors.New("attest: bad input")
)
