package dispatch

import (
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/store"
)

// signerRule says which key a request's JWS may be verified with.
type signerRule uint8

const (
	// signerRegistered: the unit's registered client signing key (CSK).
	signerRegistered signerRule = iota
	// signerSelf: a key embedded in the JWS header (a registration binding
	// a new CSK with an activation code). In the compat profile a
	// registration may also come signed by an operator-provisioned CSK.
	signerSelf
)

// unitRule says what state the unit must be in.
type unitRule uint8

const (
	// unitActive: the unit exists and is active (not suspended, revoked).
	unitActive unitRule = iota
	// unitEnrolling: the unit has an outstanding activation code. Only a
	// self-signed registration is checked this way, before anything is
	// written for it (no nonce, no pending registration).
	unitEnrolling
	// unitActiveOrSuspended: create_session, which a suspended unit may
	// run only for a session bound to TaskUnsuspend (tfa.go).
	unitActiveOrSuspended
	// unitSuspended: wallet_unit_unsuspend.
	unitSuspended
)

// admits reports whether a unit in state st passes the rule (a self-signed
// registration is checked by unitEnrolling's own path).
func (u unitRule) admits(st store.UnitState) bool {
	switch u {
	case unitActiveOrSuspended:
		return st == store.UnitActive || st == store.UnitSuspended
	case unitSuspended:
		return st == store.UnitSuspended
	}
	return st == store.UnitActive
}

// taskRule says how a session's task limits a request.
type taskRule uint8

const (
	// taskNone: refused in a task-bound session.
	taskNone taskRule = iota
	// taskSign: in a sign: session, one signature per listed hash; in a
	// context that demands tasks (or for a key made in one), only there.
	taskSign
	// taskList: allowed in plain and sign: sessions, not in 2fa_update.
	taskList
	// taskUpdate: only in a 2fa_update session, which it ends.
	taskUpdate
	// taskNotApplicable: 1FA types, which have no session.
	taskNotApplicable
	// taskUnsuspend: only in a session bound to TaskUnsuspend.
	taskUnsuspend
)

// policy is what a request type demands, checked by authenticate (mode,
// signer, unit) and by the handlers through checkTask (task).
type policy struct {
	mode   r2ps.Mode
	signer signerRule
	unit   unitRule
	task   taskRule
	// wscd marks the key service types, served only in the wscd role;
	// wsca the WSCA service types, served only in the wsca role.
	wscd, wsca bool
	// attest marks the attestation types, served only when an attestation
	// key is configured.
	attest bool
	// login marks the types that run OPAQUE, served only where the PIN
	// server can (not on a WSCA-only instance: pin.Server.CanLogin).
	login bool
	// secdsa marks the SECDSA types, served only when the SECDSA service
	// is configured (in the wscd role).
	secdsa bool
}

// policies is the table of every request type served. A type missing here
// is UNSUPPORTED_REQUEST_TYPE.
var policies = map[string]policy{
	r2ps.TypeCreateSession:   {mode: r2ps.Mode1FA, signer: signerRegistered, unit: unitActiveOrSuspended, task: taskNotApplicable, login: true},
	r2ps.Type2FARegistration: {mode: r2ps.Mode1FA, signer: signerSelf, unit: unitEnrolling, task: taskNotApplicable, login: true},
	r2ps.Type2FAUpdate:       {mode: r2ps.Mode2FA, signer: signerRegistered, unit: unitActive, task: taskUpdate, login: true},
	r2ps.TypeP256Generate:    {mode: r2ps.Mode2FA, signer: signerRegistered, unit: unitActive, task: taskNone, wscd: true},
	r2ps.TypeSignECDSA:       {mode: r2ps.Mode2FA, signer: signerRegistered, unit: unitActive, task: taskSign, wscd: true},
	r2ps.TypeAgreeECDH:       {mode: r2ps.Mode2FA, signer: signerRegistered, unit: unitActive, task: taskNone, wscd: true},
	r2ps.TypeListKeys:        {mode: r2ps.Mode2FA, signer: signerRegistered, unit: unitActive, task: taskList, wscd: true},
	r2ps.TypeDeleteKey:       {mode: r2ps.Mode2FA, signer: signerRegistered, unit: unitActive, task: taskNone, wscd: true},

	r2ps.TypePseudonymPut:    {mode: r2ps.Mode2FA, signer: signerRegistered, unit: unitActive, task: taskNone, wsca: true},
	r2ps.TypePseudonymGet:    {mode: r2ps.Mode2FA, signer: signerRegistered, unit: unitActive, task: taskNone, wsca: true},
	r2ps.TypePseudonymList:   {mode: r2ps.Mode2FA, signer: signerRegistered, unit: unitActive, task: taskNone, wsca: true},
	r2ps.TypePseudonymDelete: {mode: r2ps.Mode2FA, signer: signerRegistered, unit: unitActive, task: taskNone, wsca: true},
	r2ps.TypeUnitInfo:        {mode: r2ps.Mode2FA, signer: signerRegistered, unit: unitActive, task: taskNone, wsca: true},
	r2ps.TypeUnitSuspend:     {mode: r2ps.Mode2FA, signer: signerRegistered, unit: unitActive, task: taskNone, wsca: true},
	r2ps.TypeUnitRevoke:      {mode: r2ps.Mode2FA, signer: signerRegistered, unit: unitActive, task: taskNone, wsca: true},
	r2ps.TypeUnitUnsuspend:   {mode: r2ps.Mode2FA, signer: signerRegistered, unit: unitSuspended, task: taskUnsuspend, wsca: true},

	r2ps.TypeKeyAttestation:     {mode: r2ps.Mode1FA, signer: signerRegistered, unit: unitActive, task: taskNotApplicable, wsca: true, attest: true},
	r2ps.TypeWalletAttestation:  {mode: r2ps.Mode1FA, signer: signerRegistered, unit: unitActive, task: taskNotApplicable, wsca: true, attest: true},
	r2ps.TypeProofOfAssociation: {mode: r2ps.Mode1FA, signer: signerRegistered, unit: unitActive, task: taskNotApplicable, wsca: true, attest: true},
	r2ps.TypeWKA:                {mode: r2ps.Mode1FA, signer: signerRegistered, unit: unitActive, task: taskNotApplicable, wsca: true, attest: true},
	r2ps.TypeWIA:                {mode: r2ps.Mode1FA, signer: signerRegistered, unit: unitActive, task: taskNotApplicable, wsca: true, attest: true},

	// SECDSA (docs/secdsa.md "Wire"): 1FA, the CSK is the SECDSA device
	// key U, the PIN is checked by the instruction's one HSM derive.
	r2ps.TypeSECDSANonce:          {mode: r2ps.Mode1FA, signer: signerRegistered, unit: unitActive, task: taskNotApplicable, wscd: true, secdsa: true},
	r2ps.TypeSECDSAActivateBegin:  {mode: r2ps.Mode1FA, signer: signerRegistered, unit: unitActive, task: taskNotApplicable, wscd: true, secdsa: true},
	r2ps.TypeSECDSAActivateFinish: {mode: r2ps.Mode1FA, signer: signerRegistered, unit: unitActive, task: taskNotApplicable, wscd: true, secdsa: true},
	r2ps.TypeSECDSAInstruction:    {mode: r2ps.Mode1FA, signer: signerRegistered, unit: unitActive, task: taskNotApplicable, wscd: true, secdsa: true},
}

// policyFor returns the policy of a type this dispatcher serves.
func (d *Dispatcher) policyFor(typ string) (policy, error) {
	p, ok := policies[typ]
	if !ok || p.wscd && !d.cfg.WSCD || p.wsca && !d.cfg.WSCA || p.attest && d.cfg.Attestations == nil ||
		p.login && !d.canLogin || p.secdsa && d.cfg.SECDSA == nil {
		return policy{}, r2ps.ErrUnsupportedType
	}
	return p, nil
}
