package loop

import (
	"runtime"
	"runtime/debug"
)

// BuildInfo names the dbops build (dbops_build_info, the start log line).
type BuildInfo struct {
	Version, Revision, GoVersion string
}

// ReadBuildInfo completes version (set with -ldflags, may be empty) from
// what the Go toolchain stamped in the binary: the module version and the
// VCS revision ("+dirty" when built from a modified tree).
func ReadBuildInfo(version string) BuildInfo {
	b := BuildInfo{Version: version, Revision: "unknown", GoVersion: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" {
			b.Version = info.Main.Version
		}
		dirty := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && b.Revision != "unknown" {
			b.Revision += "+dirty"
		}
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	return b
}
