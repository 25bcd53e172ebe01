package r2ps

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
	if depth > maxJSONDepth {
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
	t = shape(t)
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
	fields := jsonFields(t)
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
		`{"protocol":"opaque","state":"evaluate","p_data":"AA==","cak":{"kty":"EC","kty":"EC"}}`,
		`[1,{"a":1,"a":2}]`, `{"a":{"b":{"c":[{"d":null}]}}}`, ` {"ver" : "1.0" } `,
	} {
		f.Add([]byte(s))
	}
	types := []reflect.Type{reflect.TypeFor[requestWire](), reflect.TypeFor[TFARequest](), nil}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, ty := range types {
			got := checkJSONN(data, ty, 0)
			want := refCheck(data, ty)
			if (got == nil) != (want == nil) {
				t.Fatalf("type %v: walker %v, reference %v, on %q", ty, got, want, data)
			}
		}
	})
}
