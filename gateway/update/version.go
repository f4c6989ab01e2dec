package update

import (
	"crypto/sha256"
	"encoding/binary"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// versionRe is the shape of a release version; it becomes part of a file name.
var versionRe = regexp.MustCompile(`^v(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})(-[0-9A-Za-z.]{1,32})?$`)

// ValidVersion reports whether v is a release version such as v1.2.3 or v1.3.0-rc.1.
func ValidVersion(v string) bool { return versionRe.MatchString(v) }

// Newer reports whether version a is newer than b. A b that is not a release version (a
// development build, "dev") is older than every release.
func Newer(a, b string) bool {
	ma, mb := versionRe.FindStringSubmatch(a), versionRe.FindStringSubmatch(b)
	if ma == nil {
		return false
	}
	if mb == nil {
		return true
	}
	for i := 1; i <= 3; i++ {
		x, _ := strconv.Atoi(ma[i])
		y, _ := strconv.Atoi(mb[i])
		if x != y {
			return x > y
		}
	}
	// A pre-release is older than its release; two pre-releases compare as text.
	pa, pb := strings.TrimPrefix(ma[4], "-"), strings.TrimPrefix(mb[4], "-")
	switch {
	case pa == pb:
		return false
	case pa == "":
		return true
	case pb == "":
		return false
	}
	return pa > pb
}

// InRollout reports whether gateway takes version at percent: the first 4 bytes of
// SHA-256(gateway + version), big-endian, mod 100, below percent. The same gateway gets the
// same answer for a version every time, and a raised percent only adds gateways.
func InRollout(gateway, version string, percent int) bool {
	if percent >= 100 {
		return true
	}
	if percent <= 0 {
		return false
	}
	sum := sha256.Sum256([]byte(gateway + version))
	return int(binary.BigEndian.Uint32(sum[:4])%100) < percent
}

// TargetName is the repository's name of the binary for this build's architecture:
// obdgw-linux-arm64, obdgw-linux-armv7, obdgw-linux-armv6, obdgw-linux-amd64.
func TargetName() string {
	arch := runtime.GOARCH
	if arch == "arm" {
		arm := "7"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "GOARM" && s.Value != "" {
					arm = strings.SplitN(s.Value, ",", 2)[0]
				}
			}
		}
		arch = "armv" + arm
	}
	return "obdgw-" + runtime.GOOS + "-" + arch
}

var targetRe = regexp.MustCompile(`^obdgw-linux-(arm64|armv7|armv6|amd64|386)$`)

// ValidTargetName reports whether name is a binary name the repository may hold.
func ValidTargetName(name string) bool { return targetRe.MatchString(name) }
