package config

import (
	"runtime/debug"
	"testing"
)

func TestVersion(t *testing.T) {
	if got := Version("v1.2.3-4-gabcdef"); got != "v1.2.3-4-gabcdef" {
		t.Errorf("stamped version: %q", got)
	}
	if got := Version(""); got == "" {
		t.Error("empty version without a stamp")
	}
	rev := []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}}
	for _, tc := range []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"module version", debug.BuildInfo{Main: debug.Module{Version: "v0.4.0"}, Settings: rev}, "v0.4.0"},
		{"revision", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: rev}, "rev-0123456789ab"},
		{"dirty revision", debug.BuildInfo{Settings: append(rev, debug.BuildSetting{Key: "vcs.modified", Value: "true"})}, "rev-0123456789ab-dirty"},
		{"nothing", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev"},
	} {
		if got := versionFrom(&tc.bi); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
