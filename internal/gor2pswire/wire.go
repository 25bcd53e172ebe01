// Package gor2pswire is a test wallet that speaks the wire of
// go-r2ps-service's Go client (github.com/sirosfoundation/go-r2ps-service,
// pkg/client, at 45a5174), written from a reading of that client and a
// recorded transcript of it (testdata/go-r2ps-service), not copied from it.
// It exists so that wscad's compat profile (docs/protocol.md §8) can be
// driven end to end by exactly what deployed SIROS Go clients send.
//
// What it sends, as pkg/client does:
//
//   - a bare compact JWS per request, header {"alg":"ES256","typ":
//     "r2ps-request+jwt"} with no kid and no jwk, signed with the CSK;
//   - the payload {ver, nonce, iat, data, client_id, context, type,
//     2fa_session_id?}, the nonce 16 random bytes in padded base64url;
//   - OPAQUE rounds as data {protocol, state, p_data} with p_data in padded
//     base64url, under the type names 2fa_registration and 2fa_authenticate,
//     with no authorization and no key other than the signature;
//   - after Authenticate, every call carrying 2fa_session_id and nothing
//     else proving the session: the session key is kept but unused.
//
// What it reads, as pkg/client does: a compact JWS verified with the
// server signing key given to New (any kid, any typ), whose payload's data
// holds the legacy names response and 2fa_session_id.
//
// Options add what pkg/client does not do, so that both server policies
// can be tested: WithJWE wraps every session request in go-r2ps-service's
// specified A256KW 2FA JWE and expects the response in one; WithKID sends a
// kid (as the SIROS Rust client does, kid = client_id); WithRegistrationJWK
// embeds the CSK in the registration requests' header; RegisterAuthorized
// sends an activation code. The wallet also checks more than pkg/client on
// responses (nonce echo, ver) and reports a failure body as a *ServerError.
//
// It imports no server package: only r2ps, go-jose, bytemare/opaque and
// the standard library.
package gor2pswire

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Wire names, as go-r2ps-service's pkg/r2ps spells them.
const (
	version              = "1.0"
	typRequest           = "r2ps-request+jwt"
	type2FARegistration  = "2fa_registration"
	type2FAAuthenticate  = "2fa_authenticate" // the name pkg/client sends, not create_session
	type2FAChange        = "2fa_change"       // the name of upstream's vectors, not 2fa_update
	typeP256Generate     = "p256_generate"
	typeListKeys         = "hsm_list_keys"
	typeSignECDSA        = "sign_ecdsa"
	typeAgreeECDH        = "agree_ecdh"
	protocolOPAQUE       = "opaque"
	stateEvaluate        = "evaluate"
	stateFinalize        = "finalize"
	authorizationTypeOTP = "otp"
	curveP256            = "P-256"
	nonceSize            = 16
	maxBody              = 1 << 20
)

// request is the JWS payload, members in pkg/client's order (Go encodes
// struct fields in declaration order). jwe_hash is never sent.
type request struct {
	Ver          string          `json:"ver"`
	Nonce        string          `json:"nonce"`
	IAT          int64           `json:"iat"`
	Data         json.RawMessage `json:"data"`
	ClientID     string          `json:"client_id"`
	Context      string          `json:"context"`
	Type         string          `json:"type"`
	TFASessionID string          `json:"2fa_session_id,omitempty"`
}

// tfaData is the data of an OPAQUE round: protocol is always present, the
// rest only when set (pkg/client never sets authorization).
type tfaData struct {
	Protocol          string `json:"protocol"`
	State             string `json:"state,omitempty"`
	PData             string `json:"p_data,omitempty"`
	Authorization     string `json:"authorization,omitempty"`
	AuthorizationType string `json:"authorization_type,omitempty"`
}

// response is the payload of a response JWS.
type response struct {
	Ver     string          `json:"ver"`
	Nonce   string          `json:"nonce"`
	IAT     int64           `json:"iat"`
	Data    json.RawMessage `json:"data"`
	Success *bool           `json:"success"`
}

// tfaResult is the data of an OPAQUE round's response; pkg/client reads
// only response and 2fa_session_id.
type tfaResult struct {
	Response              string `json:"response"`
	TFASessionID          string `json:"2fa_session_id"`
	SessionExpirationTime int64  `json:"session_expiration_time"`
}

type signData struct {
	KID     string `json:"kid"`
	TBSHash string `json:"tbs_hash"`
}

type ecdhData struct {
	KID       string `json:"kid"`
	PublicKey string `json:"public_key"`
}

type generateData struct {
	Curve string `json:"curve"`
}

type listKeysData struct {
	Curve []string `json:"curve"`
}

// generateResult is upstream's {"created_key"}, plus the kid and key wscad
// adds.
type generateResult struct {
	CreatedKey string `json:"created_key"`
	KID        string `json:"kid"`
	PublicKey  string `json:"public_key"`
}

type keyInfoWire struct {
	KID          string `json:"kid"`
	CurveName    string `json:"curve_name"`
	CreationTime int64  `json:"creation_time"`
	PublicKey    string `json:"public_key"`
}

type listKeysResult struct {
	KeyInfo []keyInfoWire `json:"key_info"`
}

// encode is pkg/client's one binary encoding: base64url with padding.
func encode(b []byte) string { return base64.URLEncoding.EncodeToString(b) }

// decode is how pkg/client reads binary members: padded base64url, with
// Go's default (non-strict) decoder.
func decode(s string) ([]byte, error) { return base64.URLEncoding.DecodeString(s) }

// decodeBinaryString decodes a data member that is a JSON string of padded
// base64url (signatures and ECDH secrets).
func decodeBinaryString(data json.RawMessage) ([]byte, error) {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("gor2pswire: data is not a JSON string: %w", err)
	}
	b, err := decode(s)
	if err != nil {
		return nil, fmt.Errorf("gor2pswire: data: %w", err)
	}
	return b, nil
}

// parsePublicKey reads a public_key of a key list or keygen answer in the
// two forms in use: SPKI DER in standard base64 (upstream's vectors,
// wscad) or a SEC 1 point in padded base64url (upstream's server, which
// sends the compressed point).
func parsePublicKey(s string) (*ecdsa.PublicKey, error) {
	var b []byte
	var err error
	if strings.ContainsAny(s, "+/") {
		b, err = base64.StdEncoding.DecodeString(s)
	} else if b, err = decode(s); err != nil {
		b, err = base64.StdEncoding.DecodeString(s)
	}
	if err != nil || len(b) == 0 {
		return nil, errors.New("gor2pswire: public_key: not base64")
	}
	if b[0] == 0x30 {
		k, err := x509.ParsePKIXPublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("gor2pswire: public_key: %w", err)
		}
		pub, ok := k.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			return nil, errors.New("gor2pswire: public_key: not a P-256 key")
		}
		return pub, nil
	}
	if len(b) == 33 {
		if b, err = decompress(b); err != nil {
			return nil, err
		}
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b)
	if err != nil {
		return nil, fmt.Errorf("gor2pswire: public_key: %w", err)
	}
	return pub, nil
}

// decompress turns a compressed SEC 1 P-256 point (SEC 1 v2.0 §2.3.4) into
// the uncompressed form: y = sqrt(x³ - 3x + b) mod p with the parity the
// prefix names. ecdsa.ParseUncompressedPublicKey then checks the result.
func decompress(b []byte) ([]byte, error) {
	params := elliptic.P256().Params()
	x := new(big.Int).SetBytes(b[1:])
	if b[0] != 2 && b[0] != 3 {
		return nil, errors.New("gor2pswire: public_key: invalid compressed point")
	}
	y := new(big.Int).Exp(x, big.NewInt(3), params.P)
	y.Sub(y, new(big.Int).Lsh(x, 1))
	y.Sub(y, x)
	y.Add(y, params.B)
	y.Mod(y, params.P)
	if y.ModSqrt(y, params.P) == nil {
		return nil, errors.New("gor2pswire: public_key: invalid compressed point")
	}
	if y.Bit(0) != uint(b[0]&1) {
		y.Sub(params.P, y)
	}
	out := make([]byte, 65)
	out[0] = 4
	x.FillBytes(out[1:33])
	y.FillBytes(out[33:])
	return out, nil
}
