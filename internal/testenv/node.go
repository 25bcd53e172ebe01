package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Node returns the path of node, with the npm packages a test needs
// installed under dir (dir/node_modules/<package>). When either is
// missing, the test is Unavailable as component (WSCA_TEST_REQUIRE),
// told how to install what is missing.
func Node(t testing.TB, component, dir string, packages ...string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		Unavailable(t, component, "node not in PATH")
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	for _, p := range packages {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", p, "package.json")); err != nil {
			Unavailable(t, component, filepath.Join(dir, "node_modules", p)+" missing (run: npm ci --prefix "+dir+")")
		}
	}
	return node
}
