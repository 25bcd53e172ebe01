package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"
)

// maxJSONDepth bounds the nesting of an admin request body.
const maxJSONDepth = 8

// errStrictJSON marks a body that breaks the strict rules of decodeStrict.
var errStrictJSON = errors.New("strict JSON")

// decodeStrict decodes data, one JSON object, into the struct v points to.
// On top of encoding/json it refuses what that package lets through:
// invalid UTF-8, a member repeated in any object (encoding/json keeps the
// last), a member whose name matches a field only case-insensitively
// (encoding/json folds case), and anything after the value. Members the
// struct lacks are refused too.
func decodeStrict(data []byte, v any) error {
	if !utf8.Valid(data) {
		return fmt.Errorf("%w: invalid UTF-8", errStrictJSON)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := checkObject(dec, fieldNames(reflect.TypeOf(v)), 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON value", errStrictJSON)
	}
	strict := json.NewDecoder(bytes.NewReader(data))
	strict.DisallowUnknownFields()
	if err := strict.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", errStrictJSON, err)
	}
	return nil
}

// checkObject reads one value that must be an object whose member names
// are in names (nil: any name), and checks nested values for duplicates.
func checkObject(dec *json.Decoder, names map[string]bool, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %v", errStrictJSON, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("%w: want a JSON object", errStrictJSON)
	}
	return checkMembers(dec, names, depth)
}

func checkMembers(dec *json.Decoder, names map[string]bool, depth int) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: %v", errStrictJSON, err)
		}
		key := tok.(string) // a json.Decoder yields only string keys in objects
		if seen[key] {
			return fmt.Errorf("%w: duplicate member %q", errStrictJSON, key)
		}
		seen[key] = true
		if names != nil && !names[key] {
			return fmt.Errorf("%w: unknown member %q", errStrictJSON, key)
		}
		if err := checkValue(dec, depth+1); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	if err != nil {
		return fmt.Errorf("%w: %v", errStrictJSON, err)
	}
	return nil
}

// checkValue reads any value, refusing duplicate members in nested objects.
func checkValue(dec *json.Decoder, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("%w: nested too deeply", errStrictJSON)
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %v", errStrictJSON, err)
	}
	switch tok {
	case json.Delim('{'):
		return checkMembers(dec, nil, depth)
	case json.Delim('['):
		for dec.More() {
			if err := checkValue(dec, depth+1); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return fmt.Errorf("%w: %v", errStrictJSON, err)
		}
	}
	return nil
}

// fieldNames returns the JSON member names of the struct t points to.
func fieldNames(t reflect.Type) map[string]bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	names := map[string]bool{}
	if t.Kind() != reflect.Struct {
		return nil
	}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		names[name] = true
	}
	return names
}
