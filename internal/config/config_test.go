package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestApplyPrecedence(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a := fs.String("alpha", "default", "")
	b := fs.String("beta-gamma", "default", "")
	c := fs.String("delta", "default", "")
	d := fs.Duration("timeout", time.Second, "")
	if err := fs.Parse([]string{"--alpha", "flag"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"WSCA_ALPHA": "env", "WSCA_BETA_GAMMA": "env", "WSCA_TIMEOUT": "3s"}
	file := map[string]string{"WSCA_BETA_GAMMA": "file", "WSCA_DELTA": "file"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if err := Apply(fs, lookup, file); err != nil {
		t.Fatal(err)
	}
	if *a != "flag" || *b != "env" || *c != "file" || *d != 3*time.Second {
		t.Fatalf("got %s %s %s %v", *a, *b, *c, *d)
	}
}

func TestApplyRejects(t *testing.T) {
	newFS := func() *flag.FlagSet {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.Duration("timeout", time.Second, "")
		fs.Bool("json", false, "")
		return fs
	}
	none := func(string) (string, bool) { return "", false }
	for name, tc := range map[string]struct {
		env, file map[string]string
	}{
		"malformed env duration":  {env: map[string]string{"WSCA_TIMEOUT": "soon"}},
		"malformed env bool":      {env: map[string]string{"WSCA_JSON": "maybe"}},
		"malformed file duration": {file: map[string]string{"WSCA_TIMEOUT": "1 hour"}},
		"unknown file key":        {file: map[string]string{"WSCA_TIMEOUTS": "1s"}},
	} {
		t.Run(name, func(t *testing.T) {
			lookup := none
			if tc.env != nil {
				lookup = func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			}
			if err := Apply(newFS(), lookup, tc.file); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestParseFile(t *testing.T) {
	m, err := parseFile(strings.NewReader("# comment\n\nWSCA_A = 1\nWSCA_B=x=y\n"))
	if err != nil || m["WSCA_A"] != "1" || m["WSCA_B"] != "x=y" || len(m) != 2 {
		t.Fatalf("%v %v", m, err)
	}
	for _, bad := range []string{"A=1\n", "WSCA_A\n", "WSCA_A=1\nWSCA_A=2\n"} {
		if _, err := parseFile(strings.NewReader(bad)); err == nil {
			t.Errorf("parseFile(%q) accepted", bad)
		}
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("data-dir"); got != "WSCA_DATA_DIR" {
		t.Fatal(got)
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add("WSCA_A=1\n# c\nWSCA_B = x\n")
	f.Add("A=1")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseFile(strings.NewReader(s))
		if err != nil {
			return
		}
		for k := range m {
			if !strings.HasPrefix(k, EnvPrefix) {
				t.Fatalf("accepted key %q", k)
			}
		}
	})
}

// TestResolveExplicitDevice: with a device given, the data directory gives
// only the store; it makes no device of its own and leaves SOFTHSM2_CONF.
func TestResolveExplicitDevice(t *testing.T) {
	t.Setenv("SOFTHSM2_CONF", "/unchanged.conf")
	dir := filepath.Join(t.TempDir(), "data")
	r, err := State{DataDir: dir, Device: "soft:/elsewhere", DeviceBackend: "auto"}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if r.DeviceURI != "soft:/elsewhere" || r.StoreDSN != "sqlite:"+filepath.Join(dir, "wsca.db") {
		t.Fatalf("%+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "device.uri")); err == nil {
		t.Fatal("the data directory made a device")
	}
	if os.Getenv("SOFTHSM2_CONF") != "/unchanged.conf" {
		t.Fatal("SOFTHSM2_CONF changed")
	}
}
