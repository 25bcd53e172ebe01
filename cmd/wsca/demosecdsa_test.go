package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestDemoSECDSA runs wsca demo secdsa on the soft device (SoftHSM is
// kept for TestDemo: it reads its configuration once per process): every
// step in order, the consent text in the verified record, the record in
// the log, the counter and the lock, and the final OK line.
func TestDemoSECDSA(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	out := cli{t: t, dir: t.TempDir()}.ok("demo", "secdsa", "--device-backend", "soft")
	if left, err := os.ReadDir(tmp); err != nil || len(left) != 0 {
		t.Fatalf("the demo left %v in its temporary directory (%v)", left, err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	steps := []string{"server", "operator", "enrol", "activate", "keygen", "instruction", "execution", "verify record", "verify log", "wrong PIN", "lock"}
	if len(lines) != len(steps)+1 || !strings.HasPrefix(lines[len(lines)-1], "OK: SECDSA demo finished (11 steps)") {
		t.Fatalf("demo output:\n%s", out)
	}
	for i, want := range steps {
		if !strings.HasPrefix(lines[i], strconv.Itoa(i+1)+". "+want+": ") {
			t.Errorf("line %d: %q", i+1, lines[i])
		}
	}
	for i, want := range map[int]string{
		5:  `"Authorize 1.000 Euro to NL02INGB0123456789"`,
		7:  `valid, with no secret`,
		8:  "secdsa_record of the unit",
		9:  "UNAUTHORIZED after the HSM derive (the instruction does not decrypt): server-side counter 1 of 5",
		10: "locked after 5 wrong PINs",
	} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d lacks %q: %q", i+1, want, lines[i])
		}
	}
	if !strings.Contains(lines[7], `additional data "Authorize 1.000 Euro to NL02INGB0123456789"`) || !strings.Contains(lines[8], "consistent with the checkpoint") {
		t.Errorf("verification lines:\n%s\n%s", lines[7], lines[8])
	}
}
