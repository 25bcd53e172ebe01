package r2ps

import (
	"crypto/ecdh"

	"filippo.io/nistec"
)

// Member rules of the data types, checked by DecodeData and EncodeData.
// Errors wrap ErrMalformed.

// maxKeyID bounds the kid of a WSCD key (go-r2ps-service: [A-Za-z0-9_-]{1,128}).
const maxKeyID = 128

// checkKeyID applies the go-r2ps-service kid rule. Ours are 32 hex digits
// (device.ParseKID checks that); this layer only keeps the kid printable.
func checkKeyID(kid string) error {
	if kid == "" || len(kid) > maxKeyID {
		return errorf(ErrMalformed, "kid: want 1 to %d characters", maxKeyID)
	}
	for i := 0; i < len(kid); i++ {
		c := kid[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return errorf(ErrMalformed, "kid: character %q not in [A-Za-z0-9_-]", c)
		}
	}
	return nil
}

func needSuccess(ok bool) error {
	if !ok {
		return errorf(ErrMalformed, "success must be true (failures are Failure)")
	}
	return nil
}

func (r TFARequest) validate() error {
	switch {
	case r.Protocol == "":
		return errorf(ErrMalformed, "protocol missing")
	case r.State == "":
		return errorf(ErrMalformed, "state missing")
	case len(r.PData) == 0:
		return errorf(ErrMalformed, "p_data missing")
	case r.SessionDuration < 0:
		return errorf(ErrMalformed, "session_duration negative")
	case r.AuthorizationType != "" && len(r.Authorization) == 0:
		return errorf(ErrMalformed, "authorization_type without authorization")
	}
	if r.SessionID != "" {
		if err := checkName(ErrMalformed, "session_id", r.SessionID); err != nil {
			return err
		}
	}
	if r.CAK != nil {
		if _, err := p256Public(r.CAK); err != nil {
			return errorf(ErrMalformed, "cak: %v", err)
		}
	}
	return nil
}

func (r TFAResponse) validate() error {
	if r.Success {
		if r.Error != "" {
			return errorf(ErrMalformed, "error in a successful response")
		}
		return nil
	}
	if r.Error != "" && !IsCode(r.Error) {
		return errorf(ErrMalformed, "error %q is no Table 1 code", r.Error)
	}
	if r.PData != nil || r.SessionID != "" || r.Task != "" || r.SessionExpirationTime != 0 {
		return errorf(ErrMalformed, "a failed response holds only success and error")
	}
	return nil
}

func (r Failure) validate() error {
	if r.Success || !IsCode(r.Error) {
		return errorf(ErrMalformed, "failure needs success false and a Table 1 code")
	}
	return nil
}

func (r GenerateRequest) validate() error {
	if r.Curve != CurveP256 {
		return errorf(ErrMalformed, "curve %q, want %s", r.Curve, CurveP256)
	}
	return nil
}

func (r GenerateResponse) validate() error {
	if err := needSuccess(r.Success); err != nil {
		return err
	}
	if err := checkKeyID(r.KID); err != nil {
		return err
	}
	if _, err := p256Public(r.PublicKey); err != nil {
		return errorf(ErrMalformed, "public_key: %v", err)
	}
	return nil
}

func (r SignRequest) validate() error {
	if err := checkKeyID(r.KID); err != nil {
		return err
	}
	if len(r.TBSHash) != TBSHashSize {
		return errorf(ErrMalformed, "tbs_hash is %d bytes, want %d", len(r.TBSHash), TBSHashSize)
	}
	return nil
}

func (r SignResponse) validate() error {
	if err := needSuccess(r.Success); err != nil {
		return err
	}
	// A DER P-256 signature: SEQUENCE of two INTEGERs of at most 33 bytes.
	if len(r.Signature) < 8 || len(r.Signature) > 72 || r.Signature[0] != 0x30 {
		return errorf(ErrMalformed, "signature is not a DER ECDSA P-256 signature")
	}
	return nil
}

// Point validates and returns the peer key: a SEC 1 §2.3.4 P-256 point,
// compressed (33 bytes) or not (65), on the curve.
func (r ECDHRequest) Point() (*ecdh.PublicKey, error) {
	if len(r.PublicKey) != 33 && len(r.PublicKey) != 65 {
		return nil, errorf(ErrMalformed, "public_key is %d bytes, want a 33 or 65-byte SEC 1 point", len(r.PublicKey))
	}
	p, err := nistec.NewP256Point().SetBytes(r.PublicKey)
	if err != nil {
		return nil, errorf(ErrMalformed, "public_key is not a P-256 point")
	}
	pub, err := ecdh.P256().NewPublicKey(p.Bytes())
	if err != nil {
		return nil, errorf(ErrMalformed, "public_key is not a P-256 point")
	}
	return pub, nil
}

func (r ECDHRequest) validate() error {
	if err := checkKeyID(r.KID); err != nil {
		return err
	}
	_, err := r.Point()
	return err
}

func (r ECDHResponse) validate() error {
	if err := needSuccess(r.Success); err != nil {
		return err
	}
	if len(r.SharedSecret) != 32 {
		return errorf(ErrMalformed, "shared_secret is %d bytes, want 32", len(r.SharedSecret))
	}
	return nil
}

func (r ListKeysRequest) validate() error {
	for _, c := range r.Curve {
		if c == "" {
			return errorf(ErrMalformed, "empty curve name")
		}
	}
	if r.Limit < 0 || r.Limit > MaxListLimit {
		return errorf(ErrMalformed, "limit %d not in 0..%d", r.Limit, MaxListLimit)
	}
	if r.After != "" {
		return checkKeyID(r.After)
	}
	return nil
}

func (r ListKeysResponse) validate() error {
	if err := needSuccess(r.Success); err != nil {
		return err
	}
	if r.Next != "" {
		if err := checkKeyID(r.Next); err != nil {
			return err
		}
	}
	for _, k := range r.KeyInfo {
		if err := checkKeyID(k.KID); err != nil {
			return err
		}
		if k.CurveName == "" || k.CreationTime < 0 {
			return errorf(ErrMalformed, "key_info: curve_name missing or creation_time negative")
		}
		if _, err := p256Public(k.PublicKey); err != nil {
			return errorf(ErrMalformed, "key_info public_key: %v", err)
		}
	}
	return nil
}

func (r DeleteKeyRequest) validate() error { return checkKeyID(r.KID) }

func (r DeleteKeyResponse) validate() error { return needSuccess(r.Success) }
