// Package wycheproof loads the Wycheproof test vectors kept in the
// repository's testdata/wycheproof directory. It is used by tests only.
package wycheproof

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Result is a vector's expected outcome.
type Result string

const (
	Valid      Result = "valid"
	Invalid    Result = "invalid"
	Acceptable Result = "acceptable"
)

// ECDHTest is one case of ecdh_*_ecpoint_test.json.
type ECDHTest struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	Flags   []string `json:"flags"`
	Public  HexBytes `json:"public"`
	Private HexBytes `json:"private"`
	Shared  HexBytes `json:"shared"`
	Result  Result   `json:"result"`
}

// ECDSATest is one case of ecdsa_*_test.json.
type ECDSATest struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	Flags   []string `json:"flags"`
	Msg     HexBytes `json:"msg"`
	Sig     HexBytes `json:"sig"`
	Result  Result   `json:"result"`
}

// ECDSAGroup is a test group sharing one public key.
type ECDSAGroup struct {
	PublicKey struct {
		Uncompressed HexBytes `json:"uncompressed"`
	} `json:"publicKey"`
	SHA   string      `json:"sha"`
	Tests []ECDSATest `json:"tests"`
}

// HexBytes decodes a JSON hex string.
type HexBytes []byte

// UnmarshalJSON implements json.Unmarshaler.
func (h *HexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

// Path returns the path of a vector file in testdata/wycheproof.
func Path(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "wycheproof", name)
}

func load(t testing.TB, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(Path(name))
	if err != nil {
		t.Fatalf("wycheproof: %v", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("wycheproof: %s: %v", name, err)
	}
}

// ECDH loads an ecpoint ECDH file.
func ECDH(t testing.TB, name string) []ECDHTest {
	var f struct {
		TestGroups []struct {
			Curve string     `json:"curve"`
			Tests []ECDHTest `json:"tests"`
		} `json:"testGroups"`
	}
	load(t, name, &f)
	var out []ECDHTest
	for _, g := range f.TestGroups {
		out = append(out, g.Tests...)
	}
	if len(out) == 0 {
		t.Fatalf("wycheproof: %s has no tests", name)
	}
	return out
}

// ECDSA loads an ECDSA verification file.
func ECDSA(t testing.TB, name string) []ECDSAGroup {
	var f struct {
		TestGroups []ECDSAGroup `json:"testGroups"`
	}
	load(t, name, &f)
	if len(f.TestGroups) == 0 {
		t.Fatalf("wycheproof: %s has no groups", name)
	}
	return f.TestGroups
}
