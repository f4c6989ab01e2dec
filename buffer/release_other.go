//go:build !linux

package buffer

import bolt "go.etcd.io/bbolt"

// releaseMapped does nothing where MADV_DONTNEED on a shared file mapping is not known to be
// safe; see release_linux.go.
func releaseMapped(*bolt.Tx) error { return nil }
