package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/obdgw/obdgw/hack/testenv"
)

// Server is a running PostgreSQL owned by one test.
type Server struct {
	Port         int
	Dir          string // data directory, socket, log
	User         string // the superuser, "obdgw"
	Password     string
	PasswordFile string // the password in a mode 0600 file (owned by the test's user)
	Database     string // "obdgw"

	t     testing.TB
	bin   string
	cred  *syscall.Credential // nil unless the test runs as root
	data  string
	log   string
	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}
	owner [2]int // uid, gid of the data directory's owner
}

// binDir finds the newest /usr/lib/postgresql/<version>/bin holding initdb and postgres.
func binDir(t testing.TB) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	names := []string{"postgres"}
	for _, d := range dirs {
		names = append(names, d)
	}
	return filepath.Dir(testenv.Program(t, "postgresql", names...))
}

func version(path string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return v
}

// Start runs initdb and starts the server, which is stopped (and its directory removed) when
// the test ends. It skips (or fails in CI) when PostgreSQL is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := binDir(t)
	for _, p := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, p)); err != nil {
			t.Fatalf("pgtest: %s next to postgres: %v", p, err)
		}
	}
	// Not t.TempDir: its parent is private to the test's user, and as root the server runs as
	// another one.
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	pw := make([]byte, 12)
	rand.Read(pw)
	s := &Server{Dir: dir, User: "obdgw", Password: hex.EncodeToString(pw), Database: "obdgw", t: t, bin: bin,
		data: filepath.Join(dir, "data"), log: filepath.Join(dir, "postgres.log"), owner: [2]int{os.Getuid(), os.Getgid()}}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("pgtest: running as root, and initdb refuses root: need the user postgres (Debian package postgresql creates it): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		s.owner = [2]int{uid, gid}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	s.PasswordFile = filepath.Join(t.TempDir(), "pgpassword")
	if err := os.WriteFile(s.PasswordFile, []byte(s.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// initdb reads the superuser's password from a file the server's user can read.
	initPW := filepath.Join(dir, "initpw")
	if err := os.WriteFile(initPW, []byte(s.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chown(initPW, s.owner[0], s.owner[1])
	init := s.command(filepath.Join(bin, "initdb"), "-D", s.data, "-U", s.User, "--pwfile", initPW,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	os.Remove(initPW)
	s.Port = freePort(t)
	s.Start()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("pgtest: postgres log (tail):\n%s", s.LogTail(40))
		}
	})
	conn := s.connect(context.Background(), "postgres")
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE "+s.Database); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return s
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.Dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

// URL is a connection URL for the database without the password (pass it in a file, or with
// URLWithPassword): postgres://obdgw@127.0.0.1:port/obdgw?sslmode=disable.
func (s *Server) URL() string {
	return "postgres://" + s.User + "@127.0.0.1:" + strconv.Itoa(s.Port) + "/" + s.Database + "?sslmode=disable"
}

// URLWithPassword is URL with the password in it, for the test's own connections.
func (s *Server) URLWithPassword() string { return s.urlFor(s.Database) }

func (s *Server) urlFor(db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(s.User, s.Password), Host: "127.0.0.1:" + strconv.Itoa(s.Port),
		Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// Conn opens a connection to the test database, closed when the test ends.
func (s *Server) Conn(t testing.TB) *pgx.Conn {
	t.Helper()
	c := s.connect(t.Context(), s.Database)
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func (s *Server) connect(ctx context.Context, db string) *pgx.Conn {
	s.t.Helper()
	c, err := pgx.Connect(ctx, s.urlFor(db))
	if err != nil {
		s.t.Fatalf("pgtest: connect: %v", err)
	}
	return c
}

// Start (re)starts the server on its port and waits until it accepts connections.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatalf("pgtest: server already running")
	}
	cmd := s.command(filepath.Join(s.bin, "postgres"), "-D", s.data, "-p", strconv.Itoa(s.Port), "-k", s.Dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "logging_collector=off", "-c", "max_connections=40",
		"-c", "shared_buffers=16MB")
	lf, err := os.OpenFile(s.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer lf.Close()
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("pgtest: start postgres: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The server accepts TCP before it accepts sessions: ask for one.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, s.urlFor("postgres"))
		cancel()
		if err == nil {
			c.Close(context.Background())
			break
		}
		select {
		case <-done:
			s.t.Fatalf("pgtest: postgres exited at start: %s\n%s", cmd.ProcessState, s.LogTail(20))
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			s.t.Fatalf("pgtest: postgres does not accept sessions on %d: %v\n%s", s.Port, err, s.LogTail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.cmd, s.done = cmd, done
}

// Kill sends SIGKILL to the server and its backends and waits for the server to end.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

// Stop shuts the server down fast (SIGINT), idempotent.
func (s *Server) Stop() { s.signal(syscall.SIGINT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	// The server's processes each run in their own session (postgres calls setsid), so a
	// killed server's backends are found by parent and killed with it: alive, they hold its
	// shared memory, and a new server refuses to start.
	children := childrenOf(s.cmd.Process.Pid)
	s.cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL {
		for _, c := range children {
			syscall.Kill(c, syscall.SIGKILL)
		}
	}
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		alive := false
		for _, c := range children {
			alive = alive || running(c)
		}
		if !alive {
			break
		}
	}
	s.cmd, s.done = nil, nil
}

// childrenOf lists the processes whose parent is pid (Linux /proc).
func childrenOf(pid int) []int {
	var out []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, st := range stats {
		b, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			c, _ := strconv.Atoi(filepath.Base(filepath.Dir(st)))
			out = append(out, c)
		}
	}
	return out
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// LogTail returns the last n lines of the server's log.
func (s *Server) LogTail(n int) string {
	data, _ := os.ReadFile(s.log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
