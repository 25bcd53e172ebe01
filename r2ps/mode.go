package r2ps

// Mode is a protection mode (§3.2, §4.1).
type Mode uint8

// The protection modes. ModeNone is the zero value: no mode, or a service
// type this profile does not define.
const (
	ModeNone Mode = iota
	Mode1FA       // JWE typ r2ps-1fa: the device's keys only (§4.1.1)
	Mode2FA       // JWE typ r2ps-2fa: a session proving both factors (§4.1.2)
)

// String returns "1FA", "2FA" or "none", the spelling of the go-r2ps-service
// vectors.
func (m Mode) String() string {
	switch m {
	case Mode1FA:
		return "1FA"
	case Mode2FA:
		return "2FA"
	}
	return "none"
}

// RequiredMode returns the protection mode a service type must arrive in
// (§4.2.1: the type "also fixes the required protection mode"), or ModeNone
// for a name this profile does not define, legacy aliases included.
//
// It mirrors the mode_constraints of the go-r2ps-service vectors with one
// deliberate difference (docs/protocol.md §6): p256_generate needs a 2FA
// session here, where go-r2ps-service serves it in 1FA.
func RequiredMode(serviceType string) Mode {
	switch serviceType {
	case TypeCreateSession, Type2FARegistration, TypeWKA, TypeWIA,
		TypeKeyAttestation, TypeWalletAttestation, TypeProofOfAssociation,
		TypeSECDSANonce, TypeSECDSAActivateBegin, TypeSECDSAActivateFinish, TypeSECDSAInstruction:
		return Mode1FA
	case Type2FAUpdate, TypeP256Generate, TypeSignECDSA, TypeAgreeECDH, TypeListKeys, TypeDeleteKey,
		TypePseudonymPut, TypePseudonymGet, TypePseudonymList, TypePseudonymDelete,
		TypeUnitInfo, TypeUnitSuspend, TypeUnitRevoke, TypeUnitUnsuspend:
		return Mode2FA
	}
	return ModeNone
}

// canonicalType maps a type name of either profile to its canonical name;
// ok is false for names neither profile defines.
func canonicalType(name string) (canonical string, ok bool) {
	switch name {
	case Alias2FAAuthenticate:
		return TypeCreateSession, true
	case Alias2FAChange:
		return Type2FAUpdate, true
	case AliasHSMECDSA:
		return TypeSignECDSA, true
	case AliasHSMECDH:
		return TypeAgreeECDH, true
	case AliasListKeys:
		return TypeListKeys, true
	}
	return name, RequiredMode(name) != ModeNone
}
