package secdsa

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestReferenceConsistencyVector checks the algebra against the consistency
// vector of /work/shared/reference/secdsa.md §4.2 (and the PIN binder vector
// of §4.1). That vector uses plain concatenations without our labels, so
// the message digest, the DLEQ hash, the d_i, H1 and the GCM key are
// recomputed here in its layout; every point and scalar comes from the
// package's own arithmetic.
func TestReferenceConsistencyVector(t *testing.T) {
	want := func(name, got, hexWant string) {
		t.Helper()
		if got != hexWant {
			t.Errorf("%s = %s, want %s", name, got, hexWant)
		}
	}
	h := hex.EncodeToString
	sc := func(k *scalar) string { return h(scalarBytes(k)) }
	xy := func(p *point) string { return h(encodePoint(p)[1:]) }

	// §4.1 PIN binder.
	binder, err := NewSoftwarePINBinder([]byte("12345678901234567890123456789012"))
	if err != nil {
		t.Fatal(err)
	}
	pb, err := binder.PINKey([]byte("12345"))
	if err != nil {
		t.Fatal(err)
	}
	want("P", h(pb), "2644a352b048ed1bd3a545ed74b576aad576c15ddabd0eda1d9abd849d438cbf")
	p := scalarOf(t, pb)

	u, tt, aU, k := labelScalarOf("demo-u"), labelScalarOf("demo-t"), labelScalarOf("demo-aU"), labelScalarOf("demo-k")
	want("u", sc(u), "d0801cbc47b2a232c995d23e2e63341dcd33ce86184497aafdebb9009798f694")
	want("t", sc(tt), "27d2b1fd226b4698decd7149155a738a10d8c6fada377a130de1867aba970dde")
	want("aU", sc(aU), "2b57bfb7d9bfe380e578e0eb5b9ae47fa96b15869d3e4db223ce48b1676dc9ac")
	want("k", sc(k), "715c93604905fba1acb70324ea0032d5bb4f1c97f5c4af337b76fdf1c448ffa1")

	must := func(p *point, err error) *point {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	uP := must(mulG(u))
	want("U", xy(uP), "82a2ee0c5a434fe9340890571bf163f4f213aa19fd3ca51a821e587399341386"+"b73662a75a4efb55d1be6752acdb632ebb6e0102416632d3d47f653ea90c5ae9")
	y := must(mul(uP, p))
	want("Y", xy(y), "b25f4d646d8ad00adac9a1847c47ce15ff96b006f88a2e6e72d06d07b04a42b4"+"a23905f77d26092d97c169e4f53463d05c6792274ee937ac2b1dd3bcc867a10c")
	ybl := must(mul(y, tt))
	want("Ybl", xy(ybl), "49d97d893f85249b7a44264917fb56683c1874afe92a4bb3b1902e2e4c7390b0"+"31b6744e756b3cfb51a033fc0df3bddebba70ab9d5140d369f4eafc27bd94624")
	prov := newProvider(t, aU, labelScalarOf("demo-provider"))
	gp := must(ParsePoint(prov.gp))
	want("G'", xy(gp), "aa336df270719476be377686096007182859d5ddc0abf6f243ca1877a0d64c82"+"275083309bc5a4f2a59e78a812fc2e82736dbf05ed81f6d817f43e39d54ca8bb")
	yblp := must(recoverProduct(prov.derive, ybl, gp)) // two x-only derives
	want("Y'bl", xy(yblp), "63d03056f505dcb7ffc01fadac0ff69911f4354cf2c559422e08909a9e95fe64"+"cb122bc37e34c9c686acdf56461de0bc9a844e8d0f092168e335d813e7c1b707")
	yp := must(mul(yblp, invN(tt)))
	want("Y'", xy(yp), "6ffdc6ac3a0b9788a3d3aebe5ea93687d6061ef39edcb97c0e2ef5e1307f8910"+"2a260f444d8b3deb5662a4d2ca056aa90bdf013b3398f0ad8e9de176485fe9ca")

	ins := []byte("SIGN:demo-instruction")
	sn := u64(7)
	e := hashToScalar(digest(ins, sn))
	want("e", sc(e), "4b68c0c6d6c84a239698d4f6dc45e23c8ae888dd6115983d2ecd2edb2124549c")
	r, s, err := splitSign(newFixedDevice(t, u, k), p, e)
	if err != nil {
		t.Fatal(err)
	}
	want("r", sc(r), "e72243bf77d4ed80c6a0a0896e665ef2f345c0c75901eb452ff79019819cbb29")
	want("s", sc(s), "93a211f1749b31ffc8610b7d4bcd4271ad6d6a10fa38aa658664d096768dc90f")
	w := invN(s)
	rP := must(lin(mulN(e, w), generator(), mulN(r, w), y))
	want("R", xy(rP), "e72243bf77d4ed80c6a0a0896e665ef2f345c0c75901eb452ff79019819cbb29"+"73aca2e9d44d20439d4c8cec76c0bad78e836a407125287daabe4f76b1f7fc2e")
	gpp, ypp := must(mul(gp, w)), must(mul(yp, w))
	want("G''", xy(gpp), "426407b0217d52e5e866a4a832ed8dffd1470538678b94da3dc6a42d66581a1e"+"2518009a7ec6fb292f595103ff426b259420baea63a665622f550ed2926960a3")
	want("Y''", xy(ypp), "e4815c32f5dbfe02da378f6594af9064afde490aa6a205ffbed4f88ecdfeec16"+"b581e955d89ae5ed09848b04087c5a05e06c23e69283370748737272b78fd3df")
	rp := must(lin(e, gpp, r, ypp))
	want("R'", xy(rp), "31ff0bb8cd97332deb2e3b3f984ebb6face8861508cf496844b078609811cbdf"+"6d6334d4fbdfac86f1b852801448d1a320a2b9337419dbe02e274d5fc6743018")
	if !equal(rp, must(mul(rP, aU))) {
		t.Error("R' != aU·R")
	}

	nonce := labelScalarOf("demo-zk")
	want("DLEQ nonce", sc(nonce), "d45f0053bff79d7b1b867db373381a4e2e87694b84506b391010e402e04d5a99")
	proof, err := dleqProveNonce("", []*point{gp, yp}, []*point{gpp, ypp}, w, nil, nonce)
	if err != nil {
		t.Fatal(err)
	}
	want("DLEQ r", h(proof[:32]), "895692024fa23674368aceae6dbc6e4cd686c99d08899a5104bafc1eb47b4d8a")
	want("DLEQ s", h(proof[32:]), "3e57e8ee614a8580407ef9a4d97a098add54eb1cedc05be6fdcc9210a4111129")
	if err := dleqVerify("", []*point{gp, yp}, []*point{gpp, ypp}, nil, proof); err != nil {
		t.Errorf("DLEQ verify: %v", err)
	}

	seed := digest([]byte("demo-seed"))
	want("seed", h(seed), "5ea2ed298e3e41687add27d529f52fcd3a13ca6324ab1fdac6262dd8c3226fa4")
	d1 := reduceNonZeroShort(digest(seed, []byte{1}))
	d2 := reduceNonZeroShort(digest(seed, []byte{2}))
	want("d1", sc(d1), "72979750cfc1e12bacbed97aa0a9188096a93da9bd7a761b15ffbd669631fe56")
	want("d2", sc(d2), "7e628e987dadd9ba1b61cd05bd3b62137d7774bdae8f5fb2251e1bec36403fc5")
	eP := must(lin(d1, generator(), d2, rP))
	want("E", xy(eP), "016df049f21e348ff815f69ad8b3a37685956b190726b5041ec84331ecaf4c95"+"a1773cd1a018e9879e4804e8272a6551c3b71d130cd130a0992bab9745151742")
	calls := prov.calls.Load()
	z, err := derive(prov.derive, eP)
	if err != nil {
		t.Fatal(err)
	}
	if prov.calls.Load() != calls+1 {
		t.Error("the challenge response is not one derive")
	}
	want("x(Z)", h(z), "669e8bcc9cd6dac76751664d298014eb97fc07a3edde9cc55be010dc190a02de")
	if !bytes.Equal(xOf(must(lin(d1, gp, d2, rp))), z) {
		t.Error("wallet's x(d1·G' + d2·R') != x(aU·E)")
	}
	h1 := digest(scalarBytes(d1), scalarBytes(d2))
	want("H1", h(h1), "a7f4dfe2bbe8e71000e48c173448c682036a19ed1bbef6ee726a7821998ae492")
	want("H2", h(digest(h1)), "699e43597ffe213e3bde5921b52e7145ac5c2ea9e28dfaa5f161f1820db32b61")
	key, err := hkdf.Key(sha256.New, z, nil, "", 32)
	if err != nil {
		t.Fatal(err)
	}
	want("K", h(key), "ad82cdd0818dd7db81648fcc019cb921d191e5b95b8af62948b431aa6c02cbd1")
	blk, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(blk)
	ct := gcm.Seal(nil, unhex(t, "000102030405060708090a0b"), append(clone(seed), ins...), sn)
	want("C‖T", h(ct), "a011e18a12c282391bd07834590642662c6be1ee15a6578491a413a3a5eabef8cfb1d4fe5d6c9e9e5cd076570bbdc924"+
		"77b9cae21636ffdd3994a0c002335bf185bb07f579")

}

// reduceNonZeroShort is the §4.2 d_i reduction of a 32-byte hash.
func reduceNonZeroShort(b []byte) *scalar { return reduceNonZero(b) }
