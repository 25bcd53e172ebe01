package server

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/wsca/wsca/internal/strictjson"
)

// maxAdminJSONValues bounds the values an admin request body may hold.
const maxAdminJSONValues = 4096

// errStrictJSON marks a body that breaks the strict rules of decodeStrict.
var errStrictJSON = errors.New("strict JSON")

// decodeStrict decodes data, one JSON object, into the struct v points to,
// under the rules of internal/strictjson (the R2PS codec's): invalid UTF-8,
// a member repeated in any object (encoding/json keeps the last), a member
// whose name matches a field only case-insensitively (encoding/json folds
// case), a member the struct lacks, and anything after the value are
// refused.
func decodeStrict(data []byte, v any) error {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return fmt.Errorf("%w: want a JSON object", errStrictJSON)
	}
	if err := strictjson.Decode(data, v, maxAdminJSONValues); err != nil {
		return fmt.Errorf("%w: %v", errStrictJSON, err)
	}
	return nil
}
