package pkcs11

import (
	"bytes"
	"errors"
	"testing"

	"github.com/wsca/wsca/device"
)

func TestParseBlob(t *testing.T) {
	id := bytes.Repeat([]byte{7}, wrapIDSize)
	mk := func(mech WrapMech, usage keyUsage, n int) []byte {
		return appendBlob(nil, blob{wrapID: id, mech: mech, usage: usage, wrapped: make([]byte, n)})
	}
	good := mk(WrapAESKeyWrapPad, usageSignDerive, 80)
	for _, tc := range []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"good", good, true},
		{"key wrap", mk(WrapAESKeyWrap, usageSignDerive, 16), true},
		{"derive only", mk(WrapAESKeyWrapPad, usageDerive, 80), true},
		{"nil", nil, false},
		{"header only", good[:blobHeaderSize], false},
		{"wrapped part too short", mk(WrapAESKeyWrapPad, usageSignDerive, 8), false},
		{"wrapped part too long", mk(WrapAESKeyWrapPad, usageDerive, maxWrapped+8), false},
		{"not whole blocks", good[:len(good)-1], false},
		{"version 0", append([]byte{0}, good[1:]...), false},
		{"version 3", append([]byte{3}, good[1:]...), false},
		{"unknown mechanism", append(append(append([]byte{1}, id...), 9), make([]byte, 80)...), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := parseBlob(tc.b)
			if tc.ok != (err == nil) {
				t.Fatalf("parseBlob = %v", err)
			}
			if err != nil && !errors.Is(err, device.ErrInvalidBlob) {
				t.Fatalf("untyped error %v", err)
			}
			if err == nil && !bytes.Equal(appendBlob(nil, b), tc.b) {
				t.Fatal("does not round-trip")
			}
		})
	}
}

// FuzzParseBlob: parseBlob never panics, refuses with ErrInvalidBlob, and
// what it accepts re-encodes to the same bytes.
func FuzzParseBlob(f *testing.F) {
	f.Add(appendBlob(nil, blob{wrapID: make([]byte, wrapIDSize), mech: WrapAESKeyWrapPad, wrapped: make([]byte, 80)}))
	f.Add(appendBlob(nil, blob{wrapID: make([]byte, wrapIDSize), mech: WrapAESKeyWrap, usage: usageDerive, wrapped: make([]byte, 80)}))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := parseBlob(in)
		if err != nil {
			if !errors.Is(err, device.ErrInvalidBlob) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !bytes.Equal(appendBlob(nil, b), in) {
			t.Fatal("accepted blob does not round-trip")
		}
	})
}

// TestKeyCache: the cache holds at most max entries, evicts the least
// recently used, finds an entry only for its owner and its blob, and
// destroys an evicted entry in use only at its last release.
func TestKeyCache(t *testing.T) {
	c := newKeyCache(2)
	ref := func(k string) device.Ref {
		return device.Ref{Owner: "o", KID: device.KID(k), Wrapped: []byte(k)}
	}
	// add inserts an entry as a miss does and ends that use.
	add := func(k string, h uint) []uint {
		e := &cacheEntry{kid: device.KID(k), owner: "o", blob: []byte(k), h: h, refs: 1}
		d := c.insert(e)
		if c.release(e) {
			d = append(d, e.h)
		}
		return d
	}
	if d := add("a", 1); len(d) != 0 {
		t.Fatal(d)
	}
	if c.acquire(device.Ref{Owner: "p", KID: "a", Wrapped: []byte("a")}) != nil {
		t.Fatal("hit for another owner")
	}
	if c.acquire(device.Ref{Owner: "o", KID: "a", Wrapped: []byte("b")}) != nil {
		t.Fatal("hit for another blob")
	}
	add("b", 2)
	ea := c.acquire(ref("a")) // a most recent and in use: b goes next
	if ea == nil {
		t.Fatal("miss")
	}
	if d := add("c", 3); len(d) != 1 || d[0] != 2 {
		t.Fatalf("evicted %v, want b (2)", d)
	}
	if c.len() != 2 {
		t.Fatalf("len %d", c.len())
	}
	// a is in use twice; evicting it destroys nothing until both release.
	if c.acquire(ref("a")) != ea {
		t.Fatal("second use of a")
	}
	if d := add("d", 4); len(d) != 1 || d[0] != 3 {
		t.Fatalf("evicted %v, want c (3)", d)
	}
	if d := add("e", 5); len(d) != 0 {
		t.Fatalf("evicted %v: a is in use and must stay until released", d)
	}
	if c.acquire(ref("a")) != nil {
		t.Fatal("a still cached")
	}
	if c.release(ea) {
		t.Fatal("destroyed while in use")
	}
	if !c.release(ea) {
		t.Fatal("not destroyed at the last release")
	}
	if d := c.drain(); len(d) != 2 || c.len() != 0 {
		t.Fatalf("drain %v left %d", d, c.len())
	}
}
