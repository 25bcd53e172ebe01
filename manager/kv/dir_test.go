package kv_test

import (
	"testing"

	"github.com/wsca/wsca/manager/kv"
	"github.com/wsca/wsca/manager/kv/kvtest"
)

func TestDir(t *testing.T) {
	d, err := kv.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	kvtest.RunStoreTests(t, d)
}
