package stack

import (
	"crypto/hmac"
	"testing"

	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// TestLazyShareMACWithoutShareKey: a WSCA-only instance before the WSCD's
// share key exists (or after a database writer removed it) checks client
// and wallet key MACs against nothing that matches, not even the empty
// MAC an unbackfilled or planted row carries (hmac.Equal calls two empty
// slices equal).
func TestLazyShareMACWithoutShareKey(t *testing.T) {
	ctx := t.Context()
	st, err := store.Open(ctx, testenv.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, err := wscd.NewServerKeys(wscd.ServerKeysConfig{Device: testdevice.Soft(t), Store: st, Prefix: wscd.WSCAPrefix})
	if err != nil {
		t.Fatal(err)
	}
	l := lazyShare{wscd.NewShare(keys, "", "")}
	a, b := l.MAC("d", []byte("x")), l.MAC("d", []byte("x"))
	for _, stored := range [][]byte{nil, {}, a} {
		if hmac.Equal(stored, b) {
			t.Errorf("without a share key, stored MAC %x matches", stored)
		}
	}
}
