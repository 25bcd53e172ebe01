package config

import "runtime/debug"

// Version is the version a command reports: stamped, the value the
// Makefile's build sets with -ldflags "-X main.version=$(git describe)",
// when not empty; else the main module's version from the build info
// (go install m@v, or the VCS tag Go stamps into a build from a
// checkout); else the VCS revision the build info records; else "dev".
func Version(stamped string) string {
	if stamped != "" {
		return stamped
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	return versionFrom(bi)
}

func versionFrom(bi *debug.BuildInfo) string {
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return "dev"
	}
	return "rev-" + rev[:min(12, len(rev))] + dirty
}
