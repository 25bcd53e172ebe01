package store_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/store"
)

// TestWrappedBlobs: the re-wrap and migration queries on both stores.
func TestWrappedBlobs(t *testing.T) {
	for _, b := range testenv.StoreBackends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			testWrappedBlobs(t, b.DSN(t))
		})
	}
}

// blobUnder is a blob whose bytes after its version byte start with
// prefix; the version alternates between the two a blob may have (its
// key's usage), which must not matter to any query here.
func blobUnder(prefix string, tail string) []byte {
	v := byte(1)
	if len(tail)%2 == 0 {
		v = 2
	}
	return append([]byte{v}, prefix+tail...)
}

func testWrappedBlobs(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	if err := s.CreateUnit(ctx, store.Unit{ID: "u", State: store.UnitActive, CreatedAt: at(0)}); err != nil {
		t.Fatal(err)
	}
	const a, b = "\x01AAAA", "\x01BBBB"
	keys := []store.Key{
		{KID: "k1", Wrapped: blobUnder(a, "1"), WrappedMAC: []byte("m1")},
		{KID: "k2", Wrapped: blobUnder(b, "2"), WrappedMAC: []byte("m2")},
		{KID: "k3"}, // a token object
		{KID: "k4", Wrapped: blobUnder(a, "4"), WrappedMAC: []byte("m4")},
		{KID: "k5", Wrapped: blobUnder(a, "5"), WrappedMAC: []byte("m5"), State: store.KeyDestroying},
		{KID: "k6", Backend: "soft"},
	}
	for _, k := range keys {
		k.UnitID, k.PublicKey, k.CreatedAt = "u", point(t), at(0)
		if k.Backend == "" {
			k.Backend = "pkcs11"
		}
		if k.State == "" {
			k.State = store.KeyActive
		}
		if err := s.InsertKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	for _, sk := range []store.ServerKey{
		{Purpose: "sealing", KID: "s1", PublicKey: point(t), Wrapped: blobUnder(a, "s"), CreatedAt: at(0)},
		{Purpose: "token", KID: "s2", PublicKey: point(t), CreatedAt: at(0)},
	} {
		if err := s.PutServerKey(ctx, sk); err != nil {
			t.Fatal(err)
		}
	}
	kidsOf := func(kb []store.KeyBlob) []string {
		var out []string
		for _, k := range kb {
			out = append(out, k.KID)
		}
		return out
	}

	// To re-wrap under b: the active keys with a blob that starts
	// otherwise, page by page.
	got, err := s.KeyBlobsNotUnder(ctx, []byte(b), "", 10)
	if err != nil || !slices.Equal(kidsOf(got), []string{"k1", "k4"}) {
		t.Fatalf("not under b: %v, %v", kidsOf(got), err)
	}
	if got[0].UnitID != "u" || !bytes.Equal(got[0].Wrapped, blobUnder(a, "1")) || string(got[0].WrappedMAC) != "m1" {
		t.Fatalf("record %+v", got[0])
	}
	if got, err := s.KeyBlobsNotUnder(ctx, []byte(b), "k1", 1); err != nil || !slices.Equal(kidsOf(got), []string{"k4"}) {
		t.Fatalf("second page: %v, %v", kidsOf(got), err)
	}
	if n, err := s.CountKeyBlobsNotUnder(ctx, []byte(b), ""); err != nil || n != 2 {
		t.Fatalf("count: %d, %v", n, err)
	}
	if n, err := s.CountKeyBlobsNotUnder(ctx, []byte(b), "k1"); err != nil || n != 1 {
		t.Fatalf("count after k1: %d, %v", n, err)
	}

	// To migrate: active keys of the backend without a blob.
	if got, err := s.TokenKeys(ctx, "pkcs11", "", 10); err != nil || !slices.Equal(kidsOf(got), []string{"k3"}) || got[0].Wrapped != nil {
		t.Fatalf("token keys: %v, %v", kidsOf(got), err)
	}
	if n, err := s.CountTokenKeys(ctx, "pkcs11", ""); err != nil || n != 1 {
		t.Fatalf("count token keys: %d, %v", n, err)
	}
	if got, err := s.TokenKeys(ctx, "pkcs11", "k3", 10); err != nil || len(got) != 0 {
		t.Fatalf("token keys after k3: %v, %v", kidsOf(got), err)
	}

	// Compare-and-swap.
	for _, c := range []struct {
		kid       string
		old       []byte
		want      bool
		situation string
	}{
		{"k1", blobUnder(b, "x"), false, "another blob than the record's"},
		{"k1", nil, false, "no blob, the record has one"},
		{"k1", blobUnder(a, "1"), true, "the record's blob"},
		{"k1", blobUnder(a, "1"), false, "the blob another re-wrapper replaced"},
		{"k3", nil, true, "a token object's record"},
		{"k5", blobUnder(a, "5"), false, "a key being destroyed"},
		{"gone", nil, false, "a key destroyed"},
	} {
		ok, err := s.SwapKeyBlob(ctx, c.kid, c.old, blobUnder(b, c.kid), []byte("new-mac"))
		if err != nil || ok != c.want {
			t.Fatalf("swap %s (%s) = %v, %v; want %v", c.kid, c.situation, ok, err, c.want)
		}
	}
	if k, err := s.GetKey(ctx, "k3"); err != nil || !bytes.Equal(k.Wrapped, blobUnder(b, "k3")) || string(k.WrappedMAC) != "new-mac" {
		t.Fatalf("k3 after the swap: %+v, %v", k, err)
	}
	if got, err := s.KeyBlobsNotUnder(ctx, []byte(b), "", 10); err != nil || !slices.Equal(kidsOf(got), []string{"k4"}) {
		t.Fatalf("not under b after swaps: %v, %v", kidsOf(got), err)
	}

	// Server keys.
	sks, err := s.ServerKeyBlobs(ctx)
	if err != nil || len(sks) != 1 || sks[0].Purpose != "sealing" || sks[0].KID != "s1" {
		t.Fatalf("server key blobs %+v, %v", sks, err)
	}
	if ok, err := s.SwapServerKeyBlob(ctx, "sealing", "other", blobUnder(a, "s"), blobUnder(b, "s")); err != nil || ok {
		t.Fatalf("swap of another kid: %v, %v", ok, err)
	}
	if ok, err := s.SwapServerKeyBlob(ctx, "sealing", "s1", blobUnder(a, "x"), blobUnder(b, "s")); err != nil || ok {
		t.Fatalf("swap of another blob: %v, %v", ok, err)
	}
	if ok, err := s.SwapServerKeyBlob(ctx, "sealing", "s1", blobUnder(a, "s"), blobUnder(b, "s")); err != nil || !ok {
		t.Fatalf("swap: %v, %v", ok, err)
	}
	if k, err := s.GetServerKey(ctx, "sealing"); err != nil || !bytes.Equal(k.Wrapped, blobUnder(b, "s")) {
		t.Fatalf("server key after swap %+v, %v", k, err)
	}

	// Counts by prefix: k2, k3, k1 and the server key under b; k4 and the
	// key being destroyed under a.
	counts, err := s.BlobCounts(ctx, len(a))
	if err != nil || len(counts) != 2 {
		t.Fatalf("counts %+v, %v", counts, err)
	}
	want := map[string][2]int64{a: {2, 0}, b: {3, 1}}
	for _, c := range counts {
		if w := want[string(c.Prefix)]; w != [2]int64{c.Keys, c.ServerKeys} {
			t.Fatalf("prefix %q: %d keys, %d server keys; want %v", c.Prefix, c.Keys, c.ServerKeys, w)
		}
	}

	// Validation.
	for name, err := range map[string]error{
		"empty prefix": func() error { _, err := s.KeyBlobsNotUnder(ctx, nil, "", 1); return err }(),
		"page 0":       func() error { _, err := s.KeyBlobsNotUnder(ctx, []byte(b), "", 0); return err }(),
		"page too big": func() error { _, err := s.TokenKeys(ctx, "pkcs11", "", store.MaxBlobBatch+1); return err }(),
		"bad cursor":   func() error { _, err := s.TokenKeys(ctx, "pkcs11", "a\x00", 1); return err }(),
		"empty blob":   func() error { _, err := s.SwapKeyBlob(ctx, "k4", blobUnder(a, "4"), nil, []byte("m")); return err }(),
		"prefix 0":     func() error { _, err := s.BlobCounts(ctx, 0); return err }(),
	} {
		wantErr(t, name, err, store.ErrInvalid)
	}
}
