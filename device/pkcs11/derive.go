//go:build cgo && !nopkcs11

package pkcs11

import (
	"context"

	"github.com/wsca/wsca/device"
)

var _ device.DeriveOnlyGenerator = (*Device)(nil)

// GenerateDeriveOnly implements device.DeriveOnlyGenerator: a key pair
// whose private half has CKA_DERIVE and not CKA_SIGN (sensitive, not
// extractable), as a token object, or in wrapped storage as a blob of
// version 2, unwrapped without CKA_SIGN. Sign with it fails with
// device.ErrKeyUsage: the token refuses a token object; a derive-only
// blob is refused before any call.
func (d *Device) GenerateDeriveOnly(ctx context.Context, owner device.Owner) (device.Key, error) {
	return d.generate(ctx, owner, usageDerive)
}
