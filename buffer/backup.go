package buffer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the whole store to w while the store stays in use: one
// read transaction, so the copy is the state after one commit, never half of one. It returns
// the bytes written.
func (db *DB) Backup(w io.Writer) (int64, error) {
	var n int64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("buffer: backup: %w", err)
	}
	return n, nil
}

// BackupFile copies the store file at path into dest while no process has it open (with a
// running gateway, use DB.Backup through it instead: the gateway holds the file's lock). The
// file is opened read-only and not changed.
func BackupFile(path, dest string) (int64, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("buffer: backup: %w", err)
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return 0, fmt.Errorf("buffer: backup: %s is in use by a running gateway: %w", path, ErrLocked)
	}
	if err != nil {
		return 0, fmt.Errorf("buffer: backup: open %s: %w", path, err)
	}
	defer bdb.Close()
	return WriteBackup(dest, func(w io.Writer) (int64, error) {
		var n int64
		err := bdb.View(func(tx *bolt.Tx) error {
			var err error
			n, err = tx.WriteTo(w)
			return err
		})
		return n, err
	})
}

// WriteBackup writes a backup file safely: into a temporary file beside dest (mode 0600: the
// store holds owners' names and phone numbers), fsynced, checked to open as a store whose
// pages are consistent, then renamed to dest. A failure leaves no partial dest.
func WriteBackup(dest string, write func(io.Writer) (int64, error)) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(dest), filepath.Base(dest)+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("buffer: backup: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename this removes nothing
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return 0, fmt.Errorf("buffer: backup: %w", err)
	}
	n, err := write(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("buffer: backup to %s: %w", dest, err)
	}
	if err := verifyBackup(tmp.Name()); err != nil {
		return n, fmt.Errorf("buffer: backup to %s: the copy does not check: %w", dest, err)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return n, fmt.Errorf("buffer: backup: %w", err)
	}
	if d, err := os.Open(filepath.Dir(dest)); err == nil {
		d.Sync()
		d.Close()
	}
	return n, nil
}

// verifyBackup opens a written copy read-only and runs bbolt's page check on it.
func verifyBackup(path string) error {
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer bdb.Close()
	return bdb.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drained whole: the checker blocks until read
			if first == nil {
				first = err
			}
		}
		return first
	})
}
