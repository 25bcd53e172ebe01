package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"
	"unicode/utf8"
)

// refCheck is the token-based checker the byte walker replaced, kept as
// the reference the walker is fuzzed against: both must accept and refuse
// the same documents for the same type.
func refCheck(data []byte, t reflect.Type) error {
	if !utf8.Valid(data) {
		return errors.New("invalid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := refValue(dec, t, 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

func refValue(dec *json.Decoder, t reflect.Type, depth int) error {
	if depth > MaxDepth {
		return errors.New("too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	t = Shape(t)
	if delim == '[' {
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for dec.More() {
			if err := refValue(dec, elem, depth+1); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		return err
	}
	fields := Fields(t)
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key := tok.(string)
		if seen[key] {
			return errors.New("duplicate")
		}
		seen[key] = true
		var ft reflect.Type
		if fields != nil {
			if ft, ok = fields[key]; !ok {
				return errors.New("unknown")
			}
		} else if t != nil && t.Kind() == reflect.Map {
			ft = t.Elem()
		}
		if err := refValue(dec, ft, depth+1); err != nil {
			return err
		}
	}
	_, err = dec.Token()
	return err
}

// FuzzStrictJSONReference: the byte walker agrees with the token-based
// reference on every document, for a request payload, a request's data and
// no type at all.
func FuzzStrictJSONReference(f *testing.F) {
	for _, s := range []string{
		`{"ver":"1.0","nonce":"AAAA","iat":1,"type":"x","jwe_hash":"AA==","data":{}}`,
		`{"ver":"1.0","ver":"1.0"}`, `{"v\u0065r":"1.0","ver":"2"}`, `{"VER":"1"}`,
		`{"protocol":"opaque","p_data":"AA==","cak":{"kty":"EC","kty":"EC"}}`,
		`{"ver":"1","data":{"protocol":"x"},"extra":{"a":{"p_data":"AA=="},"a":{}},"list":[{"cak":1},{"protocol":"y","Protocol":"z"}]}`,
		`[1,{"a":1,"a":2}]`, `{"a":{"b":{"c":[{"d":null}]}}}`, ` {"ver" : "1.0" } `,
	} {
		f.Add([]byte(s))
	}
	type data struct {
		Protocol string          `json:"protocol"`
		PData    []byte          `json:"p_data"`
		CAK      json.RawMessage `json:"cak"`
	}
	type request struct {
		Ver   string          `json:"ver"`
		Nonce []byte          `json:"nonce"`
		IAT   *int64          `json:"iat"`
		Data  *data           `json:"data"`
		Extra map[string]data `json:"extra"`
		List  []data          `json:"list"`
	}
	types := []reflect.Type{reflect.TypeFor[request](), reflect.TypeFor[data](), nil}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, ty := range types {
			got := Check(data, ty, 0)
			want := refCheck(data, ty)
			if (got == nil) != (want == nil) {
				t.Fatalf("type %v: walker %v, reference %v, on %q", ty, got, want, data)
			}
		}
	})
}
