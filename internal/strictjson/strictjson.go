// Package strictjson decodes JSON under strict rules that encoding/json
// alone does not enforce: valid UTF-8, exactly one value, no duplicate
// member in any object, and in every object that maps to a struct only the
// members its json tags name, with their exact case; with bounds on depth
// and on the number of values walked. The R2PS codec (wallet side and
// server) and the admin API share it. It imports the standard library only.
package strictjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of any document accepted.
const MaxDepth = 32

// Decode decodes data into v (a pointer) under the strict rules: Check
// against v's type with a limit of maxValues values (0: none), then
// encoding/json, whose type errors are shortened to what a peer may see.
func Decode(data []byte, v any, maxValues int) error {
	if err := Check(data, reflect.TypeOf(v), maxValues); err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return jsonError(err)
	}
	return nil
}

// jsonError shortens encoding/json errors to what the peer may see.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("member %q: JSON %s where another type is required", te.Field, te.Value)
	}
	return err
}

// Check enforces the structural rules against type t (nil: only the
// generic ones) with a limit of maxValues values (0: none); each member's
// value and each element counts one. encoding/json's validator checks the
// syntax first (it allocates nothing); the walk then reads the now
// well-formed document byte by byte, without allocating a token per value.
func Check(data []byte, t reflect.Type, maxValues int) error {
	if !utf8.Valid(data) {
		return errors.New("invalid UTF-8")
	}
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v) // only for its message
		if err == nil {
			err = errors.New("syntax error")
		}
		return fmt.Errorf("invalid JSON: %v", syntaxDetail(err))
	}
	w := walker{b: data, max: maxValues}
	// json.Valid allows nothing but white space after the value.
	return w.value(t, 0)
}

// walker walks one well-formed JSON document (json.Valid holds).
type walker struct {
	b   []byte
	i   int
	max int // the limit on values, 0 for none
	n   int // values seen
}

func (w *walker) ws() {
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// str skips a string starting at its opening quote and returns its
// contents as they appear, and whether they hold an escape.
func (w *walker) str() ([]byte, bool) {
	w.i++
	start, escaped := w.i, false
	for w.b[w.i] != '"' {
		if w.b[w.i] == '\\' {
			escaped = true
			w.i++
		}
		w.i++
	}
	raw := w.b[start:w.i]
	w.i++
	return raw, escaped
}

// maxLinearMembers is the object size up to which duplicate member names
// are found by comparison rather than with a map.
const maxLinearMembers = 16

func (w *walker) value(t reflect.Type, depth int) error {
	if depth > MaxDepth {
		return errors.New("JSON nested too deeply")
	}
	if w.n++; w.max > 0 && w.n > w.max {
		return fmt.Errorf("more than %d JSON values", w.max)
	}
	w.ws()
	switch w.b[w.i] {
	case '"':
		w.str()
		return nil
	case '[':
		w.i++
		t = Shape(t)
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		if w.ws(); w.b[w.i] == ']' {
			w.i++
			return nil
		}
		for {
			if err := w.value(elem, depth+1); err != nil {
				return err
			}
			w.ws()
			c := w.b[w.i]
			w.i++
			if c == ']' {
				return nil
			}
		}
	case '{':
		w.i++
		return w.object(Shape(t), depth)
	}
	// A number or a literal: up to the next delimiter.
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ',', ']', '}', ' ', '\t', '\n', '\r':
			return nil
		}
		w.i++
	}
	return nil
}

func (w *walker) object(t reflect.Type, depth int) error {
	fields := Fields(t)
	var few [maxLinearMembers]string
	seen := few[:0]
	var many map[string]bool
	if w.ws(); w.b[w.i] == '}' {
		w.i++
		return nil
	}
	for {
		w.ws()
		raw, escaped := w.str()
		key := string(raw)
		if escaped {
			// Rare: unescape as encoding/json will when it decodes.
			if err := json.Unmarshal(w.b[w.i-len(raw)-2:w.i], &key); err != nil {
				return fmt.Errorf("invalid JSON: %v", err)
			}
		}
		if many == nil {
			for _, k := range seen {
				if k == key {
					return fmt.Errorf("duplicate member %q", key)
				}
			}
			if len(seen) < maxLinearMembers {
				seen = append(seen, key)
			} else {
				many = make(map[string]bool, 2*maxLinearMembers)
				for _, k := range seen {
					many[k] = true
				}
			}
		}
		if many != nil {
			if many[key] {
				return fmt.Errorf("duplicate member %q", key)
			}
			many[key] = true
		}
		var ft reflect.Type
		if fields != nil {
			var ok bool
			if ft, ok = fields[key]; !ok {
				return fmt.Errorf("unknown member %q", key)
			}
		} else if t != nil && t.Kind() == reflect.Map {
			ft = t.Elem()
		}
		w.ws()
		w.i++ // ':'
		if err := w.value(ft, depth+1); err != nil {
			return err
		}
		w.ws()
		c := w.b[w.i]
		w.i++
		if c == '}' {
			return nil
		}
	}
}

// syntaxDetail names a premature end, which encoding/json reports as EOF.
func syntaxDetail(err error) string {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of JSON"
	}
	return err.Error()
}

// Shape returns the type whose members Check enforces: t without
// pointers, or nil when t decodes itself (json.Unmarshaler, such as
// json.RawMessage or *jose.JSONWebKey) and only the generic rules apply.
func Shape(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return nil
	}
	u := reflect.TypeFor[json.Unmarshaler]()
	if t.Implements(u) || reflect.PointerTo(t).Implements(u) {
		return nil
	}
	return t
}

// fieldCache memoises Fields per type, as encoding/json memoises its
// own field lists: the maps are built once and never changed, so the
// cache holds no state that could differ between calls.
var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// Fields maps the member names of struct type t to their types, or
// returns nil when t is not a struct. The map is shared: callers must not
// change it.
func Fields(t reflect.Type) map[string]reflect.Type {
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := buildFields(t)
	fieldCache.Store(t, m)
	return m
}

func buildFields(t reflect.Type) map[string]reflect.Type {
	m := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
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
		m[name] = f.Type
	}
	return m
}
