package r2ps

import (
	"reflect"

	"github.com/wsca/wsca/internal/strictjson"
)

// maxJSONValues bounds the values (objects, arrays, strings, numbers,
// literals: each member's value and each element counts one) that the strict
// checker walks in one document a server decodes before it knows the
// sender: headers, request payloads and request data. The largest request
// (a 2fa_registration with its cak) has about 25; an attestation request
// with a list of keys has about ten per key. Past the limit the document is
// refused instead of walked, so a 1 MiB body of tiny members costs
// microseconds, not a walk of 70,000 members and a map of their names.
// Response documents, which a client decodes only after it verified the
// server's signature, are not limited beyond their size.
const maxJSONValues = 1024

// decodeStrict decodes data into v (a pointer) under the strict rules of
// docs/protocol.md §3 (package internal/strictjson): valid UTF-8, exactly
// one JSON value with nothing after it, no duplicate member in any object,
// and in every object that maps to a struct only the members its json tags
// name, with their exact case (encoding/json alone would accept "NONCE" for
// "nonce", ignore unknown members and keep the last of two duplicates).
// Type mismatches are left to encoding/json. Errors wrap sentinel.
func decodeStrict(data []byte, v any, sentinel *Error) error {
	return decodeStrictN(data, v, sentinel, maxJSONValues)
}

// decodeStrictN is decodeStrict with a limit of maxValues JSON values; 0
// means no limit.
func decodeStrictN(data []byte, v any, sentinel *Error, maxValues int) error {
	if err := strictjson.Decode(data, v, maxValues); err != nil {
		return errorf(sentinel, "%v", err)
	}
	return nil
}

// checkJSON enforces the structural rules of decodeStrict against type t,
// with the limit of maxJSONValues.
func checkJSON(data []byte, t reflect.Type) error {
	return strictjson.Check(data, t, maxJSONValues)
}

// checkJSONN is checkJSON with a limit of maxValues values (0: none).
func checkJSONN(data []byte, t reflect.Type, maxValues int) error {
	return strictjson.Check(data, t, maxValues)
}

// jsonFields maps the member names of struct type t to their types (nil
// when t is not a struct); the map is shared and must not be changed.
func jsonFields(t reflect.Type) map[string]reflect.Type { return strictjson.Fields(t) }
