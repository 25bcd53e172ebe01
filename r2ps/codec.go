package r2ps

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"time"
)

// requestWire and responseWire are the JSON of §4.2; the order of the
// fields is the order of the members written.
type requestWire struct {
	Ver     string          `json:"ver"`
	Nonce   Bytes           `json:"nonce"`
	IAT     *int64          `json:"iat"`
	Type    string          `json:"type"`
	JWEHash Bytes           `json:"jwe_hash"`
	Data    json.RawMessage `json:"data"`
}

type responseWire struct {
	Ver   string          `json:"ver"`
	Nonce Bytes           `json:"nonce"`
	IAT   *int64          `json:"iat"`
	Data  json.RawMessage `json:"data"`
}

// DecodeRequest decodes the payload of a request JWS strictly (see the
// package doc) and checks §4.2 and §4.2.1: ver "1.0", a nonce of at least 16
// bytes, an integer iat, a 32-byte jwe_hash, a data object, and a type this
// profile defines under its canonical name ([ErrUnsupportedType] otherwise,
// legacy aliases included). The caller still compares jwe_hash with
// [CheckJWEHash] and checks iat and nonce freshness.
func DecodeRequest(payload []byte) (Request, error) {
	if len(payload) > MaxMessageSize {
		return Request{}, errorf(ErrTooLarge, "%d bytes", len(payload))
	}
	var w requestWire
	// The strict rules first, on every payload; then, for the layout our
	// clients write, the members are read by hand instead of by
	// encoding/json's reflection (the same values: FuzzDecodeRequestFast).
	if err := checkJSON(payload, requestWireType); err != nil {
		return Request{}, errorf(ErrMalformed, "%v", err)
	}
	if !w.readCanonical(payload) {
		w = requestWire{}
		if err := decodeStrict(payload, &w, ErrMalformed); err != nil {
			return Request{}, err
		}
	}
	if err := w.check(); err != nil {
		return Request{}, err
	}
	return Request{
		Version:  w.Ver,
		Nonce:    w.Nonce,
		IssuedAt: time.Unix(*w.IAT, 0).UTC(),
		Type:     w.Type,
		JWEHash:  w.JWEHash,
		Data:     w.Data,
	}, nil
}

var requestWireType = reflect.TypeFor[*requestWire]()

// readCanonical reads a payload that passed the strict checks if it is
// laid out as json.Marshal(requestWire) writes it: the members in order,
// no white space outside data, plain strings (printable ASCII, no escape),
// an iat of decimal digits, nonce and jwe_hash in canonical base64 and
// data an object. It reports false, having set nothing the caller keeps,
// for any other layout, which encoding/json then reads.
func (w *requestWire) readCanonical(p []byte) bool {
	var ver, nonce, typ, hash []byte
	var iat int64
	var ok bool
	rest := p
	if rest, ok = bytes.CutPrefix(rest, []byte(`{"ver":"`)); !ok {
		return false
	}
	if ver, rest, ok = plainString(rest); !ok {
		return false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"nonce":"`)); !ok {
		return false
	}
	if nonce, rest, ok = plainString(rest); !ok {
		return false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"iat":`)); !ok {
		return false
	}
	if iat, rest, ok = plainInt(rest); !ok {
		return false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"type":"`)); !ok {
		return false
	}
	if typ, rest, ok = plainString(rest); !ok {
		return false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"jwe_hash":"`)); !ok {
		return false
	}
	if hash, rest, ok = plainString(rest); !ok {
		return false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"data":`)); !ok {
		return false
	}
	// The checks passed, so what is left is one value and the closing
	// brace; without white space around it, it is data as encoding/json
	// would keep it.
	if len(rest) < 3 || rest[0] != '{' || rest[len(rest)-2] != '}' || rest[len(rest)-1] != '}' {
		return false
	}
	n, err := decodeStd(string(nonce))
	if err != nil {
		return false
	}
	h, err := decodeStd(string(hash))
	if err != nil {
		return false
	}
	*w = requestWire{Ver: string(ver), Nonce: n, IAT: &iat, Type: string(typ), JWEHash: h, Data: rest[:len(rest)-1]}
	return true
}

// plainString reads a JSON string's contents up to its closing quote (the
// opening one already read) if they are printable ASCII without a
// backslash, which JSON decodes to themselves, and returns what follows.
func plainString(b []byte) (s, rest []byte, ok bool) {
	for i, c := range b {
		switch {
		case c == '"':
			return b[:i], b[i+1:], true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, nil, false
		}
	}
	return nil, nil, false
}

// plainInt reads a JSON number that is a non-negative integer of at most
// 18 digits without a leading zero, and returns what follows.
func plainInt(b []byte) (v int64, rest []byte, ok bool) {
	i := 0
	for i < len(b) && i <= 18 && '0' <= b[i] && b[i] <= '9' {
		v = v*10 + int64(b[i]-'0')
		i++
	}
	if i == 0 || i > 18 || (i > 1 && b[0] == '0') || (i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E')) {
		return 0, nil, false
	}
	return v, b[i:], true
}

// flatMember is a member of a flat object (flatObject): its name and its
// string value without the quotes, which raw[start-1:end+1] has.
type flatMember struct {
	name, value []byte
	start, end  int
}

// flatObject reads raw if it is a JSON object of at most len(out) members
// whose names and values are plain strings (plainString), written without
// white space, as the protected headers of our clients are; it reports
// false for anything else, which the strict decoder then reads. Such an
// object passes the strict rules unless it has a duplicate or unknown
// member, which the caller refuses to the strict decoder too.
func flatObject(raw []byte, out []flatMember) (int, bool) {
	if len(raw) < 2 || raw[0] != '{' || raw[len(raw)-1] != '}' {
		return 0, false
	}
	if len(raw) == 2 {
		return 0, true
	}
	i, n := 1, 0
	for {
		if n == len(out) || i >= len(raw) || raw[i] != '"' {
			return 0, false
		}
		name, rest, ok := plainString(raw[i+1:])
		if !ok || len(rest) < 2 || rest[0] != ':' || rest[1] != '"' {
			return 0, false
		}
		i = len(raw) - len(rest) + 2
		value, rest, ok := plainString(raw[i:])
		if !ok || len(rest) == 0 {
			return 0, false
		}
		out[n] = flatMember{name: name, value: value, start: i, end: i + len(value)}
		n++
		i = len(raw) - len(rest) + 1
		switch rest[0] {
		case '}':
			if len(rest) != 1 {
				return 0, false
			}
			return n, true
		case ',':
		default:
			return 0, false
		}
	}
}

// readFlat reads sign_ecdsa data of plain string members (flatObject),
// each at most once and each one SignRequest names, with tbs_hash in
// canonical base64, without encoding/json; it reports false, having set
// nothing, for anything else, which the strict decoder then reads.
func (r *SignRequest) readFlat(data []byte) bool {
	var m [2]flatMember
	n, ok := flatObject(data, m[:])
	if !ok {
		return false
	}
	var out SignRequest
	var seen [2]bool
	for _, f := range m[:n] {
		var i int
		switch string(f.name) {
		case "kid":
			i, out.KID = 0, string(f.value)
		case "tbs_hash":
			h, err := decodeStd(string(f.value))
			if err != nil {
				return false
			}
			i, out.TBSHash = 1, h
		default:
			return false
		}
		if seen[i] {
			return false
		}
		seen[i] = true
	}
	*r = out
	return true
}

func (w *requestWire) check() error {
	if err := checkCommon(w.Ver, w.Nonce, w.IAT, w.Data); err != nil {
		return err
	}
	if len(w.JWEHash) != JWEHashSize {
		return errorf(ErrMalformed, "jwe_hash is %d bytes, want %d", len(w.JWEHash), JWEHashSize)
	}
	if w.Type == "" {
		return errorf(ErrMalformed, "type missing")
	}
	if RequiredMode(w.Type) == ModeNone {
		return errorf(ErrUnsupportedType, "%q", w.Type)
	}
	return nil
}

// checkCommon checks the members of §4.2 that both directions carry.
func checkCommon(ver string, nonce []byte, iat *int64, data json.RawMessage) error {
	switch {
	case ver != Version:
		return errorf(ErrMalformed, "ver %q, want %q", ver, Version)
	case len(nonce) < MinNonceSize:
		return errorf(ErrMalformed, "nonce is %d bytes, want at least %d", len(nonce), MinNonceSize)
	case iat == nil:
		return errorf(ErrMalformed, "iat missing")
	case *iat < 0:
		return errorf(ErrMalformed, "iat negative")
	case !isObject(data):
		return errorf(ErrMalformed, "data is not a JSON object")
	}
	return nil
}

func isObject(data json.RawMessage) bool {
	data = bytes.TrimLeft(data, " \t\r\n")
	return len(data) > 0 && data[0] == '{'
}

// EncodeRequest encodes a request payload; an empty Version means "1.0". It
// refuses what DecodeRequest would refuse.
func EncodeRequest(r Request) ([]byte, error) {
	iat := r.IssuedAt.Unix()
	w := requestWire{Ver: r.Version, Nonce: r.Nonce, IAT: &iat, Type: r.Type, JWEHash: r.JWEHash, Data: r.Data}
	if w.Ver == "" {
		w.Ver = Version
	}
	if !json.Valid(r.Data) {
		return nil, errorf(ErrMalformed, "data is not JSON")
	}
	if err := w.check(); err != nil {
		return nil, err
	}
	return json.Marshal(w)
}

// DecodeResponse decodes the payload of a response JWS strictly
// (§4.2.2.1). The caller compares the nonce with the request's.
func DecodeResponse(payload []byte) (Response, error) {
	if len(payload) > MaxMessageSize {
		return Response{}, errorf(ErrTooLarge, "%d bytes", len(payload))
	}
	var w responseWire
	// A client decodes a response after verifying the server's signature:
	// no limit on the number of values (a long key list has many).
	if err := decodeStrictN(payload, &w, ErrMalformed, 0); err != nil {
		return Response{}, err
	}
	if err := checkCommon(w.Ver, w.Nonce, w.IAT, w.Data); err != nil {
		return Response{}, err
	}
	return Response{Version: w.Ver, Nonce: w.Nonce, IssuedAt: time.Unix(*w.IAT, 0).UTC(), Data: w.Data}, nil
}

// EncodeResponse encodes a response payload; an empty Version means "1.0".
func EncodeResponse(r Response) ([]byte, error) {
	iat := r.IssuedAt.Unix()
	w := responseWire{Ver: r.Version, Nonce: r.Nonce, IAT: &iat, Data: r.Data}
	if w.Ver == "" {
		w.Ver = Version
	}
	if !json.Valid(r.Data) {
		return nil, errorf(ErrMalformed, "data is not JSON")
	}
	if err := checkCommon(w.Ver, w.Nonce, w.IAT, w.Data); err != nil {
		return nil, err
	}
	return appendResponse(nil, w.Ver, w.Nonce, iat, w.Data), nil
}

// appendResponse appends the JSON of a response payload, the bytes
// json.Marshal(responseWire) gives (members in order, Bytes as padded
// standard base64, data compacted and HTML-escaped as encoding/json does
// with a RawMessage), without reflection. data must be valid JSON.
func appendResponse(dst []byte, ver string, nonce []byte, iat int64, data json.RawMessage) []byte {
	dst = slices.Grow(dst, len(`{"ver":"","nonce":"","iat":,"data":}`)+len(ver)+
		base64.StdEncoding.EncodedLen(len(nonce))+20+len(data))
	dst = append(dst, `{"ver":`...)
	dst = strconv.AppendQuote(dst, ver) // "1.0": nothing to escape
	dst = append(dst, `,"nonce":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, nonce)
	dst = append(dst, `","iat":`...)
	dst = strconv.AppendInt(dst, iat, 10)
	dst = append(dst, `,"data":`...)
	if plainJSON(data) {
		dst = append(dst, data...)
	} else {
		var c bytes.Buffer
		_ = json.Compact(&c, data) // valid: checked by the caller
		b := bytes.NewBuffer(dst)
		json.HTMLEscape(b, c.Bytes())
		dst = b.Bytes()
	}
	return append(dst, '}')
}

// plainJSON reports whether valid JSON has nothing that encoding/json
// would change when it marshals it as a RawMessage: no whitespace to
// compact away, no <, >, & or U+2028/U+2029 (0xE2 0x80 0xA8/0xA9) to escape.
// It errs on the side of false (any 0xE2 byte).
func plainJSON(data []byte) bool {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\n', '\r', '<', '>', '&', 0xE2:
			return false
		}
	}
	return true
}

// CheckJWEHash compares the request's jwe_hash with the hash of the
// protected header it arrived under, in constant time (§4.2.1: "MUST reject
// the message on mismatch").
func CheckJWEHash(r Request, protectedHeader string) error {
	if subtle.ConstantTimeCompare(r.JWEHash, JWEHash(protectedHeader)) != 1 {
		return ErrJWEHash
	}
	return nil
}

// validator is implemented by every data type of types.go.
type validator interface{ validate() error }

// DecodeData decodes a data member into v, a pointer to one of the data
// types (TFARequest, SignRequest, …), strictly, then checks the type's member
// rules; a response type must have its success member. Errors wrap
// [ErrMalformed].
func DecodeData(data json.RawMessage, v any) error {
	if sr, ok := v.(*SignRequest); ok && len(data) <= MaxMessageSize && sr.readFlat(data) {
		// The data of every signature, in the layout of our clients.
		return sr.validate()
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return errors.New("r2ps: DecodeData needs a non-nil pointer to a struct")
	}
	if len(data) > MaxMessageSize {
		return errorf(ErrTooLarge, "%d bytes", len(data))
	}
	// Response types (those with success) are decoded by a client, after
	// it verified the server's signature: their size is their only limit.
	_, response := jsonFields(rv.Elem().Type())["success"]
	limit := maxJSONValues
	if response {
		limit = 0
	}
	if err := decodeStrictN(data, v, ErrMalformed, limit); err != nil {
		return err
	}
	if response {
		var probe struct {
			Success *bool `json:"success"`
		}
		if json.Unmarshal(data, &probe) != nil || probe.Success == nil {
			return errorf(ErrMalformed, "success missing")
		}
	}
	if val, ok := v.(validator); ok {
		return val.validate()
	}
	return nil
}

// EncodeData checks v's member rules and encodes it as a data member. v is
// one of the data types, or a json.RawMessage holding a JSON object (data
// this package does not model, such as the attestation types).
func EncodeData(v any) (json.RawMessage, error) {
	if raw, ok := v.(json.RawMessage); ok {
		if err := checkJSON(raw, nil); err != nil || !isObject(raw) {
			return nil, errorf(ErrMalformed, "data is not one JSON object")
		}
		return raw, nil
	}
	if val, ok := v.(validator); ok {
		if err := val.validate(); err != nil {
			return nil, err
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, errorf(ErrMalformed, "%v", err)
	}
	if !isObject(b) {
		return nil, errorf(ErrMalformed, "data is not a JSON object")
	}
	return b, nil
}
