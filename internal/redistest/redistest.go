// Package redistest starts throwaway redis-server processes for tests: one
// per package (from TestMain) or per test, on a free loopback port, with AOF
// in a temp dir where durability is tested, killed afterwards.
//
// Tests share one server per package and isolate themselves by database
// number (DB hands out a fresh one, flushed at cleanup), so they can run in
// parallel without seeing each other's keys.
package redistest

import (
	"bufio"
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
)

// Options configure a server.
type Options struct {
	// AOF turns on appendonly with appendfsync always: what survives a
	// restart is exactly what was acknowledged.
	AOF bool
	// Dir holds the server's files; a new temp dir when empty.
	Dir string
	// Port to bind; a free one when 0.
	Port int
	// Args are extra redis-server arguments ("--maxmemory", "10mb").
	Args []string
}

// Server is a running redis-server.
type Server struct {
	Addr string
	Port int
	Dir  string
	opts Options

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	nextDB atomic.Int32
	ownDir bool
}

// Binary returns the redis-server path or an error explaining how to get it.
func Binary() (string, error) {
	if p := os.Getenv("REDIS_SERVER_BIN"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errors.New("redis-server not found on PATH: apt-get install redis-server (or set REDIS_SERVER_BIN)")
	}
	return p, nil
}

// Start starts a server for one test and stops it at cleanup. It fails the
// test when redis-server is missing: the suite depends on a real Redis.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.Dir == "" {
		opts.Dir = tb.TempDir()
	}
	s, err := New(opts)
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// New starts a server; the caller stops it (TestMain).
func New(opts Options) (*Server, error) {
	s := &Server{opts: opts, Dir: opts.Dir}
	if s.Dir == "" {
		d, err := os.MkdirTemp("", "redistest-*")
		if err != nil {
			return nil, fmt.Errorf("temp dir: %w", err)
		}
		s.Dir, s.ownDir = d, true
	}
	s.Port = opts.Port
	if s.Port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		s.Port = p
	}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// MustMain is the one-liner for TestMain: it starts a package server, runs
// the tests and stops it. srv receives the server before the tests run.
func MustMain(m *testing.M, srv **Server) int {
	s, err := New(Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "redistest:", err)
		return 1
	}
	*srv = s
	code := m.Run()
	s.Stop()
	return code
}

func (s *Server) start() error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	args := []string{
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--dir", s.Dir,
		"--save", "", "--databases", "1024", "--protected-mode", "no",
		"--maxmemory-policy", "noeviction", "--logfile", "redis.log",
	}
	if s.opts.AOF {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	args = append(args, s.opts.Args...)
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited at start: %s", s.logTail())
		default:
		}
		c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
		err := c.Ping(context.Background()).Err()
		_ = c.Close()
		if err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.kill(syscall.SIGKILL)
	return fmt.Errorf("redis-server on %s not ready after 10s: %s", s.Addr, s.logTail())
}

func (s *Server) logTail() string {
	f, err := os.Open(filepath.Join(s.Dir, "redis.log"))
	if err != nil {
		return "(no log)"
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 10 {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// URL is a redis:// URL for database db.
func (s *Server) URL(db int) string { return fmt.Sprintf("redis://%s/%d", s.Addr, db) }

// DB hands out a database number no other test of this server uses, flushed
// at cleanup.
func (s *Server) DB(tb testing.TB) int {
	tb.Helper()
	db := int(s.nextDB.Add(1))
	if db >= 1024 {
		tb.Fatalf("redistest: out of databases")
	}
	tb.Cleanup(func() {
		c := redis.NewClient(&redis.Options{Addr: s.Addr, DB: db})
		defer c.Close()
		_ = c.FlushDB(context.Background()).Err()
	})
	return db
}

// Client returns a client for database db, closed at cleanup.
func (s *Server) Client(tb testing.TB, db int) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, DB: db})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop terminates the server and waits for it; it removes a temp dir it made.
func (s *Server) Stop() {
	s.kill(syscall.SIGTERM)
	if s.ownDir {
		_ = os.RemoveAll(s.Dir)
	}
}

// Kill sends SIGKILL (a crash: nothing flushed beyond what AOF already has).
func (s *Server) Kill() { s.kill(syscall.SIGKILL) }

func (s *Server) kill(sig syscall.Signal) {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Restart stops the server (SIGTERM, or SIGKILL when crash is true) and
// starts it again on the same port and dir, so AOF data comes back.
func (s *Server) Restart(crash bool) error {
	if crash {
		s.Kill()
	} else {
		s.kill(syscall.SIGTERM)
	}
	return s.start()
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
