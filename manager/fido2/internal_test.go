package fido2

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/kv"
)

func testPlugin(t testing.TB, rpID, origin string, tr manager.Ctap2Transport) *Plugin {
	t.Helper()
	st, err := kv.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{RPID: rpID, Origin: origin, Store: st, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOriginAllowed(t *testing.T) {
	p := testPlugin(t, "wallet.example", "", nil)
	lp := testPlugin(t, "localhost", "http://localhost:8080", nil)
	for _, c := range []struct {
		p      *Plugin
		origin string
		ok     bool
	}{
		{p, "https://wallet.example", true},
		{p, "https://app.wallet.example", true},
		{p, "https://wallet.example:8443", true},
		{p, "https://WALLET.example", true},
		{p, "http://wallet.example", false},
		{p, "https://evilwallet.example", false},
		{p, "https://wallet.example.evil", false},
		{p, "https://wallet.example/", false},
		{p, "https://wallet.example/path", false},
		{p, "https://wallet.example?", false},
		{p, "https://wallet.example#f", false},
		{p, "https://user@wallet.example", false},
		{p, "wss://wallet.example", false},
		{p, "null", false},
		{p, "", false},
		{lp, "http://localhost:8080", true},
		{lp, "http://localhost:9999", true},
		{lp, "https://localhost", true},
		{lp, "http://app.localhost", true},
		{lp, "http://127.0.0.1:8080", false},
	} {
		if got := c.p.originAllowed(c.origin); got != c.ok {
			t.Errorf("RP %s, origin %q: %v, want %v", c.p.rpID, c.origin, got, c.ok)
		}
	}
}

// TestEncoding pins the canonical CTAP2 CBOR of both commands (CTAP2 §8:
// integer keys ascending, text keys shorter first) and the client data.
func TestEncoding(t *testing.T) {
	c := newCodec()
	cdh := bytes.Repeat([]byte{0x11}, 32)
	h := func(s string) []byte {
		b, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "").Replace(s))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const (
		aExample  = "69 612e6578616d706c65"   // "a.example"
		publicKey = "6a 7075626c69632d6b6579" // "public-key"
		cdhHex    = "5820 1111111111111111111111111111111111111111111111111111111111111111"
	)
	got, err := c.encodeCommand(cmdMakeCredential, makeCredentialRequest{
		ClientDataHash:   cdh,
		RP:               rpEntity{ID: "a.example", Name: "a.example"},
		User:             userEntity{ID: []byte{1, 2}, Name: "u", DisplayName: "u"},
		PubKeyCredParams: []credParam{{Alg: -7, Type: "public-key"}},
		Options:          uvOption(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := h("01 a5" +
		"01" + cdhHex +
		"02 a2 62 6964" + aExample + "64 6e616d65" + aExample +
		"03 a3 62 6964 42 0102 64 6e616d65 61 75 6b 646973706c61794e616d65 61 75" +
		"04 81 a2 63 616c67 26 64 74797065" + publicKey +
		"07 a1 62 7576 f5")
	if !bytes.Equal(got, want) {
		t.Errorf("makeCredential\n got %x\nwant %x", got, want)
	}
	got, err = c.encodeCommand(cmdGetAssertion, getAssertionRequest{
		RPID: "a.example", ClientDataHash: cdh, AllowList: []descriptor{{ID: []byte{9}, Type: "public-key"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want = h("02 a3 01" + aExample + "02" + cdhHex + "03 81 a2 62 6964 41 09 64 74797065" + publicKey)
	if !bytes.Equal(got, want) {
		t.Errorf("getAssertion\n got %x\nwant %x", got, want)
	}
	if got, want := string(buildClientData(typeGet, []byte{1, 2}, "https://a.example/<&>")),
		`{"type":"webauthn.get","challenge":"AQI","origin":"https://a.example/<&>","crossOrigin":false}`; got != want {
		t.Errorf("client data %s, want %s", got, want)
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
