package soft

import (
	"strings"
	"testing"
)

// FuzzParseKeyFile: a key file either decodes into a valid kid and owner
// or is refused; it never panics.
func FuzzParseKeyFile(f *testing.F) {
	f.Add(`{"v":1,"kid":"00112233445566778899aabbccddeeff","owner":"u","pub":"","imported":false,"sealed":""}`)
	f.Add(`{"v":1}{"v":1}`)
	f.Add(`{"v":2,"x":1}`)
	f.Fuzz(func(t *testing.T, data string) {
		kf, err := parseKeyFile([]byte(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "soft: ") {
				t.Fatalf("error without package prefix: %v", err)
			}
			return
		}
		if kf.V != fileVersion || len(kf.KID) != 32 || kf.Owner == "" {
			t.Fatalf("accepted %+v", kf)
		}
	})
}
