package attest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/wsca/wsca/internal/strictjson"
)

// maxJSONValues bounds the values in one header or claims set.
const maxJSONValues = 4096

// decodeObject decodes the JSON object data into v (a pointer to a struct)
// under the strict generic rules (UTF-8, no duplicate member at any depth,
// bounded depth and size). Members v does not name are ignored, as
// RFC 7519 §4 requires for claims, but a member that encoding/json would
// match case-insensitively to one of v's names ("ALG" for "alg") is
// refused, so that no two parsers read different values from one token.
// Nested struct types enforce the same through their UnmarshalJSON.
func decodeObject(data []byte, v any) error {
	if err := strictjson.Check(data, nil, maxJSONValues); err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return errors.New("not a JSON object")
	}
	if m == nil {
		return errors.New("not a JSON object")
	}
	fields := strictjson.Fields(reflect.TypeOf(v).Elem())
	for k := range m {
		if _, ok := fields[k]; ok {
			continue
		}
		for f := range fields {
			if strings.EqualFold(f, k) {
				return fmt.Errorf("member %q differs from %q only in case", k, f)
			}
		}
	}
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("member %q has the wrong JSON type", te.Field)
		}
		return err
	}
	return nil
}

// NumericDate is a JWT NumericDate (RFC 7519 §2): seconds since the epoch.
// It decodes from an integer or a decimal JSON number (the fraction is
// dropped) and refuses negative values and values past year 9999.
type NumericDate int64

// maxNumericDate is 9999-12-31T23:59:59Z.
const maxNumericDate = 253402300799

// UnmarshalJSON implements json.Unmarshaler.
func (d *NumericDate) UnmarshalJSON(b []byte) error {
	s := string(b)
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		if i < 0 || i > maxNumericDate {
			return errors.New("NumericDate out of range")
		}
		*d = NumericDate(i)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return errors.New("NumericDate is not a number in range")
	}
	*d = NumericDate(int64(f))
	return nil
}
