package attest_test

import (
	"testing"

	"github.com/wsca/wsca/attest"
	"github.com/wsca/wsca/device"
)

// TestAssuranceMirrorsDevice: attest.Assurance has the strings of
// device.Assurance (attest cannot import device and stay wallet side), so
// the lead's conversion attest.ParseAssurance(string(a)) is exact.
func TestAssuranceMirrorsDevice(t *testing.T) {
	for _, d := range []device.Assurance{
		device.AssuranceSoftware, device.AssuranceNotCertified, device.AssuranceBasic,
		device.AssuranceEnhancedBasic, device.AssuranceModerate, device.AssuranceHigh,
	} {
		a, err := attest.ParseAssurance(string(d))
		if err != nil || string(a) != string(d) || a.Certified() != d.Certified() {
			t.Errorf("%s: %q, %v", d, a, err)
		}
	}
}
