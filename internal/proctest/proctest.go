// Package proctest runs the plyrtasks binary as real processes in tests:
// it builds ./cmd/plyrtasks once per test package (from TestMain), starts
// `worker`, `serve` or a CLI command with exactly the environment a test
// gives it (nothing inherited but PATH), captures its logs, sends signals,
// and finds the repository root and the shared tools beside it.
//
//	var bin *proctest.Binary
//	func TestMain(m *testing.M) { os.Exit(proctest.Main(m, &bin)) }
//
//	w := bin.Start(t, "worker-1", env, "worker")
//	w.WaitLog(t, `"msg":"worker started"`, 30*time.Second)
//	w.Kill() // kill -9
//
// Every process started through Start is killed at the end of its test (and,
// through PR_SET_PDEATHSIG, when the test binary dies), and its logs are
// printed when the test failed.
package proctest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary is a built plyrtasks executable.
type Binary struct {
	// Path is the executable's absolute path.
	Path string
}

// Main builds the binary into a temp dir, stores it in *bin, runs the
// tests and removes the dir: the one-liner for TestMain. A build failure
// fails the whole package (exit 1) with the compiler's output.
func Main(m *testing.M, bin **Binary) int {
	dir, err := os.MkdirTemp("", "proctest-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, "proctest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	b, err := Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "proctest:", err)
		return 1
	}
	*bin = b
	return m.Run()
}

// Build compiles ./cmd/plyrtasks of this repository into dir. With
// PROCTEST_RACE=1 the binary is built with -race (slower processes, but a
// data race in the worker fails the scenario that hit it).
func Build(dir string) (*Binary, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "plyrtasks")
	args := []string{"build", "-o", path}
	if os.Getenv("PROCTEST_RACE") == "1" {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/plyrtasks")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/plyrtasks: %w\n%s", err, out)
	}
	return &Binary{Path: path}, nil
}

// RepoRoot is the directory holding go.mod, found by walking up from the
// working directory (a test runs in its package's directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("proctest: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// SharedScript returns the path of ../shared/<rel> beside the repository
// (where CI clones shared/), or skips the test loudly when it is missing.
func SharedScript(tb testing.TB, rel string) string {
	tb.Helper()
	root, err := RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	p := filepath.Join(filepath.Dir(root), "shared", filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("\n"+
			"################################################################\n"+
			"## SKIPPED: %s is missing (%v).\n"+
			"## The shared tools live in ../shared beside the repository;\n"+
			"## without them this scenario is NOT tested.\n"+
			"################################################################", p, err)
	}
	return p
}

// FreeAddr returns a free 127.0.0.1:port.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Env is a process environment: variable → value. Start passes exactly
// these variables (plus PATH and HOME when absent).
type Env map[string]string

// With returns a copy of e with kv (name, value, name, value…) set.
func (e Env) With(kv ...string) Env {
	out := make(Env, len(e)+len(kv)/2)
	for k, v := range e {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func (e Env) list() []string {
	out := make([]string, 0, len(e)+2)
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	if _, ok := e["PATH"]; !ok {
		out = append(out, "PATH="+os.Getenv("PATH"))
	}
	if _, ok := e["HOME"]; !ok {
		out = append(out, "HOME="+os.TempDir())
	}
	return out
}

// Buffer is a bytes.Buffer safe for a process' output and the test to share.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Proc is a running (or exited) plyrtasks process.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	// Env is the environment it was started with.
	Env Env

	logs   Buffer
	exited chan struct{}
	err    error // Wait's result, set before exited closes
}

// Start starts `plyrtasks args...` with env and returns at once. The
// process is killed at the end of the test; when the test failed its logs
// are printed.
func (b *Binary) Start(tb testing.TB, name string, env Env, args ...string) *Proc {
	tb.Helper()
	p := &Proc{Name: name, Env: env, exited: make(chan struct{})}
	p.Cmd = exec.Command(b.Path, args...)
	p.Cmd.Env = env.list()
	p.Cmd.Stdout, p.Cmd.Stderr = &p.logs, &p.logs
	// Die with the test binary, whatever killed it.
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.Cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.exited)
	}()
	tb.Cleanup(func() {
		p.Kill()
		if tb.Failed() {
			tb.Logf("---- logs of %s (%s) ----\n%s", name, strings.Join(args, " "), p.Logs())
		}
	})
	return p
}

// Run runs `plyrtasks args...` to its end (at most timeout) and returns its
// combined output and exit code.
func (b *Binary) Run(tb testing.TB, env Env, timeout time.Duration, args ...string) (string, int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.Path, args...)
	cmd.Env = env.list()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case ctx.Err() != nil:
		tb.Fatalf("plyrtasks %s: still running after %s\n%s", strings.Join(args, " "), timeout, out)
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	default:
		tb.Fatalf("plyrtasks %s: %v", strings.Join(args, " "), err)
	}
	return "", -1
}

// Pid is the process ID.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Logs returns the process' stdout and stderr so far.
func (p *Proc) Logs() string { return p.logs.String() }

// Exited is closed when the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// ExitErr is the process' exit error (nil for status 0); valid once Exited
// is closed.
func (p *Proc) ExitErr() error {
	<-p.exited
	return p.err
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error { return p.Cmd.Process.Signal(sig) }

// Kill sends SIGKILL (kill -9: no drain, no cleanup) and waits for the
// process to be gone.
func (p *Proc) Kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.Cmd.Process.Kill()
	<-p.exited
}

// WaitExit waits at most timeout for the process to exit and returns its
// exit error, or fails the test.
func (p *Proc) WaitExit(tb testing.TB, timeout time.Duration) error {
	tb.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		tb.Fatalf("%s still running after %s", p.Name, timeout)
		return nil
	}
}

// WaitLog waits until the logs contain substr, failing the test after
// timeout or when the process exits first.
func (p *Proc) WaitLog(tb testing.TB, substr string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.Logs(), substr) {
		select {
		case <-p.exited:
			if strings.Contains(p.Logs(), substr) {
				return
			}
			tb.Fatalf("%s exited (%v) before logging %q", p.Name, p.err, substr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s did not log %q within %s", p.Name, substr, timeout)
		}
	}
}

// LogRecords parses the JSON log lines (LOG_FORMAT=json); other lines are
// skipped.
func (p *Proc) LogRecords() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(p.Logs(), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// FindLogs returns the JSON log records whose fields equal every pair of
// match (field name, value as printed by fmt.Sprint).
func (p *Proc) FindLogs(match ...string) []map[string]any {
	var out []map[string]any
next:
	for _, rec := range p.LogRecords() {
		for i := 0; i+1 < len(match); i += 2 {
			if v, ok := rec[match[i]]; !ok || fmt.Sprint(v) != match[i+1] {
				continue next
			}
		}
		out = append(out, rec)
	}
	return out
}

// WaitHTTP polls url until it answers want (at most timeout), failing the
// test otherwise or when p (if not nil) exits first. It returns how long
// it took.
func WaitHTTP(tb testing.TB, p *Proc, url string, want int, timeout time.Duration) time.Duration {
	tb.Helper()
	start := time.Now()
	client := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for time.Since(start) < timeout {
		if p != nil {
			select {
			case <-p.exited:
				tb.Fatalf("%s exited (%v) while waiting for %s to answer %d", p.Name, p.err, url, want)
			default:
			}
		}
		resp, err := client.Get(url)
		if err == nil {
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return time.Since(start)
			}
			last = fmt.Sprintf("HTTP %d %s", resp.StatusCode, strings.TrimSpace(body.String()))
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("%s did not answer %d within %s (last: %s)", url, want, timeout, last)
	return 0
}
