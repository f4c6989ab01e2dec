package chaos

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The checker must see every kind of failure it exists to catch.
func TestCheckCountsLostDuplicatedReordered(t *testing.T) {
	line := func(id, kind string) string {
		b, err := Envelope("gw", kind, 1, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Replace(string(b), `"id":""`, `"id":"`+id+`"`, 1)
	}
	appended := []Entry{{"gw-1", "a"}, {"gw-2", "b"}, {"gw-3", "a"}, {"gw-4", "a"}, {"gw-5", "b"}}
	out := strings.Join([]string{
		line("gw-1", "a"),
		line("gw-3", "a"),
		line("gw-2", "b"), // other kind: order across kinds is free
		line("gw-1", "a"), // duplicate
		line("gw-6", "b"), // committed, never logged
		line("gw-5", "b"), // reordered after gw-6 within kind b
		"not json",
	}, "\n") + "\n"
	path := filepath.Join(t.TempDir(), "out.jsonl")
	os.WriteFile(path, []byte(out), 0o644)
	rep, err := Check(appended, path)
	if err != nil {
		t.Fatal(err)
	}
	want := Report{Appended: 5, Stored: 7, Lost: 1, Duplicated: 1, Reordered: 1, Extra: 1, Unknown: 1, FirstLost: "gw-4"}
	if rep != want {
		t.Errorf("report %+v\nwant   %+v", rep, want)
	}
	if rep.OK() {
		t.Error("a report with losses says OK")
	}
	clean := filepath.Join(t.TempDir(), "clean.jsonl")
	os.WriteFile(clean, []byte(line("gw-1", "a")+"\n"+line("gw-2", "b")+"\n"), 0o644)
	if rep, _ := Check(appended[:2], clean); !rep.OK() || rep.String() != "lost / duplicated / reordered: 0 / 0 / 0 (appended 2, stored 2, committed-but-unlogged 0, unknown 0)" {
		t.Errorf("clean run: %v", rep)
	}
}

// A gateway that starts on a new state file numbers its records from 1 again under a new
// incarnation: that is no reordering, while a step back within one incarnation still is.
func TestCheckOrdersPerIncarnation(t *testing.T) {
	line := func(id string) string {
		b, err := Envelope("gw", "a", 1, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Replace(string(b), `"id":""`, `"id":"`+id+`"`, 1)
	}
	ids := []string{"gw-aaaaaaaa-1", "gw-aaaaaaaa-2", "gw-bbbbbbbb-1", "gw-bbbbbbbb-2", "gw-1"}
	var appended []Entry
	var lines []string
	for _, id := range ids {
		appended = append(appended, Entry{id, "a"})
		lines = append(lines, line(id))
	}
	path := filepath.Join(t.TempDir(), "out.jsonl")
	os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	rep, err := Check(appended, path)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Stored != 5 || rep.Unknown != 0 {
		t.Errorf("two incarnations: %v", rep)
	}
	os.WriteFile(path, []byte(line("gw-aaaaaaaa-2")+"\n"+line("gw-aaaaaaaa-1")+"\n"), 0o644)
	if rep, _ := Check(appended[:2], path); rep.Reordered != 1 {
		t.Errorf("a step back within one incarnation: %v", rep)
	}
}
