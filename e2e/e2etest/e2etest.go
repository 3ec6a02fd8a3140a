// Package e2etest runs the real plyrtasks binary for end-to-end tests: it
// builds cmd/plyrtasks, starts `plyrtasks serve` on embedded defaults (no
// REDIS_URL, no DATABASE_URL: the in-memory Redis and SQLite under a temporary
// DATA_DIR) on a free loopback port, captures everything the process writes,
// and stops it with SIGTERM as an operator would.
//
//	bin := e2etest.Build(t)
//	p := e2etest.Start(t, bin, e2etest.Env(t.TempDir(), e2etest.FreeAddr(t), "LOG_FORMAT=json"), "serve")
//	p.WaitReady(t)
//	… drive p.Base over HTTP, run the CLI with e2etest.RunCLI …
//	p.Stop(t)
//	logs := p.Logs.Bytes()
//
// The packages under e2e/ use it; cmd/plyrtasks has its own copy of the
// basics because it is package main.
package e2etest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/internal/logcheck"
)

// Bounds of waiting on the process. Generous: two cores are shared by every
// test package that runs at the same time.
const (
	// ReadyTimeout bounds how long WaitReady waits for /readyz.
	ReadyTimeout = 60 * time.Second
	// StopTimeout bounds how long Stop waits after SIGTERM; the process's
	// own worst case is SHUTDOWN_TIMEOUT + 1.5 × TASK_CHECK_INTERVAL.
	StopTimeout = 40 * time.Second
)

// Package is the import path of the binary under test.
const Package = "github.com/plyr-fm/plyrtasks/cmd/plyrtasks"

// Build compiles cmd/plyrtasks into a temporary directory and returns the
// binary's path. It fails the test when the build fails.
func Build(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "plyrtasks")
	out, err := exec.Command("go", "build", "-o", bin, Package).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", Package, err, out)
	}
	return bin
}

// FreeAddr returns a loopback host:port nothing listens on right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Env is the complete environment of a process on embedded defaults:
// PATH, HOME and DATA_DIR set to dataDir, HTTP_ADDR set to addr, a short
// TASK_CHECK_INTERVAL so tasks start promptly, then extra ("NAME=value"),
// which may override any of them. Nothing else of the test's environment
// leaks in (no REDIS_URL, no DATABASE_URL).
func Env(dataDir, addr string, extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dataDir,
		"DATA_DIR=" + dataDir,
		"HTTP_ADDR=" + addr,
		"TASK_CHECK_INTERVAL=100ms",
	}
	return append(env, extra...)
}

// Proc is a running plyrtasks process.
type Proc struct {
	// Base is the process's HTTP base URL, from HTTP_ADDR.
	Base string
	// Logs is everything the process wrote, stdout and stderr together.
	Logs *logcheck.Buffer

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // valid once exited is closed
}

// Start runs bin with args and env (Env builds one; its HTTP_ADDR gives
// Base). The process is killed when the test ends if it still runs, and its
// logs are printed when the test failed.
func Start(t testing.TB, bin string, env []string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Logs: &logcheck.Buffer{}, exited: make(chan struct{})}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "HTTP_ADDR="); ok {
			p.Base = "http://" + v
		}
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.Logs, p.Logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s %v: %v", bin, args, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("plyrtasks %v logs:\n%s", args, p.Logs.Bytes())
		}
	})
	return p
}

// WaitReady waits until /readyz answers 200, failing the test when the
// process exits first or ReadyTimeout passes.
func (p *Proc) WaitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(ReadyTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			t.Fatalf("plyrtasks exited before it was ready: %v", p.err)
		default:
		}
		if resp, err := http.Get(p.Base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("plyrtasks not ready after %s", ReadyTimeout)
}

// Stop sends SIGTERM and waits for the process to exit, failing the test
// when it exits with an error or does not exit within StopTimeout.
func (p *Proc) Stop(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			t.Fatalf("plyrtasks exited with %v after SIGTERM", p.err)
		}
	case <-time.After(StopTimeout):
		t.Fatalf("plyrtasks did not stop within %s of SIGTERM", StopTimeout)
	}
}

// RunCLI runs bin with args and env, and returns its combined output and
// exit code. It fails the test only when the binary cannot run at all.
func RunCLI(t testing.TB, bin string, env []string, stdin io.Reader, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	}
	t.Fatalf("run plyrtasks %v: %v", args, err)
	return "", -1
}

// Request is one HTTP request to the process, with optional basic auth
// (User non-empty) or bearer token.
type Request struct {
	Method string // default GET
	Path   string // appended to Base
	Body   string // sent as application/json when not empty
	User   string
	Pass   string
	Token  string
}

// Do sends r and returns the status code and body. Transport errors fail
// the test.
func (p *Proc) Do(t testing.TB, r Request) (int, string) {
	t.Helper()
	if r.Method == "" {
		r.Method = http.MethodGet
	}
	var body io.Reader
	if r.Body != "" {
		body = strings.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(t.Context(), r.Method, p.Base+r.Path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.Body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.User != "" {
		req.SetBasicAuth(r.User, r.Pass)
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", r.Method, r.Path, err)
	}
	return resp.StatusCode, string(b)
}
