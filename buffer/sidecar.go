package buffer

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The sidecar "<path>.last" remembers, outside the bbolt file, how far the file had got: its
// incarnation, the bbolt transaction id and the next record sequence after the last commit
// that added a record. bbolt keeps two meta pages and, when the newer one fails its checksum,
// silently opens the older: the last settlement disappears and the next record would reuse
// its sequence number. The sidecar is how Open notices (ErrRolledBack).
//
// It is written only after commits that add records (Append, Requeue, a Tx.Append in Update):
// an Ack that a rollback undid only sends a record again, which receipts de-duplicate.

const sidecarMagic = "obdgw-store-last/1"

// slotSize is the size of one of the sidecar's two slots. After each commit that added
// records, the slot of the transaction's parity is overwritten in place and fdatasynced (one
// small write to an existing block: a third of the cost of a new file renamed over the old,
// measured by BenchmarkAppendGroupCommit). Each slot carries a CRC, and the reader takes the
// newest valid one, so a write torn by a power cut leaves the other, older slot: the sidecar
// may then be one commit behind, which only weakens the check once, never fails a good file.
// The file itself is created whole (temporary file, fsync, rename) when Open starts.
const slotSize = 128

type sidecar struct {
	incarnation string
	txid, next  uint64
}

// SidecarPath is the path of the sidecar of the store file at path.
func SidecarPath(path string) string { return path + ".last" }

func (s sidecar) slot() []byte {
	line := fmt.Sprintf("%s incarnation=%s txid=%d next=%d", sidecarMagic, s.incarnation, s.txid, s.next)
	line += fmt.Sprintf(" crc=%08x", crc32.ChecksumIEEE([]byte(line)))
	b := []byte(line)
	b = append(b, bytes.Repeat([]byte(" "), slotSize-1-len(b))...)
	return append(b, '\n')
}

func parseSlot(b []byte) (s sidecar, ok bool) {
	line := strings.TrimRight(string(b), " \n")
	body, crc, found := strings.Cut(line, " crc=")
	if !found || fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(body))) != crc {
		return s, false
	}
	f := strings.Fields(body)
	if len(f) != 4 || f[0] != sidecarMagic {
		return s, false
	}
	for _, kv := range f[1:] {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "incarnation":
			s.incarnation = v
		case "txid", "next":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return s, false
			}
			if k == "txid" {
				s.txid = n
			} else {
				s.next = n
			}
		default:
			return s, false
		}
	}
	return s, isIncarnation(s.incarnation)
}

// readSidecar reads the sidecar of path, its newest valid slot; ok is false when there is none.
func readSidecar(path string) (s sidecar, ok bool, err error) {
	b, err := os.ReadFile(SidecarPath(path))
	if errors.Is(err, os.ErrNotExist) {
		return s, false, nil
	}
	if err != nil {
		return s, false, err
	}
	found := false
	for i := 0; i+slotSize <= len(b) && i < 2*slotSize; i += slotSize {
		if v, ok := parseSlot(b[i : i+slotSize]); ok && (!found || v.txid > s.txid) {
			s, found = v, true
		}
	}
	if !found {
		return s, true, fmt.Errorf("%s is not a store sidecar (%q)", SidecarPath(path), clipText(string(b)))
	}
	return s, true, nil
}

// createSidecar replaces the sidecar atomically with one holding s in both slots (a
// temporary file, fsynced, renamed over the old one, the directory fsynced) and returns it
// open for writeSlot.
func createSidecar(path string, s sidecar) (*os.File, error) {
	final := SidecarPath(path)
	tmp := final + ".tmp"
	if err := writeSynced(tmp, append(s.slot(), s.slot()...)); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return os.OpenFile(final, os.O_WRONLY, 0)
}

// writeSlot overwrites the slot of s's parity and makes it durable.
func writeSlot(f *os.File, s sidecar) error {
	if _, err := f.WriteAt(s.slot(), int64(s.txid%2)*slotSize); err != nil {
		return err
	}
	return fdatasync(f)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// newIncarnation draws a store incarnation: 8 characters of lowercase base32 from 40 random
// bits (gateway/wire's IncarnationLen; record ids "<gateway>-<incarnation>-<seq>").
func newIncarnation() (string, error) {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("buffer: draw a store incarnation: %w", err)
	}
	return strings.ToLower(base32.StdEncoding.EncodeToString(b[:])), nil
}

func isIncarnation(s string) bool {
	if len(s) != 8 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

func clipText(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
