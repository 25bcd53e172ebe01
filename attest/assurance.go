package attest

import "fmt"

// Assurance is the configured protection level of the device that holds
// the attested keys, or of the user authentication that gates their use.
// Its values are the strings of wsca's device.Assurance (mirrored here so
// that the package stays wallet side): the lead converts with
// ParseAssurance(string(a)). The certified values are the EUDI TS3 /
// OpenID4VCI Appendix D.2 key_storage and user_authentication values
// (ISO/IEC 18045 attack potential resisted).
type Assurance string

// The assurance values. Only the four iso_18045 values are certified.
const (
	AssuranceSoftware      Assurance = "software"
	AssuranceNotCertified  Assurance = "not-certified"
	AssuranceBasic         Assurance = "iso_18045_basic"
	AssuranceEnhancedBasic Assurance = "iso_18045_enhanced-basic"
	AssuranceModerate      Assurance = "iso_18045_moderate"
	AssuranceHigh          Assurance = "iso_18045_high"
)

// ParseAssurance parses a configured assurance; "" is AssuranceNotCertified,
// as for device.ParseAssurance.
func ParseAssurance(s string) (Assurance, error) {
	a := Assurance(s)
	if s == "" {
		a = AssuranceNotCertified
	}
	if a.rank() < 0 {
		return "", fmt.Errorf("%w: %q", ErrAssurance, s)
	}
	return a, nil
}

// Certified reports whether a is an evaluated (ISO/IEC 18045) level.
func (a Assurance) Certified() bool { return a.rank() > 0 }

// rank orders the values: -1 unknown, 0 uncertified, 1..4 basic..high.
func (a Assurance) rank() int {
	switch a {
	case AssuranceSoftware, AssuranceNotCertified:
		return 0
	case AssuranceBasic:
		return 1
	case AssuranceEnhancedBasic:
		return 2
	case AssuranceModerate:
		return 3
	case AssuranceHigh:
		return 4
	}
	return -1
}

// claim is the key_storage or user_authentication array for a: the level
// itself when certified, ["software"] for software protection (so that an
// attestation backed by the soft device says so), and nothing for
// AssuranceNotCertified, which claims nothing.
func (a Assurance) claim() []string {
	switch {
	case a.Certified(), a == AssuranceSoftware:
		return []string{string(a)}
	}
	return nil
}

// KeyAssurance is the typed assurance input of a key attestation: what the
// operator configured for the device holding the keys and for the user
// authentication gating them. The claims follow from it and nothing else;
// see claims for the rules.
type KeyAssurance struct {
	// KeyStorage is the configured assurance of the device (WSCD) that
	// generated and holds the attested keys.
	KeyStorage Assurance
	// UserAuthentication is the configured assurance of the user
	// authentication (PIN via OPAQUE in wsca) required before a key is used.
	UserAuthentication Assurance
}

// Check reports whether the pair may be claimed at all (claims): a
// configuration that fails it would fail every attestation, so check it at
// start.
func (k KeyAssurance) Check() error {
	_, _, err := k.claims()
	return err
}

// claims returns key_storage and user_authentication. It refuses unknown
// values, and a certified user authentication on a device certified lower
// (or not at all): the device enforces the authentication's outcome, so
// the pair is no stronger than the device.
func (k KeyAssurance) claims() (keyStorage, userAuth []string, err error) {
	ks, ua := k.KeyStorage, k.UserAuthentication
	if ks.rank() < 0 || ua.rank() < 0 {
		return nil, nil, fmt.Errorf("%w: unknown value", ErrAssurance)
	}
	if ua.Certified() && ua.rank() > ks.rank() {
		return nil, nil, fmt.Errorf("%w: user authentication %s above key storage %s", ErrAssurance, ua, ks)
	}
	return ks.claim(), ua.claim(), nil
}
