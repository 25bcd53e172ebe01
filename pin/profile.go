package pin

import (
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/bytemare/opaque"

	"github.com/wsca/wsca/pin/profile"
	"github.com/wsca/wsca/store"
)

// Profile is what client and server must agree on beyond the fixed suite
// (package profile, which the wallet side imports without this package).
// The zero value is the SIROS-compatible default.
type Profile = profile.Profile

// KSF names the key stretching function a client applies to the OPRF
// output ([profile.KSF]).
type KSF = profile.KSF

// The key stretching functions of [profile.KSF].
const (
	KSFIdentity = profile.KSFIdentity
	KSFArgon2id = profile.KSFArgon2id
	KSFScrypt   = profile.KSFScrypt
	KSFPBKDF2   = profile.KSFPBKDF2
)

// ParseKSF parses a KSF name: identity, argon2id, scrypt or pbkdf2-sha512.
// Errors wrap ErrConfig.
func ParseKSF(s string) (KSF, error) {
	k, err := profile.ParseKSF(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return k, nil
}

// configuration is p.Configuration with errors that wrap ErrConfig.
func configuration(p Profile) (*opaque.Configuration, error) {
	c, err := p.Configuration()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
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
