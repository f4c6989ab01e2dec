package version

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	info := func(v string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/obdgw/obdgw", Version: v}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	for _, c := range []struct {
		name             string
		bi               *debug.BuildInfo
		version, commit  string
		wantVer, wantCom string
	}{
		{"plain go build in a clean checkout", info("(devel)", "vcs.revision", "0123456789abcdef0123", "vcs.modified", "false"),
			"dev", "unknown", "dev", "0123456789ab"},
		{"plain go build with changes", info("(devel)", "vcs.revision", "0123456789abcdef0123", "vcs.modified", "true"),
			"dev", "unknown", "dev", "0123456789ab-dirty"},
		{"go install at a version", info("v1.4.0"), "dev", "unknown", "v1.4.0", "unknown"},
		{"linker stamp wins", info("v1.4.0", "vcs.revision", "fedcba9876543210"), "v2.0.0", "abc1234", "v2.0.0", "abc1234"},
		{"no build info to use", info(""), "dev", "unknown", "dev", "unknown"},
	} {
		v, c2 := fromBuildInfo(c.bi, c.version, c.commit)
		if v != c.wantVer || c2 != c.wantCom {
			t.Errorf("%s: %q %q, want %q %q", c.name, v, c2, c.wantVer, c.wantCom)
		}
	}
}
