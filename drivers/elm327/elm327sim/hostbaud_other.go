//go:build !linux

package elm327sim

import "os"

// PTYHostBaud returns nil where the rate a pty's host set cannot be read: the simulator then
// answers at any rate.
func PTYHostBaud(master *os.File) func() int { return nil }
