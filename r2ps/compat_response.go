package r2ps

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// compatResponse is go-r2ps-service's ServiceResponse: success is always
// true, since its failures travel outside the JWS (CompatError).
type compatResponse struct {
	Ver     string          `json:"ver"`
	Nonce   string          `json:"nonce"`
	IAT     int64           `json:"iat"`
	Data    json.RawMessage `json:"data"`
	Success bool            `json:"success"`
}

// compatTFAResponse is go-r2ps-service's TFAAuthResponseData, which emits
// both names of the session id and of the protocol data.
type compatTFAResponse struct {
	SessionID             string `json:"session_id,omitempty"`
	TFASessionID          string `json:"2fa_session_id,omitempty"`
	PData                 string `json:"p_data,omitempty"`
	Response              string `json:"response,omitempty"`
	Message               string `json:"message,omitempty"`
	SessionExpirationTime int64  `json:"session_expiration_time,omitempty"`
	Task                  string `json:"task,omitempty"`
}

// compatGenerate extends go-r2ps-service's {"created_key"} with the kid and
// key it lacks (siros-r2ps.md §2.4); extra members are compatible.
type compatGenerate struct {
	CreatedKey string `json:"created_key"`
	KID        string `json:"kid"`
	PublicKey  string `json:"public_key"`
}

type compatKeyInfo struct {
	KID          string `json:"kid"`
	CurveName    string `json:"curve_name"`
	CreationTime int64  `json:"creation_time"`
	PublicKey    string `json:"public_key"`
}

type compatListKeys struct {
	KeyInfo []compatKeyInfo `json:"key_info"`
}

// EncodeCompatResponse encodes the payload of a compat response JWS (sign it
// with SignJWS and TypResponse): {ver, nonce, iat, data, success: true},
// the nonce echoed as the request sent it (meta.Nonce), and data in the
// shape go-r2ps-service clients parse:
//
//   - TFAResponse: p_data and response both set to the protocol data, and
//     session_id and 2fa_session_id both set when there is a session; a
//     finalize without protocol data says message "authenticated" (with a
//     session) or "success" (without);
//   - SignResponse, ECDHResponse: a JSON string, the bytes in base64url with
//     padding;
//   - GenerateResponse: {created_key, kid, public_key};
//   - ListKeysResponse: {key_info: [{kid, curve_name, creation_time,
//     public_key}]};
//   - public keys as SPKI DER in standard base64, the form of the
//     go-r2ps-service vectors and the SIROS client;
//   - DeleteKeyResponse and json.RawMessage (attestations): as they are.
//
// Failures are not responses in this profile: answer them with CompatError.
func EncodeCompatResponse(meta CompatMeta, iat time.Time, data any) ([]byte, error) {
	if meta.Nonce == "" {
		return nil, errors.New("r2ps: compat response without the request's nonce")
	}
	d, err := compatData(data)
	if err != nil {
		return nil, err
	}
	return json.Marshal(compatResponse{Ver: Version, Nonce: meta.Nonce, IAT: iat.Unix(), Data: d, Success: true})
}

func compatData(data any) (json.RawMessage, error) {
	if _, ok := data.(Failure); ok || isFailedTFA(data) {
		return nil, errors.New("r2ps: a compat failure is a CompatError body, not a response")
	}
	if v, ok := data.(validator); ok {
		if err := v.validate(); err != nil {
			return nil, err
		}
	}
	var out any
	switch d := data.(type) {
	case TFAResponse:
		c := compatTFAResponse{SessionID: d.SessionID, TFASessionID: d.SessionID, SessionExpirationTime: d.SessionExpirationTime, Task: d.Task}
		switch {
		case len(d.PData) > 0:
			c.PData = encodeCompat(d.PData)
			c.Response = c.PData
		case d.SessionID != "":
			c.Message = "authenticated"
		default:
			c.Message = "success"
		}
		out = c
	case SignResponse:
		out = encodeCompat(d.Signature)
	case ECDHResponse:
		out = encodeCompat(d.SharedSecret)
	case GenerateResponse:
		spki, err := compatSPKI(d.PublicKey)
		if err != nil {
			return nil, err
		}
		out = compatGenerate{CreatedKey: CurveP256, KID: d.KID, PublicKey: spki}
	case ListKeysResponse:
		l := compatListKeys{KeyInfo: make([]compatKeyInfo, 0, len(d.KeyInfo))}
		for _, k := range d.KeyInfo {
			spki, err := compatSPKI(k.PublicKey)
			if err != nil {
				return nil, err
			}
			l.KeyInfo = append(l.KeyInfo, compatKeyInfo{KID: k.KID, CurveName: k.CurveName, CreationTime: k.CreationTime, PublicKey: spki})
		}
		out = l
	case DeleteKeyResponse:
		out = d
	case WKAResponse:
		// go-r2ps-service answers {"wka": "<JWT>"} and {"wia": "<JWT>"}.
		out = map[string]string{"wka": d.WKA}
	case WIAResponse:
		out = map[string]string{"wia": d.WIA}
	case json.RawMessage:
		return EncodeData(d)
	default:
		return nil, fmt.Errorf("r2ps: no compat shape for %T", data)
	}
	return json.Marshal(out)
}

func isFailedTFA(data any) bool {
	t, ok := data.(TFAResponse)
	return ok && !t.Success
}

func compatSPKI(k *jose.JSONWebKey) (string, error) {
	pub, err := p256Public(k)
	if err != nil {
		return "", errorf(ErrMalformed, "public_key: %v", err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("r2ps: %w", err)
	}
	return base64.StdEncoding.EncodeToString(der), nil
}

// CompatError is the body of a compat failure, {"error_code", "error_message"},
// sent with the HTTPStatus of code (siros-r2ps.md §2.2). A code that is not a
// Table 1 code becomes SERVER_ERROR. msg must be generic: it reaches the
// client.
func CompatError(code, msg string) []byte {
	if !IsCode(code) {
		code = CodeServerError
	}
	b, err := json.Marshal(struct {
		ErrorCode    string `json:"error_code"`
		ErrorMessage string `json:"error_message"`
	}{code, msg})
	if err != nil {
		panic("r2ps: internal error: " + err.Error())
	}
	return b
}
