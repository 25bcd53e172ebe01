package mobile_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/fido2/ctap2soft"
	"github.com/wsca/wsca/manager/mobile"
)

func kek() []byte { return make([]byte, 32) }

func TestSoftkeyThroughTheFacade(t *testing.T) {
	dir := t.TempDir()
	m, err := mobile.NewManager(dir, kek(), nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := m.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if k.Plugin != "softkey" || k.AMR != "swk" || len(k.KID) != 43 {
		t.Fatalf("key %+v", k)
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal([]byte(k.PublicJWK), &jwk); err != nil {
		t.Fatal(err)
	}
	pub := jwk.Key.(*ecdsa.PublicKey)
	d := sha256.Sum256([]byte("hello"))
	res, err := m.Sign(k.KID, d[:])
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.Verify(pub, d[:], new(big.Int).SetBytes(res.Value[:32]), new(big.Int).SetBytes(res.Value[32:])) {
		t.Fatal("signature does not verify")
	}
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	z, err := m.ECDH(k.KID, peer.PublicKey().Bytes())
	if err != nil || len(z.Value) != 32 {
		t.Fatalf("ECDH: %v", err)
	}
	// Restart: the binding is kept.
	m, err = mobile.NewManager(dir, kek(), nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := m.ListKeys()
	if err != nil || l.Len() != 1 || l.Get(0).KID != k.KID || l.Get(1) != nil {
		t.Fatalf("ListKeys after restart: %v", err)
	}
	props, err := m.Properties(k.KID)
	if err != nil || !strings.Contains(props, `"key_storage":"software"`) {
		t.Fatalf("properties %s, %v", props, err)
	}
	if err := m.DeleteKey(k.KID); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		err  error
		code string
	}{
		{"sign with a deleted key", second(m.Sign(k.KID, d[:])), mobile.CodeKeyNotFound},
		{"malformed kid", second(m.Sign("nope", d[:])), mobile.CodeInvalidInput},
		{"short digest", second(m.Sign(k.KID, d[:5])), mobile.CodeInvalidInput},
		{"bad peer", second(m.ECDH(k.KID, []byte{4, 1, 2})), mobile.CodeInvalidInput},
		{"unknown plugin", second(m.GenerateKey(&mobile.GenerateRequest{Plugin: "fido"})), mobile.CodeNoPlugin},
		{"requirement nobody meets", second(m.GenerateKey(&mobile.GenerateRequest{KeyStorage: "iso_18045_high"})), mobile.CodeNoEligiblePlugin},
		{"enrol without R2PS", m.Enrol("r2ps", "code"), mobile.CodeNoPlugin},
		{"R2PS without keys", m.RegisterR2PS(&mobile.R2PSConfig{URL: "http://127.0.0.1:1", Unit: "u"}), mobile.CodeInvalidInput},
	}
	for _, c := range cases {
		var e *mobile.Error
		if !errors.As(c.err, &e) || e.Code != c.code || !strings.HasPrefix(e.Error(), c.code+": ") {
			t.Errorf("%s: %v, want code %s", c.name, c.err, c.code)
		}
	}
	if _, err := mobile.NewManager(t.TempDir(), make([]byte, 16), nil); err == nil {
		t.Fatal("a 16-byte KEK was accepted")
	}
}

func second[T any](_ T, err error) error { return err }

// gomobile binds only some types. Every exported function, method and
// struct field of the package must use them: basic types, []byte, error,
// pointers to the package's exported structs and its exported interfaces.
func TestOnlyGomobileTypes(t *testing.T) {
	fset := token.NewFileSet()
	var files []*ast.File
	ents, _ := os.ReadDir(".")
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".go") && !strings.HasSuffix(e.Name(), "_test.go") {
			f, err := parser.ParseFile(fset, e.Name(), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
	}
	local := map[string]bool{}
	for _, f := range files {
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok {
				for _, s := range g.Specs {
					if ts, ok := s.(*ast.TypeSpec); ok && ts.Name.IsExported() {
						local[ts.Name.Name] = true
					}
				}
			}
		}
	}
	basic := map[string]bool{"string": true, "bool": true, "int": true, "int32": true, "int64": true, "float64": true, "error": true, "byte": true}
	ok := func(e ast.Expr) bool {
		switch x := e.(type) {
		case *ast.Ident:
			return basic[x.Name] || local[x.Name]
		case *ast.ArrayType:
			id, isID := x.Elt.(*ast.Ident)
			return x.Len == nil && isID && id.Name == "byte"
		case *ast.StarExpr:
			id, isID := x.X.(*ast.Ident)
			return isID && local[id.Name]
		}
		return false
	}
	check := func(where string, fl *ast.FieldList) {
		if fl == nil {
			return
		}
		isStruct := strings.HasPrefix(where, "field of ")
		for _, f := range fl.List {
			if isStruct && len(f.Names) > 0 && !f.Names[0].IsExported() {
				continue // unexported struct field
			}
			if !ok(f.Type) {
				t.Errorf("%s: type %s cannot be bound by gomobile", where, types(fset, f.Type))
			}
		}
	}
	for _, f := range files {
		for _, d := range f.Decls {
			switch x := d.(type) {
			case *ast.FuncDecl:
				if !x.Name.IsExported() {
					continue
				}
				if x.Recv != nil {
					star, _ := x.Recv.List[0].Type.(*ast.StarExpr)
					if star == nil {
						continue
					}
					if id, _ := star.X.(*ast.Ident); id == nil || !id.IsExported() {
						continue
					}
				}
				check("func "+x.Name.Name, x.Type.Params)
				check("func "+x.Name.Name, x.Type.Results)
			case *ast.GenDecl:
				for _, s := range x.Specs {
					ts, isType := s.(*ast.TypeSpec)
					if !isType || !ts.Name.IsExported() {
						continue
					}
					switch tt := ts.Type.(type) {
					case *ast.StructType:
						check("field of "+ts.Name.Name, tt.Fields)
					case *ast.InterfaceType:
						for _, m := range tt.Methods.List {
							if ft, isF := m.Type.(*ast.FuncType); isF {
								check("func "+ts.Name.Name+"."+m.Names[0].Name, ft.Params)
								check("func "+ts.Name.Name+"."+m.Names[0].Name, ft.Results)
							}
						}
					}
				}
			}
		}
	}
}

func types(fset *token.FileSet, e ast.Expr) string {
	var b strings.Builder
	_ = printer.Fprint(&b, fset, e)
	return b.String()
}

// device adapts the test authenticator to the facade's transport, as an
// app's NFC or USB code would.
type device struct{ a *ctap2soft.Authenticator }

func (d device) Ctap2Send(cmd []byte) ([]byte, error) {
	return d.a.Ctap2Send(context.Background(), cmd)
}

func TestFIDO2ThroughTheFacade(t *testing.T) {
	dir := t.TempDir()
	dev := device{ctap2soft.New(ctap2soft.Options{})}
	m, err := mobile.NewManager(dir, kek(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterFIDO2(&mobile.FIDO2Config{}, dev); err == nil {
		t.Fatal("a FIDO2 WSCD without an RP id was registered")
	}
	if err := m.RegisterFIDO2(&mobile.FIDO2Config{RPID: "wallet.example"}, dev); err != nil {
		t.Fatal(err)
	}
	k, err := m.GenerateKey(&mobile.GenerateRequest{Plugin: "fido2"})
	if err != nil {
		t.Fatal(err)
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal([]byte(k.PublicJWK), &jwk); err != nil {
		t.Fatal(err)
	}
	pub := jwk.Key.(*ecdsa.PublicKey)
	d := sha256.Sum256([]byte("hello"))
	var me *mobile.Error
	if _, err := m.Sign(k.KID, d[:]); !errors.As(err, &me) || me.Code != mobile.CodeAssertionOnly {
		t.Fatalf("Sign with a FIDO2 key: %v, want %s", err, mobile.CodeAssertionOnly)
	}
	a, err := m.SignAssertion(k.KID, d[:])
	if err != nil {
		t.Fatal(err)
	}
	ma := manager.Assertion{CredentialID: a.CredentialID, AuthenticatorData: a.AuthenticatorData,
		ClientDataJSON: a.ClientDataJSON, Signature: a.Signature}
	if err := ma.Verify(pub, d[:]); err != nil || a.Plugin != "fido2" {
		t.Fatalf("assertion: %v (plugin %q)", err, a.Plugin)
	}
	// Restart: the key and its record are kept.
	m, err = mobile.NewManager(dir, kek(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterFIDO2(&mobile.FIDO2Config{RPID: "wallet.example"}, dev); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SignAssertion(k.KID, d[:]); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
}

// A plugin id names a directory in the state directory: one that is not a
// plain name is refused before any path is made from it.
func TestPluginIDIsAPlainName(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "a", "b")
	m, err := mobile.NewManager(dir, kek(), nil)
	if err != nil {
		t.Fatal(err)
	}
	dev := device{ctap2soft.New(ctap2soft.Options{})}
	for _, id := range []string{"x/../../../escape", "../escape", "a/b", `a\b`, "..", strings.Repeat("a", 65)} {
		var me *mobile.Error
		if err := m.RegisterFIDO2(&mobile.FIDO2Config{ID: id, RPID: "wallet.example"}, dev); !errors.As(err, &me) || me.Code != mobile.CodeInvalidInput {
			t.Errorf("RegisterFIDO2 id %q: %v, want %s", id, err, mobile.CodeInvalidInput)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "escape")); err == nil {
		t.Error("a directory was made outside the state directory")
	}
}
