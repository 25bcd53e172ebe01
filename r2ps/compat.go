package r2ps

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"time"
)

// The compat profile (docs/protocol.md §8): the bare JWS payload of
// go-r2ps-service clients (reference: siros-r2ps.md §2.2–2.5, §2.12). It
// loosens encodings, not structure: the payload is still one JSON value with
// no duplicate, unknown or case-folded member, and the checks of the strict
// types still run when the dispatcher calls DecodeData.

// CompatMeta is what a compat request carries in its payload that the
// strict profile carries in the JWE.
type CompatMeta struct {
	ClientID  string // client_id: the wallet unit
	Context   string // context
	SessionID string // 2fa_session_id, "" when absent
	// Nonce is the nonce exactly as sent: EncodeCompatResponse echoes it
	// verbatim, as go-r2ps-service does, whatever its base64 flavour.
	Nonce string
}

// compatRequest is go-r2ps-service's ServiceRequest (pkg/r2ps/types.go).
type compatRequest struct {
	Ver       string          `json:"ver"`
	Nonce     *string         `json:"nonce"`
	IAT       *int64          `json:"iat"`
	Data      json.RawMessage `json:"data"`
	ClientID  string          `json:"client_id"`
	Context   string          `json:"context"`
	Type      string          `json:"type"`
	SessionID string          `json:"2fa_session_id"`
	// JWEHash is accepted and ignored: go-r2ps-service never checks it,
	// and without a JWE there is no header to bind.
	JWEHash *string `json:"jwe_hash"`
}

// compatTFA is go-r2ps-service's TFARequestData: both member-name sets.
type compatTFA struct {
	Protocol          string  `json:"protocol"`
	TFAMode           string  `json:"2fa_mode"`
	State             string  `json:"state"`
	PData             *string `json:"p_data"`
	Request           *string `json:"request"`
	Authorization     *string `json:"authorization"`
	AuthorizationType string  `json:"authorization_type"`
	Task              string  `json:"task"`
	SessionDuration   int64   `json:"session_duration"`
}

type compatSign struct {
	KID     string `json:"kid"`
	TBSHash string `json:"tbs_hash"`
}

type compatECDH struct {
	KID       string `json:"kid"`
	PublicKey string `json:"public_key"`
}

// DecodeCompat decodes the payload of a compat request JWS. It accepts every
// base64 flavour for binary values, the legacy names (protocol/2fa_mode,
// p_data/request, and the type aliases), and client_id, context and
// 2fa_session_id in the payload, and returns a Request in the strict types:
// canonical type, data re-encoded with the strict member names and standard
// base64, and JWEHash nil. For a create_session finalize, 2fa_session_id
// becomes the data's session_id, where the strict profile carries it. The
// nonce must still decode to at least 16 bytes.
func DecodeCompat(payload []byte) (Request, CompatMeta, error) {
	if len(payload) > MaxMessageSize {
		return Request{}, CompatMeta{}, errorf(ErrTooLarge, "%d bytes", len(payload))
	}
	var w compatRequest
	if err := decodeStrict(payload, &w, ErrMalformed); err != nil {
		return Request{}, CompatMeta{}, err
	}
	if w.Nonce == nil {
		return Request{}, CompatMeta{}, errorf(ErrMalformed, "nonce missing")
	}
	nonce, err := decodeLenient(*w.Nonce)
	if err != nil {
		return Request{}, CompatMeta{}, errorf(ErrMalformed, "nonce: %v", err)
	}
	if err := checkCommon(w.Ver, nonce, w.IAT, w.Data); err != nil {
		return Request{}, CompatMeta{}, err
	}
	if err := checkName(ErrMalformed, "client_id", w.ClientID); err != nil {
		return Request{}, CompatMeta{}, err
	}
	if err := checkName(ErrMalformed, "context", w.Context); err != nil {
		return Request{}, CompatMeta{}, err
	}
	if w.SessionID != "" {
		if err := checkName(ErrMalformed, "2fa_session_id", w.SessionID); err != nil {
			return Request{}, CompatMeta{}, err
		}
	}
	if w.Type == "" {
		return Request{}, CompatMeta{}, errorf(ErrMalformed, "type missing")
	}
	typ, ok := canonicalType(w.Type)
	if !ok || !compatServed(typ) {
		return Request{}, CompatMeta{}, errorf(ErrUnsupportedType, "%q", w.Type)
	}
	data, err := normaliseCompat(typ, w.Data, w.SessionID)
	if err != nil {
		return Request{}, CompatMeta{}, err
	}
	req := Request{Version: w.Ver, Nonce: nonce, IssuedAt: time.Unix(*w.IAT, 0).UTC(), Type: typ, Data: data}
	meta := CompatMeta{ClientID: w.ClientID, Context: w.Context, SessionID: w.SessionID, Nonce: *w.Nonce}
	return req, meta, nil
}

// compatServed reports whether the compat profile serves a canonical type:
// go-r2ps-service's types, whose answers EncodeCompatResponse has a shape
// for. Every other type (the WSCA types of §6a, the I-D's attestations,
// SECDSA) is the strict profile's: refused before the request is
// authenticated, so it never runs without an answer the client can read.
func compatServed(typ string) bool {
	switch typ {
	case TypeCreateSession, Type2FARegistration, Type2FAUpdate, TypeP256Generate, TypeSignECDSA,
		TypeAgreeECDH, TypeListKeys, TypeDeleteKey, TypeWKA, TypeWIA:
		return true
	}
	return false
}

// normaliseCompat rewrites compat data in the strict member names and
// encodings. It converts; DecodeData validates.
func normaliseCompat(typ string, data json.RawMessage, sessionID string) (json.RawMessage, error) {
	var out any
	switch typ {
	case TypeCreateSession, Type2FARegistration, Type2FAUpdate:
		t, err := normaliseTFA(data)
		if err != nil {
			return nil, err
		}
		if typ == TypeCreateSession && t.State == StateFinalize {
			t.SessionID = sessionID
		}
		out = t
	case TypeSignECDSA:
		var c compatSign
		if err := decodeStrict(data, &c, ErrMalformed); err != nil {
			return nil, err
		}
		hash, err := lenientMember("tbs_hash", &c.TBSHash)
		if err != nil {
			return nil, err
		}
		out = SignRequest{KID: c.KID, TBSHash: hash}
	case TypeAgreeECDH:
		var c compatECDH
		if err := decodeStrict(data, &c, ErrMalformed); err != nil {
			return nil, err
		}
		point, err := compatPoint(c.PublicKey)
		if err != nil {
			return nil, err
		}
		out = ECDHRequest{KID: c.KID, PublicKey: point}
	case TypeP256Generate: // the same members in both profiles
		return reencode(data, new(GenerateRequest))
	case TypeListKeys:
		return reencode(data, new(ListKeysRequest))
	case TypeDeleteKey:
		return reencode(data, new(DeleteKeyRequest))
	default: // eudiw_wka_etsi, eudiw_wia_etsi: no binary members to normalise
		if err := checkJSON(data, nil); err != nil {
			return nil, errorf(ErrMalformed, "%v", err)
		}
		return data, nil
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, errorf(ErrMalformed, "%v", err)
	}
	return b, nil
}

// reencode decodes data into v strictly and encodes it again.
func reencode(data json.RawMessage, v any) (json.RawMessage, error) {
	if err := decodeStrict(data, v, ErrMalformed); err != nil {
		return nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, errorf(ErrMalformed, "%v", err)
	}
	return b, nil
}

func normaliseTFA(data json.RawMessage) (TFARequest, error) {
	var c compatTFA
	if err := decodeStrict(data, &c, ErrMalformed); err != nil {
		return TFARequest{}, err
	}
	protocol := c.Protocol
	if c.TFAMode != "" {
		if protocol != "" && protocol != c.TFAMode {
			return TFARequest{}, errorf(ErrMalformed, "protocol %q and 2fa_mode %q disagree", protocol, c.TFAMode)
		}
		protocol = c.TFAMode
	}
	pdata, err := lenientMember("p_data", c.PData)
	if err != nil {
		return TFARequest{}, err
	}
	legacy, err := lenientMember("request", c.Request)
	if err != nil {
		return TFARequest{}, err
	}
	switch {
	case c.PData == nil:
		pdata = legacy
	case c.Request != nil && !bytes.Equal(pdata, legacy):
		return TFARequest{}, errorf(ErrMalformed, "p_data and request disagree")
	}
	auth, err := lenientMember("authorization", c.Authorization)
	if err != nil {
		return TFARequest{}, err
	}
	return TFARequest{
		Protocol: protocol, State: c.State, PData: pdata,
		Authorization: auth, AuthorizationType: c.AuthorizationType,
		Task: c.Task, SessionDuration: c.SessionDuration,
	}, nil
}

// lenientMember decodes an optional base64 member of any flavour.
func lenientMember(name string, s *string) ([]byte, error) {
	if s == nil {
		return nil, nil
	}
	b, err := decodeLenient(*s)
	if err != nil {
		return nil, errorf(ErrMalformed, "%s: %v", name, err)
	}
	return b, nil
}

// compatPoint decodes an agree_ecdh peer key: a SEC 1 point, or the SPKI DER
// that the go-r2ps-service vectors and the SIROS client use
// (siros-r2ps.md §2.12), which becomes the uncompressed point.
func compatPoint(s string) ([]byte, error) {
	b, err := lenientMember("public_key", &s)
	if err != nil || len(b) == 0 || b[0] != 0x30 { // 0x30: an ASN.1 SEQUENCE, not a SEC 1 point
		return b, err
	}
	k, err := x509.ParsePKIXPublicKey(b)
	if err != nil {
		return nil, errorf(ErrMalformed, "public_key: invalid SPKI")
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errorf(ErrMalformed, "public_key: SPKI is not a P-256 key")
	}
	point, err := pub.Bytes()
	if err != nil {
		return nil, errorf(ErrMalformed, "public_key: %v", err)
	}
	return point, nil
}
