package mobile_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"github.com/wsca/wsca/manager/mobile"
)

// TestGobind runs gomobile's own generator (gobind, a tool dependency in
// go.mod) on the package, as `gomobile bind` does before it compiles for
// Android or iOS, and checks that the Java and Objective-C bindings carry
// every exported method: gobind skips what it cannot bind, with a comment.
func TestGobind(t *testing.T) {
	if testing.Short() {
		t.Skip("builds gobind")
	}
	out := t.TempDir()
	cmd := exec.Command("go", "tool", "gobind", "-lang=java,objc", "-outdir", out, ".")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gobind: %v\n%s", err, b)
	}
	java, err := os.ReadFile(filepath.Join(out, "java", "mobile", "Manager.java"))
	if err != nil {
		t.Fatal(err)
	}
	objc, err := os.ReadFile(filepath.Join(out, "src", "gobind", "Mobile.objc.h"))
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), "skipped") {
			for _, l := range strings.Split(string(b), "\n") {
				if strings.Contains(l, "skipped") {
					t.Errorf("%s: %s", filepath.Base(p), strings.TrimSpace(l))
				}
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeOf(&mobile.Manager{})
	for i := range typ.NumMethod() {
		name := typ.Method(i).Name
		r := []rune(name)
		r[0] = unicode.ToLower(r[0])
		javaName := string(r)
		if name == "ECDH" {
			javaName = "ecdh"
		}
		if !strings.Contains(string(java), " "+javaName+"(") {
			t.Errorf("Manager.java has no %s", javaName)
		}
		if !strings.Contains(string(objc), name) {
			t.Errorf("Mobile.objc.h has no %s", name)
		}
	}
}
