package statuslist_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/wsca/wsca/statuslist"
)

func TestReference(t *testing.T) {
	ref := statuslist.Reference{Index: 4711, URI: testURI}
	js, err := json.Marshal(map[string]any{"iss": "x", "status": statuslist.StatusClaim{StatusList: ref}})
	if err != nil {
		t.Fatal(err)
	}
	if string(js) != `{"iss":"x","status":{"status_list":{"idx":4711,"uri":"`+testURI+`"}}}` {
		t.Fatalf("JSON %s", js)
	}
	if got, err := statuslist.ReferenceFromJSON(js); err != nil || got != ref {
		t.Fatalf("ReferenceFromJSON: %v %v", got, err)
	}
	cb, err := cbor.Marshal(map[any]any{1: "iss", 65535: statuslist.StatusClaim{StatusList: ref}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := statuslist.ReferenceFromCBOR(cb); err != nil || got != ref {
		t.Fatalf("ReferenceFromCBOR: %v %v", got, err)
	}

	jsonCases := map[string]string{
		"no status":      `{"sub":"x"}`,
		"no status_list": `{"status":{}}`,
		"no idx":         `{"status":{"status_list":{"uri":"https://a.example/1"}}}`,
		"negative idx":   `{"status":{"status_list":{"idx":-1,"uri":"https://a.example/1"}}}`,
		"float idx":      `{"status":{"status_list":{"idx":1.5,"uri":"https://a.example/1"}}}`,
		"relative uri":   `{"status":{"status_list":{"idx":1,"uri":"/statuslists/1"}}}`,
		"trailing":       `{"status":{"status_list":{"idx":1,"uri":"https://a.example/1"}}} {}`,
	}
	for name, in := range jsonCases {
		if _, err := statuslist.ReferenceFromJSON([]byte(in)); !errors.Is(err, statuslist.ErrClaims) {
			t.Errorf("JSON %s: %v", name, err)
		}
	}
	cborCases := map[string]any{
		"no status":      map[any]any{2: "x"},
		"idx negative":   map[any]any{65535: map[string]any{"status_list": map[string]any{"idx": -1, "uri": testURI}}},
		"uri not text":   map[any]any{65535: map[string]any{"status_list": map[string]any{"idx": 1, "uri": []byte(testURI)}}},
		"status as text": map[any]any{"status": map[string]any{"status_list": map[string]any{"idx": 1, "uri": testURI}}},
	}
	for name, in := range cborCases {
		b, _ := cbor.Marshal(in)
		if _, err := statuslist.ReferenceFromCBOR(b); !errors.Is(err, statuslist.ErrClaims) {
			t.Errorf("CBOR %s: %v", name, err)
		}
	}
}
