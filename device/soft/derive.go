package soft

import (
	"context"
	"crypto/ecdh"
	"fmt"

	"github.com/wsca/wsca/device"
)

var _ device.DeriveOnlyGenerator = (*Device)(nil)

// GenerateDeriveOnly implements device.DeriveOnlyGenerator: the key file
// says "usage": "derive", bound into the sealed key's additional data (a
// file whose usage was removed does not open), and Sign refuses the key
// with device.ErrKeyUsage.
func (d *Device) GenerateDeriveOnly(ctx context.Context, owner device.Owner) (device.Key, error) {
	if err := d.check(ctx); err != nil {
		return device.Key{}, err
	}
	if _, err := device.ParseOwner(string(owner)); err != nil {
		return device.Key{}, err
	}
	d.calls.Inc(CallGenerate)
	priv, err := ecdh.P256().GenerateKey(d.rand)
	if err != nil {
		return device.Key{}, fmt.Errorf("%w: %v", device.ErrUnavailable, err)
	}
	return d.store(owner, priv, false, true)
}
