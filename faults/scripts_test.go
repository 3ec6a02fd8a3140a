package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/internal/proctest"
)

// Port ranges of the Redis deployments the shared scripts start, one per
// scenario so they run in parallel (with each other and with the
// redisconn package's, which uses 20000-28012 and 30000-32005). Everything
// stays below Linux's ephemeral range (32768+), cluster bus ports
// (data port + 10000) included.
const (
	sentinelPortsLo, sentinelPortsHi = 12000, 14000 // primary, replica, sentinels at +10..+12
	clusterPortsLo, clusterPortsHi   = 18100, 19900 // 6 nodes, bus ports 28100-29905
)

// redisScript returns ../shared/redis/<name>, skipping the test loudly
// when it or redis-cli is missing.
func redisScript(t *testing.T, name string) string {
	t.Helper()
	p := proctest.SharedScript(t, "redis/"+name)
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skipf("\n"+
			"################################################################\n"+
			"## SKIPPED: redis-cli is not on PATH (%v): %s needs it.\n"+
			"## This scenario is NOT tested.\n"+
			"################################################################", err, name)
	}
	return p
}

// freeBase picks a base port in [lo, hi) whose base+offsets are all free
// on loopback.
func freeBase(t *testing.T, lo, hi int, offsets ...int) int {
	t.Helper()
	for range 100 {
		base := lo + rand.IntN(hi-lo)
		free := true
		for _, off := range offsets {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+off))
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if free {
			return base
		}
	}
	t.Fatalf("no free block of ports in %d..%d", lo, hi)
	return 0
}

// runScript runs a shared script (at most 90 s) with env added to this
// process' environment and returns its last output line.
func runScript(t *testing.T, env []string, script string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", filepath.Base(script), args, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// stopScript stops what a shared script started in dir and waits until
// its daemons have exited (they write into dir until then, which would
// race the temp dir's removal).
func stopScript(t *testing.T, script, dir string) {
	t.Helper()
	var pids []int
	for _, pattern := range []string{"*.pid", "*/*.pid"} {
		files, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				pids = append(pids, pid)
			}
		}
	}
	runScript(t, nil, script, "stop", dir)
	deadline := time.Now().Add(15 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				t.Errorf("process %d from %s still running 15s after stop: killed", pid, filepath.Base(script))
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
