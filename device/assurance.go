package device

import (
	"errors"
	"fmt"
)

// Assurance is what a device may claim about how it protects keys. It is
// configuration, never detection: a PKCS#11 token cannot prove that it is
// hardware (SoftHSM answers exactly like an HSM), so a token claims only
// what its operator declared, and nothing (AssuranceNotCertified) by
// default.
type Assurance string

const (
	// AssuranceSoftware means keys are protected by software only: the
	// soft keystore always, a PKCS#11 token (SoftHSM) when so declared.
	AssuranceSoftware Assurance = "software"
	// AssuranceNotCertified claims no certified protection: the default of
	// a PKCS#11 token whose operator declared nothing.
	AssuranceNotCertified Assurance = "not-certified"
	// The certified levels, named like the key_storage values of EUDI TS3
	// (ISO/IEC 18045 attack potential the device was evaluated against).
	AssuranceBasic         Assurance = "iso_18045_basic"
	AssuranceEnhancedBasic Assurance = "iso_18045_enhanced-basic"
	AssuranceModerate      Assurance = "iso_18045_moderate"
	AssuranceHigh          Assurance = "iso_18045_high"
)

// ErrAssurance is returned for an assurance value that is not one of the
// Assurance constants, or a claim a backend cannot make.
var ErrAssurance = errors.New("device: bad assurance")

// ParseAssurance parses a configured assurance. The empty string is
// AssuranceNotCertified.
func ParseAssurance(s string) (Assurance, error) {
	switch a := Assurance(s); a {
	case "":
		return AssuranceNotCertified, nil
	case AssuranceSoftware, AssuranceNotCertified, AssuranceBasic, AssuranceEnhancedBasic, AssuranceModerate, AssuranceHigh:
		return a, nil
	}
	return "", fmt.Errorf("%w: %q (want software, not-certified, %s, %s, %s or %s)",
		ErrAssurance, s, AssuranceBasic, AssuranceEnhancedBasic, AssuranceModerate, AssuranceHigh)
}

// Certified reports whether a claims an evaluated (ISO/IEC 18045) level.
func (a Assurance) Certified() bool {
	switch a {
	case AssuranceBasic, AssuranceEnhancedBasic, AssuranceModerate, AssuranceHigh:
		return true
	}
	return false
}
