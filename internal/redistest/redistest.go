package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// Databases is how many logical databases the server has: each Client call
// takes a new one, so tests in one package do not see each other's keys.
// Pub/sub channels are shared across databases: tests that publish should
// use distinct user or game names.
const Databases = 1024

// Options configures a server.
type Options struct {
	AOF bool // append-only file on (appendfsync always), so restarts keep data
}

// Server is one running (or stopped) redis-server.
type Server struct {
	Port int
	Addr string // 127.0.0.1:port

	opts Options
	dir  string

	mu  sync.Mutex
	cmd *exec.Cmd
	// exited is closed when the current process has been waited for.
	exited chan struct{}

	nextDB atomic.Int64
}

// ErrNoRedis says redis-server is not installed.
var ErrNoRedis = errors.New("redis-server not found in PATH: run `make deps` (it installs Debian's redis-server)")

// Start launches a new redis-server on a free loopback port.
func Start(opts Options) (*Server, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, ErrNoRedis
	}
	dir, err := os.MkdirTemp("", "trellis-redis-")
	if err != nil {
		return nil, fmt.Errorf("redistest: temp dir: %w", err)
	}
	s := &Server{opts: opts, dir: dir}
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			lastErr = err
			continue
		}
		s.Port = port
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
	}
	os.RemoveAll(dir)
	return nil, fmt.Errorf("redistest: start redis-server: %w", lastErr)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	args := []string{
		"--port", strconv.Itoa(s.Port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--databases", strconv.Itoa(Databases),
		"--save", "",
		"--logfile", filepath.Join(s.dir, "redis.log"),
		"--protected-mode", "yes",
	}
	if s.opts.AOF {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	cmd, exited, err := launch(s.Port, filepath.Join(s.dir, "redis.log"), args)
	if err != nil {
		return err
	}
	s.cmd, s.exited = cmd, exited
	return nil
}

// launch starts redis-server with args and waits (10 s at most) until it
// answers on 127.0.0.1:port. The process gets SIGKILL when the test binary
// dies (parent-death signal), so a crashed test leaves no redis behind.
// exited is closed once the process has been waited for.
func launch(port int, logPath string, args []string) (cmd *exec.Cmd, exited chan struct{}, err error) {
	cmd = exec.Command("redis-server", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Ask for the process id, not just a PONG: another test binary's
		// redis may have taken the port in between, and would answer.
		info, err := rdb.Info(context.Background(), "server").Result()
		if err == nil {
			if infoField(info, "process_id") == strconv.Itoa(cmd.Process.Pid) {
				return cmd, exited, nil
			}
			err = fmt.Errorf("port %d is served by another redis-server", port)
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			return nil, nil, fmt.Errorf("redis-server on port %d exited: %s", port, tail(log, 400))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return nil, nil, fmt.Errorf("redis-server on port %d not ready after 10s: %w", port, err)
		}
	}
}

// infoField is the value of field in the text of INFO or CLUSTER INFO.
func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Stop shuts the server down the way an operator would (SIGTERM: it saves
// the AOF) and waits for it. The data directory is kept for Restart.
func (s *Server) Stop() error { return s.signal(syscall.SIGTERM) }

// Kill stops the server abruptly (SIGKILL), like a crash.
func (s *Server) Kill() error { return s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
		return nil
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("redis-server on port %d ignored %s for 10s; killed", s.Port, sig)
	}
}

// Restart starts the server again on the same port and data directory.
func (s *Server) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.StartAgain()
}

// StartAgain starts a stopped server on its old port and data directory.
func (s *Server) StartAgain() error {
	var err error
	// The port may linger briefly in the kernel after a kill; retry.
	for range 50 {
		if err = s.start(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("redistest: restart on port %d: %w", s.Port, err)
}

// Close stops the server and removes its data directory.
func (s *Server) Close() error {
	err := s.Kill()
	os.RemoveAll(s.dir)
	return err
}

// URL is a redis:// URL of logical database db.
func (s *Server) URL(db int) string { return fmt.Sprintf("redis://%s/%d", s.Addr, db) }

// NewDB reserves a fresh logical database number (flushed) for one test.
func (s *Server) NewDB(tb testing.TB) int {
	tb.Helper()
	db := int(s.nextDB.Add(1)) % Databases
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, Protocol: 2, DB: db})
	defer rdb.Close()
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		tb.Fatalf("redistest: flush db %d: %v", db, err)
	}
	return db
}

// Client returns a client on a fresh logical database; it is closed when
// the test ends. Timeouts are short so that tests of Redis outages fail fast.
func (s *Server) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	db := s.NewDB(tb)
	rdb := redis.NewClient(&redis.Options{
		Addr:         s.Addr,
		DB:           db,
		Protocol:     2, // as store.Connect: see there
		DialTimeout:  time.Second,
		ReadTimeout:  2 * time.Second,
		WriteTimeout: 2 * time.Second,
		MaxRetries:   1,
		// Fail at once while the server is down (fault tests), and let
		// callers' context deadlines bound every call.
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
	})
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

var (
	sharedMu  sync.Mutex
	shared    *Server
	sharedErr error
)

// Shared returns the package's server, starting it on first use. Without
// redis-server installed the test fails with a message that says how to
// install it.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = Start(Options{})
	}
	if sharedErr != nil {
		tb.Fatalf("redistest: %v", sharedErr)
	}
	return shared
}

// Client is Shared(tb).Client(tb): a fresh database on the package's server.
func Client(tb testing.TB) *redis.Client {
	tb.Helper()
	return Shared(tb).Client(tb)
}

// New starts a server owned by one test (for tests that stop or restart
// it); it is removed when the test ends.
func New(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := Start(opts)
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// Main runs the package's tests, stops the shared server and the shared
// cluster (SharedCluster), and fails the run if goroutines outlive the
// tests.
func Main(m *testing.M) {
	code := m.Run()
	sharedMu.Lock()
	if shared != nil {
		shared.Close()
	}
	sharedMu.Unlock()
	closeSharedCluster()
	// Every goroutine a test started must be stopped by its owner before
	// the test returns; whatever is still running once all tests are done
	// (and every client they made is closed) leaked.
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper")); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines leaked by the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
