package attest

import (
	"strings"
	"testing"
	"time"
)

// TestMissingTimesNamed: a missing exp or iat is reported as missing, not
// as an inconsistency of the other claims (the OIDF suite's
// EnsureKeyAttestationExpIsPresentForJwtProof names exactly this).
func TestMissingTimesNamed(t *testing.T) {
	f := newFixture(t)
	good, err := f.issuer.KeyAttestation(f.kaInput())
	if err != nil {
		t.Fatal(err)
	}
	for claim, want := range map[string]string{"exp": "no exp", "iat": "no iat"} {
		h, c := decodeToken(t, good)
		delete(c, claim)
		_, err := f.ver.VerifyKeyAttestation(resign(t, f.key, h, c), KeyAttestationOptions{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("without %s: err = %v, want %q", claim, err, want)
		}
	}
	wiaTok, err := f.issuer.WalletAttestation(f.wiaInput())
	if err != nil {
		t.Fatal(err)
	}
	wa, err := f.ver.VerifyWalletAttestation(wiaTok, WalletAttestationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pop, err := NewClientAttestationPoP(f.wallet[2], PoPInput{Audience: testAS, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	h, c := decodeToken(t, pop)
	delete(c, "iat")
	_, err = f.ver.VerifyClientAttestationPoP(t.Context(), resign(t, f.wallet[2], h, c), wa, PoPOptions{Audience: testAS, Seen: &memSeen{}})
	if err == nil || !strings.Contains(err.Error(), "no iat") {
		t.Errorf("PoP without iat: err = %v", err)
	}
}
