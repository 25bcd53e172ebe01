package manager_test

import (
	"crypto/elliptic"
	"encoding/base64"
)

func ecdsaCurve() elliptic.Curve { return elliptic.P256() }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
