package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestUnknownCommandIsUsageError(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runMain([]string{"frobnicate"}, &out, &errb); code != exitUsage {
		t.Fatalf("exit code = %d, want %d", code, exitUsage)
	}
	if !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Fatalf("stderr = %q", errb.String())
	}
}

func TestVersionPrintsStamp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runMain([]string{"version"}, &out, &errb); code != 0 {
		t.Fatalf("exit code = %d, stderr %q", code, errb.String())
	}
	if !strings.HasPrefix(out.String(), "obdgw dev (commit unknown") {
		t.Fatalf("stdout = %q", out.String())
	}
}

func TestHelpListsStoreCommandsAndExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runMain([]string{"help"}, &out, &errb); code != 0 {
		t.Fatalf("exit code = %d", code)
	}
	for _, want := range []string{"  restore ", "  salvage ", "7 the state file", "--new-store"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}
