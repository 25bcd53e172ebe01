package store_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

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
		t.Run(b.Name+"/SECDSA", func(t *testing.T) {
			t.Parallel()
			testSECDSABlobs(t, b.DSN(t))
		})
	}
}

// testSECDSABlobs: the re-wrap queries of SECDSA aU keys, bound and
// pending, page by page, and their compare-and-swap.
func testSECDSABlobs(t *testing.T, dsn string) {
	s := open(t, dsn)
	ctx := t.Context()
	const a, b = "\x01AAAA", "\x01BBBB"
	for _, u := range []string{"u1", "u2", "u3", "u4", "u5"} {
		if err := s.CreateUnit(ctx, store.Unit{ID: u, State: store.UnitActive, CreatedAt: at(0)}); err != nil {
			t.Fatal(err)
		}
	}
	// Bindings: u1, u2 under a, u3 under b, u4 a token object, u5 reset.
	for _, x := range []struct{ unit, blob string }{{"u1", a}, {"u2", a}, {"u3", b}, {"u4", ""}, {"u5", a}} {
		var blob []byte
		if x.blob != "" {
			blob = blobUnder(x.blob, x.unit)
		}
		if _, _, err := s.PutSECDSA(ctx, store.SECDSAUnit{UnitID: x.unit, KID: "k" + x.unit, Wrapped: blob,
			Cert: []byte("ic-" + x.unit), MAC: []byte("m-" + x.unit), UpdatedAt: at(0)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.ResetSECDSA(ctx, "u5", at(0)); err != nil {
		t.Fatal(err)
	}
	// Activations: u2 under a with an aU, u3 with a nonce only.
	for _, u := range []string{"u2", "u3"} {
		if _, err := s.PutSECDSANonce(ctx, u, []byte("n"), at(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.TakeSECDSANonce(ctx, "u2", []byte("n"), at(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSECDSAPending(ctx, store.SECDSAPending{UnitID: "u2", KID: "kp2", Wrapped: blobUnder(a, "p2"), MAC: []byte("mp2")}); err != nil {
		t.Fatal(err)
	}
	unitsOf := func(bs []store.SECDSABlob) []string {
		var out []string
		for _, x := range bs {
			out = append(out, x.UnitID)
		}
		return out
	}
	got, err := s.SECDSABlobsNotUnder(ctx, []byte(b), false, "", 10)
	if err != nil || !slices.Equal(unitsOf(got), []string{"u1", "u2"}) {
		t.Fatalf("bindings not under b: %v, %v", unitsOf(got), err)
	}
	if g := got[0]; g.KID != "ku1" || !bytes.Equal(g.Wrapped, blobUnder(a, "u1")) || string(g.MAC) != "m-u1" || string(g.Cert) != "ic-u1" || g.Pending {
		t.Fatalf("binding record %+v", g)
	}
	if got, err := s.SECDSABlobsNotUnder(ctx, []byte(b), false, "u1", 1); err != nil || !slices.Equal(unitsOf(got), []string{"u2"}) {
		t.Fatalf("second page: %v, %v", unitsOf(got), err)
	}
	if n, err := s.CountSECDSABlobsNotUnder(ctx, []byte(b), false, "u1"); err != nil || n != 1 {
		t.Fatalf("count after u1: %d, %v", n, err)
	}
	pend, err := s.SECDSABlobsNotUnder(ctx, []byte(b), true, "", 10)
	if err != nil || !slices.Equal(unitsOf(pend), []string{"u2"}) || !pend[0].Pending || pend[0].KID != "kp2" || pend[0].Cert != nil {
		t.Fatalf("activations not under b: %+v, %v", pend, err)
	}
	if n, err := s.CountSECDSABlobsNotUnder(ctx, []byte(b), true, ""); err != nil || n != 1 {
		t.Fatalf("count of activations: %d, %v", n, err)
	}

	changed := func(f func(*store.SECDSABlob)) store.SECDSABlob {
		x := got[0]
		f(&x)
		return x
	}
	for _, c := range []struct {
		old       store.SECDSABlob
		want      bool
		situation string
	}{
		{changed(func(x *store.SECDSABlob) { x.Wrapped = blobUnder(a, "other") }), false, "another blob"},
		{changed(func(x *store.SECDSABlob) { x.Cert = []byte("ic-other") }), false, "another certificate"},
		{changed(func(x *store.SECDSABlob) { x.KID = "kother" }), false, "another aU"},
		{changed(func(x *store.SECDSABlob) { x.Pending = true }), false, "the activation of a unit that has none"},
		{got[0], true, "the record read"},
		{got[0], false, "a blob re-wrapped already"},
		{pend[0], true, "the activation read"},
	} {
		ok, err := s.SwapSECDSABlob(ctx, c.old, blobUnder(b, c.old.UnitID), []byte("new-mac"))
		if err != nil || ok != c.want {
			t.Fatalf("swap (%s) = %v, %v; want %v", c.situation, ok, err, c.want)
		}
	}
	if u, err := s.GetSECDSA(ctx, "u1"); err != nil || !bytes.Equal(u.Wrapped, blobUnder(b, "u1")) || string(u.MAC) != "new-mac" || string(u.Cert) != "ic-u1" {
		t.Fatalf("u1 after the swap: %+v, %v", u, err)
	}
	if p, err := s.TakeSECDSAPending(ctx, "u2"); err != nil || !bytes.Equal(p.Wrapped, blobUnder(b, "u2")) || string(p.MAC) != "new-mac" {
		t.Fatalf("u2's activation after the swap: %+v, %v", p, err)
	}
	if got, err := s.SECDSABlobsNotUnder(ctx, []byte(b), false, "", 10); err != nil || !slices.Equal(unitsOf(got), []string{"u2"}) {
		t.Fatalf("bindings not under b after the swap: %v, %v", unitsOf(got), err)
	}
	for name, err := range map[string]error{
		"empty prefix": func() error { _, err := s.SECDSABlobsNotUnder(ctx, nil, false, "", 1); return err }(),
		"page 0":       func() error { _, err := s.SECDSABlobsNotUnder(ctx, []byte(b), true, "", 0); return err }(),
		"bad cursor":   func() error { _, err := s.CountSECDSABlobsNotUnder(ctx, []byte(b), false, "a\x00"); return err }(),
		"empty blob": func() error {
			_, err := s.SwapSECDSABlob(ctx, got[0], nil, []byte("m"))
			return err
		}(),
	} {
		wantErr(t, name, err, store.ErrInvalid)
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
