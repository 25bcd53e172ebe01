package manager

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"
)

// KID is a key's id: the RFC 7638 JWK thumbprint of its P-256 public key,
// base64url without padding (43 characters).
type KID string

// Thumbprint returns the KID of a P-256 public key.
func Thumbprint(pub *ecdsa.PublicKey) (KID, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return "", errors.New("manager: not a P-256 public key")
	}
	raw, err := pub.Bytes()
	if err != nil {
		return "", fmt.Errorf("manager: public key: %w", err)
	}
	enc := base64.RawURLEncoding
	// RFC 7638 §3.2: the required members in lexicographic order, no
	// whitespace.
	j := `{"crv":"P-256","kty":"EC","x":"` + enc.EncodeToString(raw[1:33]) + `","y":"` + enc.EncodeToString(raw[33:65]) + `"}`
	sum := sha256.Sum256([]byte(j))
	return KID(enc.EncodeToString(sum[:])), nil
}

// Valid reports whether k has the form of a thumbprint.
func (k KID) Valid() bool {
	if len(k) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(string(k))
	return err == nil && len(b) == sha256.Size
}

// Op names an operation, for operation defaults.
type Op string

// The operations a default can be set for.
const (
	OpGenerate    Op = "generate_key"
	OpSign        Op = "sign"
	OpECDH        Op = "ecdh"
	OpPublicKey   Op = "export_public_key"
	OpDelete      Op = "delete"
	OpProperties  Op = "security_properties"
	OpAttestation Op = "attestation"
	OpMigrate     Op = "migrate"
)

// KeyStorage says where a plugin keeps private keys (not how well: that is
// the attack-potential fields of [Properties]).
type KeyStorage string

// Key storage kinds.
const (
	StorageSoftware         KeyStorage = "software"
	StorageHardware         KeyStorage = "hardware"
	StorageRemoteHSM        KeyStorage = "remote_hsm"
	StorageTrustedExecution KeyStorage = "trusted_execution"
)

// Properties are a key's security properties as its plugin was configured
// to state them. A plugin never claims more than its configuration says:
// an attack-potential value is empty unless the host declared it (for
// instance from the WSCD's certificate or key attestation).
type Properties struct {
	Storage KeyStorage `json:"key_storage"`
	// Exportable is true when the private key can leave the plugin in any
	// form (softkey's encrypted container counts).
	Exportable bool `json:"exportable"`
	// UserVerification names what the plugin checks before using the key
	// ("pin", "pwd", "face", "fpt"...; empty: nothing).
	UserVerification []string `json:"user_verification,omitempty"`
	// KeyStorageAttackPotential and UserAuthAttackPotential are the
	// ISO/IEC 18045 resistance levels the WSCD is certified for, in the
	// values OpenID4VCI key attestations use (iso_18045_high,
	// iso_18045_moderate, iso_18045_enhanced-basic, iso_18045_basic).
	KeyStorageAttackPotential string `json:"key_storage_attack_potential,omitempty"`
	UserAuthAttackPotential   string `json:"user_authentication_attack_potential,omitempty"`
	// Certification describes the certificate behind the two levels, free
	// text, empty when none.
	Certification string `json:"certification,omitempty"`
	// Assurance is the WSCD's own statement of its protection, when it
	// makes one (a remote WSCD's configured device assurance: software,
	// not-certified or an iso_18045 level).
	Assurance string `json:"assurance,omitempty"`
}

// Requirement is what an issuer requires of the key that will hold a
// credential: the accepted values of key_storage and user_authentication
// in its key_attestations_required (OpenID4VCI 1.0 Appendix D). An empty
// list accepts anything for that property.
type Requirement struct {
	KeyStorage         []string `json:"key_storage,omitempty"`
	UserAuthentication []string `json:"user_authentication,omitempty"`
	// Storage is the wallet's own policy, not an issuer's: the accepted
	// kinds of storage (e.g. no software keys for this credential).
	Storage []KeyStorage `json:"storage,omitempty"`
}

// IsZero reports whether r requires nothing.
func (r Requirement) IsZero() bool {
	return len(r.KeyStorage) == 0 && len(r.UserAuthentication) == 0 && len(r.Storage) == 0
}

// Admits reports whether a key with properties p meets r.
func (r Requirement) Admits(p Properties) bool {
	if len(r.Storage) > 0 && !slices.Contains(r.Storage, p.Storage) {
		return false
	}
	return accepts(r.KeyStorage, p.KeyStorageAttackPotential) && accepts(r.UserAuthentication, p.UserAuthAttackPotential)
}

func accepts(list []string, v string) bool {
	if len(list) == 0 {
		return true
	}
	if v == "" {
		return false
	}
	for _, a := range list {
		if a == v {
			return true
		}
	}
	return false
}

// Result says how an operation was authorised.
type Result struct {
	// Plugin is the id of the plugin that served it.
	Plugin string
	// AMR are the factors that authorised this call (RFC 8176 values such
	// as "pwd", "pin", "hwk", "swk", "pop"); empty when the plugin asked
	// for nothing.
	AMR []string
}

// Key is a key the manager knows.
type Key struct {
	KID    KID
	Plugin string
	// Handle is the plugin's own name for the key (for R2PS, the server's
	// kid), for display and for finding a key by that name.
	Handle  string
	Public  *ecdsa.PublicKey
	Created time.Time
}

// MigrationResult is what [Manager.Migrate] did: either a new key on the
// target (Migrated) or nothing, because the target cannot take the key in
// and the credential must be issued again to a key made there.
type MigrationResult struct {
	Migrated             bool
	NewKey               Key
	ReEnrollmentRequired bool
	OldKID               KID
}
