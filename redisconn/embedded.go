package redisconn

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
)

// DefaultEmbeddedAddr is where Embedded listens when addr is empty: a free
// loopback port.
const DefaultEmbeddedAddr = "127.0.0.1:0"

// ttlTick is how often the embedded server's key TTLs advance.
const ttlTick = 250 * time.Millisecond

// EmbeddedServer is the in-memory Redis (miniredis v2) plyrtasks runs when
// REDIS_URL is unset. It listens on a loopback TCP port, so the dashboard,
// the CLI and other local processes reach it like any Redis. Nothing is
// durable: its data is gone when the process exits.
//
// Two things differ from plain miniredis, both needed by asynq:
//
//   - Key TTLs run in real time. miniredis only decrements TTLs when told to
//     (FastForward), as suits unit tests; asynq relies on expiry for server
//     and worker records (shown in the dashboard, gone 10 s after a server
//     stops), unique-task locks (UniqueFor) and daily statistics, so a
//     background loop fast-forwards by the elapsed wall time every 250 ms.
//   - INFO without a section answers with the fields asynqmon's Redis page
//     reads (version, mode, port, uptime, clients, memory), where miniredis
//     would answer with two sections only.
//
// Every command asynq v0.26.0's Client, Server and Inspector send runs on
// miniredis v2.40.0 (Lua scripts included); redisconn's tests prove it with
// one-off, delayed, retried and periodic tasks and the Inspector calls
// asynqmon makes.
type EmbeddedServer struct {
	m       *miniredis.Miniredis
	addr    string
	started time.Time

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// Embedded starts the in-memory Redis on addr, which must be a loopback
// address ("" means DefaultEmbeddedAddr, a free port): it has no password,
// so it is never exposed beyond this machine. Close stops it.
func Embedded(ctx context.Context, addr string) (*EmbeddedServer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if addr == "" {
		addr = DefaultEmbeddedAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("embedded redis: bad address %q: want host:port", addr)
	}
	if !isLoopbackHost(host) {
		return nil, fmt.Errorf("embedded redis: address %q is not loopback: the in-memory Redis has no password and listens on 127.0.0.1/::1/localhost only", addr)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr(net.JoinHostPort(host, port)); err != nil {
		return nil, fmt.Errorf("embedded redis: listen on %s: %w", addr, err)
	}
	e := &EmbeddedServer{
		m:       m,
		addr:    m.Addr(),
		started: time.Now(),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	m.Server().SetPreHook(e.info)
	go e.runClock()
	return e, nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// runClock advances miniredis' TTLs by the wall time elapsed since the last
// tick, so keys expire as they would on a real Redis (within ttlTick).
func (e *EmbeddedServer) runClock() {
	defer close(e.done)
	t := time.NewTicker(ttlTick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-e.stop:
			return
		case now := <-t.C:
			e.m.FastForward(now.Sub(last))
			last = now
		}
	}
}

// info answers INFO (no section, "server", "default", "all" or
// "everything") with the fields asynqmon shows; anything else goes on to
// miniredis.
func (e *EmbeddedServer) info(c *server.Peer, cmd string, args ...string) bool {
	if cmd != "INFO" || len(args) > 1 {
		return false
	}
	if len(args) == 1 {
		switch strings.ToLower(args[0]) {
		case "server", "default", "all", "everything":
		default:
			return false
		}
	}
	up := time.Since(e.started)
	_, port, _ := net.SplitHostPort(e.addr)
	lines := []string{
		"# Server",
		"redis_version:miniredis-v2 (embedded, in-memory, not durable)",
		"redis_mode:standalone",
		"tcp_port:" + port,
		"uptime_in_seconds:" + strconv.Itoa(int(up.Seconds())),
		"uptime_in_days:" + strconv.Itoa(int(up.Hours()/24)),
		"",
		"# Clients",
		"connected_clients:" + strconv.Itoa(e.m.Server().ClientsLen()),
		"",
		"# Memory",
		"used_memory_human:n/a",
		"used_memory_peak_human:n/a",
		"mem_fragmentation_ratio:n/a",
		"maxmemory_policy:noeviction",
		"",
		"# Persistence",
		"aof_enabled:0",
		"rdb_changes_since_last_save:0",
		"",
		"# Stats",
		"total_connections_received:" + strconv.Itoa(e.m.Server().TotalConnections()),
		"total_commands_processed:" + strconv.Itoa(e.m.Server().TotalCommands()),
		"",
	}
	c.WriteBulk(strings.Join(lines, "\r\n"))
	return true
}

// Addr is the host:port the server listens on.
func (e *EmbeddedServer) Addr() string { return e.addr }

// URL is a redis:// URL for the server's database 0, for other processes
// (CLI, a second worker on the same machine).
func (e *EmbeddedServer) URL() string { return "redis://" + e.addr + "/0" }

// Spec is the parsed URL.
func (e *EmbeddedServer) Spec() Spec {
	return Spec{Mode: Single, Addrs: []string{e.addr}}
}

// Close stops the server and drops all its data. It is safe to call more
// than once.
func (e *EmbeddedServer) Close() error {
	e.closeOnce.Do(func() {
		close(e.stop)
		<-e.done
		e.m.Close()
	})
	return nil
}
