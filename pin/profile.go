package pin

import (
	"crypto"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/bytemare/ksf"
	"github.com/bytemare/opaque"

	"github.com/wsca/wsca/store"
)

// KSF names the key stretching function a client applies to the OPRF
// output before it derives its envelope keys (RFC 9807's Stretch). The
// server never runs it; it is part of the profile so that both sides build
// the same configuration.
type KSF uint8

const (
	// KSFIdentity is no stretching: the SIROS-compatible default. A client
	// may still harden the PIN before OPAQUE; the server cannot tell.
	KSFIdentity KSF = iota
	KSFArgon2id
	KSFScrypt
	KSFPBKDF2
)

var ksfNames = [...]string{
	KSFIdentity: "identity",
	KSFArgon2id: "argon2id",
	KSFScrypt:   "scrypt",
	KSFPBKDF2:   "pbkdf2-sha512",
}

// String returns the name ParseKSF accepts.
func (k KSF) String() string {
	if int(k) < len(ksfNames) {
		return ksfNames[k]
	}
	return fmt.Sprintf("KSF(%d)", uint8(k))
}

// ParseKSF parses a KSF name: identity, argon2id, scrypt or pbkdf2-sha512.
func ParseKSF(s string) (KSF, error) {
	for k, name := range ksfNames {
		if s == name {
			return KSF(k), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown KSF %q", ErrConfig, s)
}

func (k KSF) identifier() (ksf.Identifier, error) {
	switch k {
	case KSFIdentity:
		return 0, nil
	case KSFArgon2id:
		return ksf.Argon2id, nil
	case KSFScrypt:
		return ksf.Scrypt, nil
	case KSFPBKDF2:
		return ksf.PBKDF2Sha512, nil
	}
	return 0, fmt.Errorf("%w: unknown KSF %d", ErrConfig, uint8(k))
}

// maxContextLen is the longest OPAQUE context string: RFC 9807 encodes it
// with a two-byte length.
const maxContextLen = 1<<16 - 1

// Profile is what client and server must agree on beyond the fixed suite.
// The zero value is the SIROS-compatible default.
type Profile struct {
	// Context is the OPAQUE context string bound into every handshake's
	// preamble (empty by default).
	Context string
	// KSF is the client's key stretching function (identity by default).
	KSF KSF
}

// Configuration returns the bytemare/opaque configuration of the profile:
// the fixed P256-SHA256 suite with the profile's context and KSF. A client
// uses it to build an opaque.Client.
func (p Profile) Configuration() (*opaque.Configuration, error) {
	id, err := p.KSF.identifier()
	if err != nil {
		return nil, err
	}
	if len(p.Context) > maxContextLen {
		return nil, fmt.Errorf("%w: OPAQUE context longer than %d bytes", ErrConfig, maxContextLen)
	}
	c := &opaque.Configuration{
		OPRF: opaque.P256Sha256,
		AKE:  opaque.P256Sha256,
		KSF:  id,
		KDF:  crypto.SHA256,
		MAC:  crypto.SHA256,
		Hash: crypto.SHA256,
	}
	if p.Context != "" {
		c.Context = []byte(p.Context)
	}
	return c, nil
}

// contextSeparator joins the PIN context and the unit id in a credential
// identifier; a context may not contain it.
const contextSeparator = "|"

// credentialIdentifier returns the OPAQUE credential identifier of a
// record, context|unit|hex(nonce), or an ErrMalformed error. The nonce is
// drawn at each registration, so every record has its own OPRF key and an
// evaluation made for one registration says nothing about another (see
// RegistrationResponse). The ids follow the store's rules and the context
// has no '|', so the mapping is injective.
func credentialIdentifier(unit, pinContext string, nonce []byte) ([]byte, error) {
	if err := checkName("unit id", unit); err != nil {
		return nil, err
	}
	if err := checkName("context", pinContext); err != nil {
		return nil, err
	}
	if strings.Contains(pinContext, contextSeparator) {
		return nil, fmt.Errorf("%w: context contains %q", ErrMalformed, contextSeparator)
	}
	return []byte(pinContext + contextSeparator + unit + contextSeparator + hex.EncodeToString(nonce)), nil
}

func checkName(field, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%w: empty %s", ErrMalformed, field)
	case len(v) > store.MaxIDLen:
		return fmt.Errorf("%w: %s longer than %d bytes", ErrMalformed, field, store.MaxIDLen)
	case !utf8.ValidString(v):
		return fmt.Errorf("%w: %s is not UTF-8", ErrMalformed, field)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %s has a control character", ErrMalformed, field)
		}
	}
	return nil
}
