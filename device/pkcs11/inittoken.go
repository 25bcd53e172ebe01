//go:build cgo && !nopkcs11

package pkcs11

import (
	"fmt"

	p11 "github.com/miekg/pkcs11"
)

// InitToken initialises a new token with label on the first slot whose
// token is not yet initialised (SoftHSM always offers one), sets its SO
// PIN and user PIN, and returns the slot id. Operators use it through
// `wsca device init`; a production HSM is initialised with its vendor's
// tools instead.
func InitToken(module, label, soPIN, userPIN string) (uint, error) {
	if module == "" || label == "" || soPIN == "" || userPIN == "" {
		return 0, fmt.Errorf("%w: module, label, SO PIN and user PIN are required", ErrURI)
	}
	lib := p11.New(module)
	if lib == nil {
		return 0, fmt.Errorf("pkcs11: cannot load module %s", module)
	}
	defer lib.Destroy()
	if err := lib.Initialize(); err != nil && !isCode(err, p11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		return 0, fmt.Errorf("pkcs11: C_Initialize: %v", err)
	}
	slots, err := lib.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("pkcs11: C_GetSlotList: %v", err)
	}
	for _, s := range slots {
		ti, err := lib.GetTokenInfo(s)
		if err != nil {
			continue
		}
		if ti.Flags&p11.CKF_TOKEN_INITIALIZED != 0 {
			if ti.Label == label {
				return 0, fmt.Errorf("pkcs11: a token labelled %q already exists", label)
			}
			continue
		}
		if err := lib.InitToken(s, soPIN, label); err != nil {
			return 0, fmt.Errorf("pkcs11: C_InitToken: %v", err)
		}
		// SoftHSM moves a newly initialised token to a new slot id: find it
		// again by label.
		slot, err := slotByLabel(lib, label)
		if err != nil {
			return 0, err
		}
		sess, err := lib.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
		if err != nil {
			return 0, fmt.Errorf("pkcs11: C_OpenSession: %v", err)
		}
		defer lib.CloseSession(sess)
		if err := lib.Login(sess, p11.CKU_SO, soPIN); err != nil {
			return 0, fmt.Errorf("pkcs11: SO login: %v", err)
		}
		defer lib.Logout(sess)
		if err := lib.InitPIN(sess, userPIN); err != nil {
			return 0, fmt.Errorf("pkcs11: C_InitPIN: %v", err)
		}
		return slot, nil
	}
	return 0, fmt.Errorf("pkcs11: no slot with an uninitialised token")
}

func slotByLabel(lib *p11.Ctx, label string) (uint, error) {
	slots, err := lib.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("pkcs11: C_GetSlotList: %v", err)
	}
	for _, s := range slots {
		if ti, err := lib.GetTokenInfo(s); err == nil && ti.Label == label && ti.Flags&p11.CKF_TOKEN_INITIALIZED != 0 {
			return s, nil
		}
	}
	return 0, fmt.Errorf("pkcs11: token %q not found after initialisation", label)
}
