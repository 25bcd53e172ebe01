package walletside

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/wsca/wsca"

// serverPackages are what no wallet-side package may depend on: a path
// with tree set also covers the packages below it.
var serverPackages = []struct {
	path string
	tree bool
}{
	{module + "/pin", false}, // pin/profile is shared
	{module + "/store", true},
	{module + "/wscd", true},
	{module + "/device", true},
	{module + "/server", true},
	{module + "/r2ps/dispatch", true},
	{module + "/internal/stack", true},
	{module + "/internal/config", true},
	{module + "/cmd", true},
	{"github.com/jackc/pgx", true},
	{"modernc.org/sqlite", true},
	{"github.com/miekg/pkcs11", true},
	{"database/sql", true},
}

// serverPackage reports whether p is a server package.
func serverPackage(p string) bool {
	for _, s := range serverPackages {
		if p == s.path || s.tree && strings.HasPrefix(p, s.path+"/") {
			return true
		}
	}
	return false
}

// forbidden returns the dependencies of a wallet-side package that it may
// not have: server packages, and module packages not on the list.
func forbidden(deps, wallet []string) []string {
	var bad []string
	for _, d := range deps {
		inModule := d == module || strings.HasPrefix(d, module+"/")
		if serverPackage(d) || inModule && !slices.Contains(wallet, d) {
			bad = append(bad, d)
		}
	}
	return bad
}

func TestServerPackage(t *testing.T) {
	for p, want := range map[string]bool{
		module + "/pin":                  true,
		module + "/pin/profile":          false,
		module + "/pinx":                 false,
		module + "/device":               true,
		module + "/device/pkcs11":        true,
		module + "/devicex":              false,
		module + "/store":                true,
		module + "/wscd":                 true,
		module + "/server":               true,
		module + "/r2ps":                 false,
		module + "/r2ps/client":          false,
		module + "/r2ps/dispatch":        true,
		module + "/internal/stack":       true,
		module + "/internal/stack/x":     true,
		module + "/internal/config":      true,
		module + "/cmd/wsca":             true,
		module + "/ecp256":               false,
		"github.com/jackc/pgx/v5/pgconn": true,
		"modernc.org/sqlite":             true,
		"modernc.org/sqlite/lib":         true,
		"github.com/miekg/pkcs11":        true,
		"database/sql":                   true,
		"github.com/bytemare/opaque":     false,
		"crypto/ecdh":                    false,
	} {
		if got := serverPackage(p); got != want {
			t.Errorf("serverPackage(%s) = %v, want %v", p, got, want)
		}
	}
}

func TestForbidden(t *testing.T) {
	wallet := []string{module + "/r2ps", module + "/r2ps/client"}
	for _, tc := range []struct {
		name string
		deps []string
		want []string
	}{
		{"clean", []string{"fmt", module + "/r2ps", module + "/r2ps/client"}, nil},
		{"server", []string{module + "/r2ps", module + "/pin", "github.com/jackc/pgx/v5"}, []string{module + "/pin", "github.com/jackc/pgx/v5"}},
		{"off the list", []string{module + "/internal/testenv"}, []string{module + "/internal/testenv"}},
	} {
		if got := forbidden(tc.deps, wallet); !slices.Equal(got, tc.want) {
			t.Errorf("%s: forbidden = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// walletPackages reads packages.txt.
func walletPackages(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("packages.txt")
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			pkgs = append(pkgs, line)
		}
	}
	if len(pkgs) == 0 {
		t.Fatal("packages.txt lists no package")
	}
	return pkgs
}

// TestWalletSideImportsNoServerCode lists the dependencies of every
// wallet-side package, for this platform and for js/wasm without cgo, and
// fails on any server package or module package off the list.
func TestWalletSideImportsNoServerCode(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	wallet := walletPackages(t)
	for _, env := range [][]string{
		{"CGO_ENABLED=1"},
		{"CGO_ENABLED=0"},
		{"GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0"},
	} {
		for _, pkg := range wallet {
			t.Run(strings.Join(env, ",")+"/"+strings.TrimPrefix(pkg, module+"/"), func(t *testing.T) {
				cmd := exec.Command(gobin, "list", "-deps", "-f", "{{.ImportPath}}", pkg)
				cmd.Env = append(os.Environ(), env...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr.Bytes())
				}
				deps := strings.Fields(string(out))
				if !slices.Contains(deps, pkg) {
					t.Fatalf("go list -deps %s does not list the package itself: %q", pkg, deps)
				}
				if bad := forbidden(deps, wallet); len(bad) > 0 {
					t.Errorf("%s depends on server code or on module packages that are not wallet-side: %s", pkg, strings.Join(bad, ", "))
				}
			})
		}
	}
}

// browserPackages are what the browser build links; net/http would cost
// its WebAssembly module about 1 MB gzip (docs/benchmarks.md, issue 10), so
// they carry R2PS over the host's fetch.
var browserPackages = []string{module + "/r2ps/client", module + "/manager/jsbridge", module + "/web/wasm"}

// TestBrowserBuildLinksNoNetHTTP lists the js/wasm dependencies of the
// browser build and fails on net/http.
func TestBrowserBuildLinksNoNetHTTP(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	for _, pkg := range browserPackages {
		t.Run(strings.TrimPrefix(pkg, module+"/"), func(t *testing.T) {
			cmd := exec.Command(gobin, "list", "-deps", "-f", "{{.ImportPath}}", pkg)
			cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr.Bytes())
			}
			if slices.Contains(strings.Fields(string(out)), "net/http") {
				t.Errorf("%s links net/http in the browser build", pkg)
			}
		})
	}
}
