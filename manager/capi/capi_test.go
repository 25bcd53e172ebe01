//go:build cgo

package main

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestCProgram builds the C ABI, compiles testdata/smoke.c against it with
// the system's C compiler, runs it and verifies the signature it printed.
func TestCProgram(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a shared library")
	}
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatal("gcc is needed for the C ABI test: ", err)
	}
	dir := t.TempDir()
	lib := filepath.Join(dir, "libwscamanager.so")
	build := exec.Command("go", "build", "-buildmode=c-shared", "-o", lib, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "smoke")
	if out, err := exec.Command(cc, "-Wall", "-Werror", "-o", exe, "testdata/smoke.c", "-I", dir, "-L", dir, "-lwscamanager").CombinedOutput(); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	run := exec.Command(exe, filepath.Join(dir, "state"))
	run.Env = append(os.Environ(), "LD_LIBRARY_PATH="+dir)
	out, err := run.Output()
	if err != nil {
		t.Fatalf("smoke: %v\n%s", err, out)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(l, " ")
		lines[k] = v
	}
	if _, ok := lines["OK"]; !ok {
		t.Fatalf("no OK:\n%s", out)
	}
	var key struct{ KID, PublicJWK string }
	if err := json.Unmarshal([]byte(lines["KEY"]), &key); err != nil {
		t.Fatal(err)
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal([]byte(key.PublicJWK), &jwk); err != nil {
		t.Fatal(err)
	}
	sig, err := hex.DecodeString(lines["SIG"])
	if err != nil || len(sig) != 64 {
		t.Fatalf("signature %q", lines["SIG"])
	}
	digest := make([]byte, 32)
	for i := range digest {
		digest[i] = byte(i)
	}
	if !ecdsa.Verify(jwk.Key.(*ecdsa.PublicKey), digest, new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("the signature the C program got does not verify")
	}
	if !strings.Contains(lines["LIST"], key.KID) || !strings.Contains(lines["REFUSED"], "KEY_NOT_FOUND") {
		t.Fatalf("list %q, refusal %q", lines["LIST"], lines["REFUSED"])
	}
	if bytes.Contains(out, []byte{7, 7, 7, 7}) {
		t.Fatal("the KEK leaked into the output")
	}
}
