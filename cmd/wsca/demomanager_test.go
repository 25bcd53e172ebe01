package main

import (
	"os"
	"strings"
	"testing"
)

// TestDemoManager runs wsca demo manager on the soft device (SoftHSM is
// kept for TestDemo: it reads its configuration once per process).
func TestDemoManager(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	out := cli{t: t, dir: t.TempDir()}.ok("demo", "manager", "--device-backend", "soft")
	if left, err := os.ReadDir(tmp); err != nil || len(left) != 0 {
		t.Fatalf("the demo left %v in its temporary directory (%v)", left, err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "OK: key manager demo finished (12 steps)") {
		t.Fatalf("demo output:\n%s", out)
	}
	for _, want := range []string{"ReEnrollmentRequired", "softkey refused", `device assurance "software"`, "amr [pop pin]", "by its stored binding", "secdsa signed, verified", "secdsa:"} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo output lacks %q:\n%s", want, out)
		}
	}
}
