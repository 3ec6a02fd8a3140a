package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is the bench's own throwaway redis-server: loopback, no
// persistence, in a temp dir, killed with the bench.
type redisServer struct {
	Addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

func startRedis(ctx context.Context) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("bench: redis-server not found on PATH (apt-get install redis-server)")
	}
	dir, err := os.MkdirTemp("", "plyrtasks-bench-*")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &redisServer{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir, done: make(chan struct{})}
	s.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no",
		"--maxmemory-policy", "noeviction", "--logfile", "redis.log")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("bench: start redis-server: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Ping(ctx).Err()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.done:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("bench: redis-server exited at start (see its log in %s)", filepath.Join(dir, "redis.log"))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("bench: redis-server not ready after 10s: %w", err)
		}
	}
}

func (s *redisServer) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	os.RemoveAll(s.dir)
}

// commandCalls sums the calls of INFO commandstats: every command Redis
// ran, the ones Lua scripts called included (each has its own cmdstat
// line beside cmdstat_evalsha). The bench's own INFO and CONFIG calls are
// left out.
func commandCalls(ctx context.Context, c *redis.Client) (int64, error) {
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, fmt.Errorf("bench: INFO commandstats: %w", err)
	}
	return parseCommandCalls(info)
}

func parseCommandCalls(info string) (int64, error) {
	var total int64
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") || name == "cmdstat_info" || strings.HasPrefix(name, "cmdstat_config") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, err := strconv.ParseInt(calls, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: commandstats line %q: %w", line, err)
		}
		total += n
	}
	return total, nil
}

// countingProxy forwards loopback TCP connections to Redis and counts the
// commands clients send: every RESP array (a pipeline of n commands is n,
// a script call is one, PING and SUBSCRIBE on a Pub/Sub connection count
// too). That is the top-level count, measured without MONITOR and without
// trusting a client library's hooks; INFO commandstats gives the total
// with the commands scripts ran, and the difference is the Lua internals.
type countingProxy struct {
	ln     net.Listener
	target string
	cmds   atomic.Int64
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func newCountingProxy(target string) (*countingProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: proxy: %w", err)
	}
	p := &countingProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is where clients connect.
func (p *countingProxy) Addr() string { return p.ln.Addr().String() }

// Count is the commands sent since the last Reset.
func (p *countingProxy) Count() int64 { return p.cmds.Load() }

// Reset zeroes the count.
func (p *countingProxy) Reset() { p.cmds.Store(0) }

func (p *countingProxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *countingProxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		if p.conns == nil {
			return false
		}
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *countingProxy) serve() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.track(client, true)
		p.track(server, true)
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(client, server)
			client.Close()
		}()
		go func() {
			defer p.wg.Done()
			_ = p.forward(client, server)
			server.Close()
			p.track(client, false)
			p.track(server, false)
		}()
	}
}

// forward copies client → server, counting commands as it parses them.
func (p *countingProxy) forward(client, server net.Conn) error {
	r := bufio.NewReaderSize(client, 64<<10)
	w := bufio.NewWriterSize(server, 64<<10)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
		p.cmds.Add(1)
		if line[0] == '*' {
			n, err := strconv.Atoi(strings.TrimSpace(string(line[1:])))
			if err != nil {
				return fmt.Errorf("bench: proxy: bad array header %q", line)
			}
			for range n {
				hdr, err := r.ReadSlice('\n')
				if err != nil {
					return err
				}
				if _, err := w.Write(hdr); err != nil {
					return err
				}
				size, err := strconv.Atoi(strings.TrimSpace(string(hdr[1:])))
				if err != nil || hdr[0] != '$' {
					return fmt.Errorf("bench: proxy: bad bulk header %q", hdr)
				}
				if _, err := io.CopyN(w, r, int64(size)+2); err != nil {
					return err
				}
			}
		}
		// else an inline command: the line was all of it.
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

// procMemory is a process' resident set and its peak (VmRSS, VmHWM of
// /proc/PID/status), in bytes.
func procMemory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("bench: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("bench: /proc/%d/status %q: %w", pid, line, err)
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm, nil
}
