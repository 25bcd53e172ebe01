package server

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecodeStrict: decodeStrict never panics, fails only with
// errStrictJSON, and accepts nothing encoding/json would read differently
// (what it accepts, json.Unmarshal decodes to the same value).
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{`{}`, `{"unit":"a","ttl":5}`, `{"unit":"a","unit":"b"}`, `{"UNIT":"a"}`,
		`{"purpose":"pin_reset"} x`, `{"unit":{"a":1,"a":2}}`, `[{"a":1}]`, "{\"unit\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got codeRequest
		err := decodeStrict(data, &got)
		if err != nil {
			if !errors.Is(err, errStrictJSON) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		var plain codeRequest
		if err := json.Unmarshal(data, &plain); err != nil || plain != got {
			t.Fatalf("strict %+v, plain %+v (%v)", got, plain, err)
		}
	})
}
