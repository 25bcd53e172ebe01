package event_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wsca/wsca/evidence/event"
)

var at = time.Date(2026, 5, 1, 12, 0, 0, 123_000_000, time.UTC)

// TestLeafVector pins the leaf encoding byte for byte.
func TestLeafVector(t *testing.T) {
	e := event.Event{Type: event.KeyDestroyed, Time: at, Unit: "u1", Context: "hsm", Kid: strings.Repeat("ab", 16), Data: []byte(event.DestroyedBlobErased)}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := hex.EncodeToString([]byte("wsca-evidence-v1\x00")) + "06" + "0000019de368f67b" +
		"0002" + hex.EncodeToString([]byte("u1")) + "0003" + hex.EncodeToString([]byte("hsm")) +
		"0020" + hex.EncodeToString([]byte(strings.Repeat("ab", 16))) + "0000" +
		"0013" + hex.EncodeToString([]byte(event.DestroyedBlobErased))
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("leaf\n got %s\nwant %s", got, want)
	}
	back, err := event.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Time.Equal(at) || back.Unit != e.Unit || back.Kid != e.Kid || back.Context != e.Context || !bytes.Equal(back.Data, e.Data) || back.Type != e.Type {
		t.Fatalf("round trip: %+v", back)
	}
}

func TestMarshalRefuses(t *testing.T) {
	for name, e := range map[string]event.Event{
		"type":         {Type: 0, Time: at},
		"unknown type": {Type: 200, Time: at},
		"time":         {Type: event.Signature, Time: time.Unix(-1, 0)},
		"kid":          {Type: event.Signature, Time: at, Kid: "ABCD"},
		"kid upper":    {Type: event.Signature, Time: at, Kid: strings.Repeat("AB", 16)},
		"unit control": {Type: event.Signature, Time: at, Unit: "a\nb"},
		"unit utf8":    {Type: event.Signature, Time: at, Unit: "\xff"},
		"unit long":    {Type: event.Signature, Time: at, Unit: strings.Repeat("a", event.MaxStringSize+1)},
		"data long":    {Type: event.SECDSARecord, Time: at, Data: make([]byte, event.MaxDataSize+1)},
	} {
		if _, err := e.Marshal(); !errors.Is(err, event.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	good, _ := event.Event{Type: event.Signature, Time: at, Unit: "u", Kid: strings.Repeat("0", 32)}.Marshal()
	mod := func(f func([]byte) []byte) []byte { return f(bytes.Clone(good)) }
	for name, b := range map[string][]byte{
		"empty":     nil,
		"domain":    mod(func(b []byte) []byte { b[0] = 'W'; return b }),
		"version":   mod(func(b []byte) []byte { b[15] = '2'; return b }),
		"type":      mod(func(b []byte) []byte { b[17] = 0; return b }),
		"trailing":  append(bytes.Clone(good), 0),
		"truncated": good[:len(good)-1],
		"time":      mod(func(b []byte) []byte { b[18] = 0xff; return b }),
		"length":    mod(func(b []byte) []byte { b[26] = 0xff; return b }),
	} {
		if _, err := event.Parse(b); !errors.Is(err, event.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, e := range []event.Event{
		{Type: event.Signature, Time: at, Unit: "u", Kid: strings.Repeat("0", 32)},
		{Type: event.SECDSARecord, Time: at, Unit: "u", Data: []byte{1, 2, 3}},
		{Type: event.Revoked, Time: at, Unit: "u", Actor: "holder"},
	} {
		b, _ := e.Marshal()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := event.Parse(b)
		if err != nil {
			return
		}
		again, err := e.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("not canonical: %x → %x, %v", b, again, err)
		}
	})
}
