package chaos

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/obdgw/obdgw/gateway/wire"
)

// Report compares what was appended with what the receiver stored.
type Report struct {
	Appended   int // records whose Append returned
	Stored     int // lines in the receiver's output
	Lost       int // appended, never stored
	Duplicated int // ids stored more than once (the receiver's de-duplication failed)
	Reordered  int // stored before an older record of the same kind
	Extra      int // stored, committed by a process killed before it logged the append
	Unknown    int // stored lines that are not records of ours at all
	FirstLost  string
}

func (r Report) String() string {
	return fmt.Sprintf("lost / duplicated / reordered: %d / %d / %d (appended %d, stored %d, committed-but-unlogged %d, unknown %d)",
		r.Lost, r.Duplicated, r.Reordered, r.Appended, r.Stored, r.Extra, r.Unknown)
}

// OK is the only acceptable outcome.
func (r Report) OK() bool {
	return r.Lost == 0 && r.Duplicated == 0 && r.Reordered == 0 && r.Unknown == 0
}

// Check reads the receiver's JSONL output and compares it with the appended entries. An id
// not in appended but of a known gateway is counted Extra (its Append committed, then the
// process died before logging it) — never silently.
func Check(appended []Entry, outPath string) (Report, error) {
	f, err := os.Open(outPath)
	if err != nil {
		return Report{Appended: len(appended)}, err
	}
	defer f.Close()
	var stored [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		stored = append(stored, append([]byte(nil), sc.Bytes()...))
	}
	if err := sc.Err(); err != nil {
		return Report{Appended: len(appended)}, err
	}
	return CheckStored(appended, stored), nil
}

// CheckStored compares the envelopes a receiver stored, in the order a consumer reads them (the
// JSONL file's lines, or a database's rows ORDER BY gateway, incarnation, seq), with the
// appended entries.
func CheckStored(appended []Entry, stored [][]byte) Report {
	rep := Report{Appended: len(appended)}
	want := make(map[string]string, len(appended))
	for _, e := range appended {
		want[e.ID] = e.Kind
	}
	seen := map[string]int{}
	// Sequence numbers are per state file: order is kept per gateway, incarnation and kind.
	lastSeq := map[string]uint64{} // gateway+incarnation+kind → highest seq stored so far
	for _, line := range stored {
		rep.Stored++
		var e wire.Envelope
		if err := json.Unmarshal(line, &e); err != nil {
			rep.Unknown++
			continue
		}
		rid, err := wire.ParseIDOf(e.ID, e.Gateway)
		if err != nil {
			rep.Unknown++
			continue
		}
		seen[e.ID]++
		if seen[e.ID] > 1 {
			rep.Duplicated++
			continue
		}
		if _, ok := want[e.ID]; !ok {
			rep.Extra++
		}
		k := rid.Gateway + "/" + rid.Incarnation + "/" + e.Kind
		if rid.Seq < lastSeq[k] {
			rep.Reordered++
		} else {
			lastSeq[k] = rid.Seq
		}
	}
	for _, e := range appended {
		if seen[e.ID] == 0 {
			rep.Lost++
			if rep.FirstLost == "" {
				rep.FirstLost = e.ID
			}
		}
	}
	return rep
}
