package r2ps

// The WSCA service types (docs/protocol.md §7): what a unit asks of its
// Wallet Provider beyond the use of its keys. All are 2FA: they run in a
// PIN session.
const (
	TypePseudonymPut    = "pseudonym_put"       // store a value in a slot
	TypePseudonymGet    = "pseudonym_get"       // read a slot
	TypePseudonymList   = "pseudonym_list"      // list the slots
	TypePseudonymDelete = "pseudonym_delete"    // erase a slot
	TypeUnitInfo        = "wallet_unit_info"    // activation and capability information
	TypeUnitSuspend     = "wallet_unit_suspend" // the holder suspends the unit
	TypeUnitRevoke      = "wallet_unit_revoke"  // the holder revokes the unit, for good
	// TypeUnitUnsuspend lifts a suspension the holder made, in a session
	// bound to TaskUnsuspend: the only session a suspended unit can open.
	TypeUnitUnsuspend = "wallet_unit_unsuspend"
)

// TaskUnsuspend is the task of the session that lifts a suspension.
const TaskUnsuspend = "wallet_unit_unsuspend"

// Authentication method references (RFC 8176) that a response's amr lists:
// the factors that authorised the operation.
const (
	// AMRPossession: the request was signed with the unit's client signing
	// key, held by the wallet (possession).
	AMRPossession = "pop"
	// AMRPIN: the request ran in a session opened with the unit's PIN
	// through OPAQUE (knowledge).
	AMRPIN = "pin"
)

// PseudonymPutRequest is the data of pseudonym_put.
type PseudonymPutRequest struct {
	Slot  string `json:"slot"`
	Value Bytes  `json:"value"`
}

// PseudonymPutResponse answers pseudonym_put; Created says whether the
// slot was new.
type PseudonymPutResponse struct {
	Success bool     `json:"success"`
	Created bool     `json:"created"`
	AMR     []string `json:"amr,omitempty"`
}

// PseudonymRequest is the data of pseudonym_get and pseudonym_delete.
type PseudonymRequest struct {
	Slot string `json:"slot"`
}

// PseudonymGetResponse answers pseudonym_get.
type PseudonymGetResponse struct {
	Success bool     `json:"success"`
	Value   Bytes    `json:"value"`
	AMR     []string `json:"amr,omitempty"`
}

// PseudonymSlot describes one slot in pseudonym_list.
type PseudonymSlot struct {
	Slot      string `json:"slot"`
	CreatedAt int64  `json:"created_at"` // seconds since the epoch
	UpdatedAt int64  `json:"updated_at"`
}

// PseudonymListResponse answers pseudonym_list.
type PseudonymListResponse struct {
	Success bool            `json:"success"`
	Slots   []PseudonymSlot `json:"slots"`
	AMR     []string        `json:"amr,omitempty"`
}

// EmptyRequest is the data of the types that take none: pseudonym_list,
// wallet_unit_info, wallet_unit_suspend.
type EmptyRequest struct{}

// DoneResponse answers pseudonym_delete and wallet_unit_suspend.
type DoneResponse struct {
	Success bool     `json:"success"`
	AMR     []string `json:"amr,omitempty"`
}

// UnitRevokeRequest is the data of wallet_unit_revoke: Confirm must be
// the unit's id, so that no request revokes a unit by mistake.
type UnitRevokeRequest struct {
	Confirm string `json:"confirm"`
	Reason  string `json:"reason,omitempty"`
}

// MaxReasonLen bounds UnitRevokeRequest.Reason.
const MaxReasonLen = 256

// Capabilities is what the unit's keys get from the Wallet Provider
// (ARF WUA_05, WUA_16): how keys are stored and users authenticated, as
// configured for the device, never assumed.
type Capabilities struct {
	// KeyStorage and UserAuthentication are the attack-potential levels
	// (the key_storage and user_authentication values of a key
	// attestation); empty when the device's assurance is not certified.
	KeyStorage         []string `json:"key_storage"`
	UserAuthentication []string `json:"user_authentication"`
	// DeviceAssurance is the device's configured assurance (software,
	// not-certified or an iso_18045_* level).
	DeviceAssurance string `json:"device_assurance"`
	// KeysExportable is always false: no private key leaves the device.
	KeysExportable bool     `json:"keys_exportable"`
	Curves         []string `json:"curves"`
	Types          []string `json:"types"` // the service types this instance serves
}

// UnitInfoResponse answers wallet_unit_info: activation information
// (ARF WIAM_05) and capabilities.
type UnitInfoResponse struct {
	Success bool   `json:"success"`
	Unit    string `json:"unit"`
	State   string `json:"state"`
	// CreatedAt is when the unit was created, ActivatedAt when its client
	// key was enrolled (seconds since the epoch; 0 if unknown).
	CreatedAt    int64        `json:"created_at"`
	ActivatedAt  int64        `json:"activated_at"`
	Keys         int          `json:"keys"`
	Capabilities Capabilities `json:"capabilities"`
	AMR          []string     `json:"amr,omitempty"`
}

func checkSlot(slot string) error {
	if slot == "" || len(slot) > 128 {
		return errorf(ErrMalformed, "slot of %d bytes", len(slot))
	}
	return nil
}

func (r PseudonymPutRequest) validate() error {
	if err := checkSlot(r.Slot); err != nil {
		return err
	}
	if len(r.Value) == 0 {
		return errorf(ErrMalformed, "empty value")
	}
	return nil
}

func (r PseudonymRequest) validate() error { return checkSlot(r.Slot) }

func (r UnitRevokeRequest) validate() error {
	if r.Confirm == "" {
		return errorf(ErrMalformed, "confirm missing")
	}
	if len(r.Reason) > MaxReasonLen {
		return errorf(ErrMalformed, "reason longer than %d bytes", MaxReasonLen)
	}
	return nil
}

func (r PseudonymPutResponse) validate() error  { return needSuccess(r.Success) }
func (r PseudonymGetResponse) validate() error  { return needSuccess(r.Success) }
func (r PseudonymListResponse) validate() error { return needSuccess(r.Success) }
func (r DoneResponse) validate() error          { return needSuccess(r.Success) }
func (r UnitInfoResponse) validate() error      { return needSuccess(r.Success) }

// The attestation types (docs/protocol.md §7): 1FA, like go-r2ps-service's
// eudiw_wka_etsi and eudiw_wia_etsi, whose data they also accept. An
// attestation states facts about keys the unit holds; using the keys still
// needs the PIN.
const (
	TypeKeyAttestation     = "key_attestation"      // key-attestation+jwt
	TypeWalletAttestation  = "wallet_attestation"   // oauth-client-attestation+jwt
	TypeProofOfAssociation = "proof_of_association" // wsca-poa+jwt
)

// MaxAttestedKeys bounds the kids one attestation request names.
const MaxAttestedKeys = 32

// MaxNonceLen bounds an issuer's nonce or audience in an attestation
// request.
const MaxNonceLen = 512

// KeyAttestationRequest is the data of key_attestation: the unit's keys to
// attest (the first is the one a proof is signed with) and the issuer's
// nonce (c_nonce), if any.
type KeyAttestationRequest struct {
	KIDs  []string `json:"kids"`
	Nonce string   `json:"nonce,omitempty"`
}

// KeyAttestationResponse answers key_attestation.
type KeyAttestationResponse struct {
	Success        bool     `json:"success"`
	KeyAttestation string   `json:"key_attestation"`
	AMR            []string `json:"amr,omitempty"`
}

// WalletAttestationRequest is the data of wallet_attestation: the unit's
// key that becomes the wallet instance key (cnf.jwk).
type WalletAttestationRequest struct {
	KID string `json:"kid"`
}

// WalletAttestationResponse answers wallet_attestation.
type WalletAttestationResponse struct {
	Success           bool     `json:"success"`
	WalletAttestation string   `json:"wallet_attestation"`
	AMR               []string `json:"amr,omitempty"`
}

// ProofOfAssociationRequest is the data of proof_of_association: two or
// more of the unit's keys, and optionally the relying party's audience and
// nonce.
type ProofOfAssociationRequest struct {
	KIDs     []string `json:"kids"`
	Audience string   `json:"aud,omitempty"`
	Nonce    string   `json:"nonce,omitempty"`
}

// ProofOfAssociationResponse answers proof_of_association.
type ProofOfAssociationResponse struct {
	Success bool     `json:"success"`
	Proof   string   `json:"proof_of_association"`
	AMR     []string `json:"amr,omitempty"`
}

// ETSIAttestationRequest is the data of go-r2ps-service's eudiw_wka_etsi
// and eudiw_wia_etsi (ver is its profile version, draft-008); Nonce is our
// addition for issuers that send a c_nonce.
type ETSIAttestationRequest struct {
	KeysToAttest []string `json:"keys_to_attest"`
	Ver          string   `json:"ver,omitempty"`
	Nonce        string   `json:"nonce,omitempty"`
}

// WKAResponse answers eudiw_wka_etsi; WIAResponse eudiw_wia_etsi.
type WKAResponse struct {
	Success bool     `json:"success"`
	WKA     string   `json:"wka"`
	AMR     []string `json:"amr,omitempty"`
}

// WIAResponse answers eudiw_wia_etsi.
type WIAResponse struct {
	Success bool     `json:"success"`
	WIA     string   `json:"wia"`
	AMR     []string `json:"amr,omitempty"`
}

func checkKIDs(kids []string, min int) error {
	if len(kids) < min || len(kids) > MaxAttestedKeys {
		return errorf(ErrMalformed, "%d kids (%d to %d)", len(kids), min, MaxAttestedKeys)
	}
	for _, k := range kids {
		if err := checkKeyID(k); err != nil {
			return err
		}
	}
	return nil
}

func checkNonce(name, v string) error {
	if len(v) > MaxNonceLen {
		return errorf(ErrMalformed, "%s longer than %d bytes", name, MaxNonceLen)
	}
	return nil
}

func (r KeyAttestationRequest) validate() error {
	if err := checkKIDs(r.KIDs, 1); err != nil {
		return err
	}
	return checkNonce("nonce", r.Nonce)
}

func (r WalletAttestationRequest) validate() error { return checkKeyID(r.KID) }

func (r ProofOfAssociationRequest) validate() error {
	if err := checkKIDs(r.KIDs, 2); err != nil {
		return err
	}
	if err := checkNonce("aud", r.Audience); err != nil {
		return err
	}
	return checkNonce("nonce", r.Nonce)
}

func (r ETSIAttestationRequest) validate() error {
	if err := checkKIDs(r.KeysToAttest, 1); err != nil {
		return err
	}
	return checkNonce("nonce", r.Nonce)
}

func (r KeyAttestationResponse) validate() error     { return needSuccess(r.Success) }
func (r WalletAttestationResponse) validate() error  { return needSuccess(r.Success) }
func (r ProofOfAssociationResponse) validate() error { return needSuccess(r.Success) }
func (r WKAResponse) validate() error                { return needSuccess(r.Success) }
func (r WIAResponse) validate() error                { return needSuccess(r.Success) }
