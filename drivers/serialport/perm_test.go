package serialport

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.bug.st/serial/enumerator"

	"github.com/obdgw/obdgw/hack/testenv"
)

// TestOpenUSBOnPTY resolves a usb:// address through the enumerator to a real pty and opens it.
func TestOpenUSBOnPTY(t *testing.T) {
	pp := testenv.PTY(t)
	fakeList(t, []*enumerator.PortDetails{{Name: pp.SlavePath, IsUSB: true, VID: "0403", PID: "6001", SerialNumber: "A5XK3RJT"}})
	p, err := Open("usb://0403:6001?serial=A5XK3RJT&baud=115200")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if want := pp.SlavePath + "@115200"; p.String() != want {
		t.Errorf("String() = %q, want %q", p.String(), want)
	}
	pp.Master.Write([]byte(">"))
	b := make([]byte, 1)
	if _, err := io.ReadFull(p, b); err != nil || b[0] != '>' {
		t.Errorf("read %q, %v", b, err)
	}
}

// TestOpenPermissionDenied opens a root-only pty as an unprivileged user. The tests run as
// root here, and root ignores file modes, so the check runs in a child process of this test
// binary with its credentials dropped to nobody.
func TestOpenPermissionDenied(t *testing.T) {
	if path := os.Getenv("OBDGW_SERIALPORT_PERM_CHILD"); path != "" {
		_, err := Open(path)
		if !errors.Is(err, ErrPermission) {
			t.Fatalf("Open(%s) as uid %d = %v, want ErrPermission", path, os.Getuid(), err)
		}
		if !strings.Contains(err.Error(), "dialout") {
			t.Fatalf("message %q does not say what to do", err)
		}
		return
	}
	if os.Getenv("OBDGW_QEMU") != "" {
		t.Skip("re-executing the test binary under qemu-user is not supported; TestMapOpenError covers the mapping")
	}
	pp := testenv.PTY(t)
	if err := os.Chmod(pp.SlavePath, 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() != 0 {
		// Dropping privileges needs root; TestMapOpenError covers EACCES everywhere.
		t.Skip("not root: cannot drop privileges to test EACCES on a real device")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The child must be able to read the binary: copy it to a world-readable directory.
	dir, err := os.MkdirTemp("", "obdgw-perm")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "serialport.test")
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestOpenPermissionDenied$", "-test.count=1")
	cmd.Env = append(os.Environ(), "OBDGW_SERIALPORT_PERM_CHILD="+pp.SlavePath)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "PASS") {
		t.Fatalf("child did not run the check:\n%s", out)
	}
}
