package statuslist_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/wsca/wsca/statuslist"
	"github.com/wsca/wsca/statuslist/statuslisttest"
)

// FuzzDecode: Decode never panics, never returns more than the limit
// allows, and what it returns encodes and decodes to itself.
func FuzzDecode(f *testing.F) {
	_, lst := testListF(f)
	f.Add(2, lst, 10000)
	f.Add(1, zlibOfF(f, make([]byte, 1<<12)), 100)
	f.Add(8, []byte{0x78, 0xda}, 1)
	f.Fuzz(func(t *testing.T, bits int, lst []byte, max int) {
		max %= 1 << 20
		l, err := statuslist.Decode(bits, lst, max)
		if err != nil {
			return
		}
		if len(l.Bytes())*8 > (max*bits+7)/8*8 {
			t.Fatalf("%d bytes for a limit of %d entries", len(l.Bytes()), max)
		}
		enc, err := l.Encode()
		if err != nil {
			t.Fatal(err)
		}
		again, err := statuslist.Decode(bits, enc, max)
		if err != nil || !bytes.Equal(again.Bytes(), l.Bytes()) {
			t.Fatalf("re-encoding: %v", err)
		}
	})
}

// FuzzVerify feeds both token parsers; a token that verifies has a list
// whose every index reads.
func FuzzVerify(f *testing.F) {
	pki := statuslisttest.NewPKI(f)
	tok := tokenF(f)
	jwt, err := statuslist.SignJWT(tok, pki.Key, statuslist.SignOptions{Chain: pki.Chain, KeyID: "k"})
	if err != nil {
		f.Fatal(err)
	}
	cwt, err := statuslist.SignCWT(tok, pki.Key, statuslist.SignOptions{Chain: pki.Chain, KeyID: "k"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(jwt, true)
	f.Add(cwt, false)
	f.Add([]byte("eyJhbGciOiJFUzI1NiJ9.e30.AA"), true)
	now := func() time.Time { return testNow }
	verifiers := []*statuslist.Verifier{
		{Key: &pki.Key.PublicKey, Now: now, MaxEntries: 1 << 16},
		{Roots: pki.Roots, Now: now, MaxEntries: 1 << 16},
	}
	f.Fuzz(func(t *testing.T, token []byte, isJWT bool) {
		for _, v := range verifiers {
			var got *statuslist.Verified
			var err error
			if isJWT {
				got, err = v.VerifyJWT(token, testURI)
			} else {
				got, err = v.VerifyCWT(token, testURI)
			}
			if err != nil {
				continue
			}
			for i := range got.List.Len() {
				if _, err := got.Status(uint64(i)); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// FuzzReference feeds both status claim parsers.
func FuzzReference(f *testing.F) {
	f.Add([]byte(`{"status":{"status_list":{"idx":3,"uri":"https://a.example/1"}}}`))
	f.Add([]byte{0xa1, 0x19, 0xff, 0xff, 0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := statuslist.ReferenceFromJSON(b); err == nil && r.URI == "" {
			t.Fatal("empty uri accepted")
		}
		if r, err := statuslist.ReferenceFromCBOR(b); err == nil && r.URI == "" {
			t.Fatal("empty uri accepted")
		}
	})
}

func testListF(f *testing.F) (*statuslist.List, []byte) {
	l, err := statuslist.New(2, 10000)
	if err != nil {
		f.Fatal(err)
	}
	l.Set(3, statuslist.Invalid)
	lst, err := l.Encode()
	if err != nil {
		f.Fatal(err)
	}
	return l, lst
}

func tokenF(f *testing.F) *statuslist.Token {
	_, lst := testListF(f)
	return &statuslist.Token{Subject: testURI, IssuedAt: testIat, Expiry: testIat.Add(time.Hour), TTL: time.Minute, Bits: 2, Lst: lst}
}

func zlibOfF(f *testing.F, b []byte) []byte {
	enc, err := statuslist.Compress(b)
	if err != nil {
		f.Fatal(err)
	}
	return enc
}
