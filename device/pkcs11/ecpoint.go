package pkcs11

import (
	"crypto/ecdsa"
	"errors"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/wsca/wsca/device"
)

// errECPoint is returned for a CKA_EC_POINT that is not a P-256 point.
var errECPoint = errors.New("pkcs11: malformed CKA_EC_POINT")

// parseECPoint decodes CKA_EC_POINT. PKCS#11 v2.40 §2.3.3 says it is the DER
// OCTET STRING of the SEC1 point; some tokens return the bare point, so
// both are accepted, and the point is validated either way.
func parseECPoint(v []byte) (*ecdsa.PublicKey, error) {
	raw := v
	in := cryptobyte.String(v)
	var inner cryptobyte.String
	if in.ReadASN1(&inner, asn1.OCTET_STRING) && in.Empty() {
		raw = inner
	}
	pub, err := device.PublicKeyFromBytes(raw)
	if err != nil {
		return nil, errECPoint
	}
	return pub, nil
}

// wrapOctetString DER-encodes b as an OCTET STRING, the CKA_EC_POINT form.
func wrapOctetString(b []byte) []byte {
	var bld cryptobyte.Builder
	bld.AddASN1OctetString(b)
	return bld.BytesOrPanic()
}
