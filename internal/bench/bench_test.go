package bench_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/internal/bench"
)

// The test binary is also the worker child: spawned with
// PLYRTASKS_BENCH_WORKER=1, TestMain runs the worker instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv("PLYRTASKS_BENCH_WORKER") == "1" {
		c, err := bench.ParseWorkerArgs(os.Args[1:])
		if err == nil {
			err = bench.RunWorker(context.Background(), c, os.Stdin, os.Stdout)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func testSpawn(args []string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "PLYRTASKS_BENCH_WORKER=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// small sizes: the whole run takes about 25 s on two shared cores.
func smallOptions() bench.Options {
	return bench.Options{
		Concurrency: 10, Tasks: 300, CountTasks: 200, EnqueueTasks: 200, EnqueueConcurrency: 4,
		Rate: 100, RateDuration: time.Second, IdleWindow: 2 * time.Second, IdleSamples: 2, RSSTasks: 1000,
		Spawn: testSpawn,
	}
}

func TestRunMeasuresEveryStack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, smallOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Stacks) != 3 {
		t.Fatalf("stacks = %d, want 3", len(rep.Stacks))
	}
	for _, s := range rep.Stacks {
		t.Run(s.Mode, func(t *testing.T) {
			if s.TasksPerSec <= 0 || s.EnqueueSingle <= 0 || s.EnqueueConcurrent <= 0 {
				t.Errorf("rates = %v, %v, %v; want positive", s.TasksPerSec, s.EnqueueSingle, s.EnqueueConcurrent)
			}
			// One enqueue script per task (plus the wake's coalesced PUBLISH).
			if s.EnqueueCmds < 1 || s.EnqueueCmds > 1.5 {
				t.Errorf("enqueue commands/task = %.2f, want 1..1.5", s.EnqueueCmds)
			}
			// A dequeue script (one per queue tried) and an ack at least.
			if s.ProcessCmds < 2 || s.ProcessCmds > 6 {
				t.Errorf("process commands/task = %.2f, want 2..6", s.ProcessCmds)
			}
			if s.EnqueueCmdsLua <= s.EnqueueCmds || s.ProcessCmdsLua <= s.ProcessCmds {
				t.Errorf("with Lua (%.2f, %.2f) must exceed top-level (%.2f, %.2f)", s.EnqueueCmdsLua, s.ProcessCmdsLua, s.EnqueueCmds, s.ProcessCmds)
			}
			if s.RateN != 100 { // Rate × RateDuration
				t.Errorf("pickups measured at rate = %d, want 100", s.RateN)
			}
			if s.IdleN != 2 || s.RateP50 > s.RateP99 || s.IdleP50 > s.IdleP99 || s.RateP50 <= 0 {
				t.Errorf("latencies: idle n=%d p50 %s p99 %s, rate p50 %s p99 %s", s.IdleN, s.IdleP50, s.IdleP99, s.RateP50, s.RateP99)
			}
			if s.IdleCmds <= 0 {
				t.Errorf("idle commands/s = %.2f, want positive", s.IdleCmds)
			}
		})
	}
	// The woken worker idles on one check script a second; a plain worker
	// polls three queues (one script each) every 0.5-1.5 s besides its
	// heartbeat, forwarder and subscription.
	if a, w := rep.Stacks[0], rep.Stacks[2]; w.IdleCmds >= a.IdleCmds {
		t.Errorf("idle commands/s: wake %.2f, asynq %.2f; want wake below", w.IdleCmds, a.IdleCmds)
	}
	if rep.RSS.Peak <= 0 || len(rep.RSS.Samples) == 0 {
		t.Fatalf("rss = %+v", rep.RSS)
	}
	for _, v := range rep.RSS.Samples {
		if v > rep.RSS.Peak {
			t.Errorf("sample %d above the peak %d", v, rep.RSS.Peak)
		}
	}
	table := rep.Table()
	for _, want := range []string{"| measure | bare asynq | plyrtasks | plyrtasks + wake |", "no-op tasks/s, backlog of 300, concurrency 10", "worker peak RSS"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

func TestFrontierPoints(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f, err := bench.RunFrontier(ctx, bench.FrontierOptions{
		Points: []bench.FrontierPoint{
			{Label: "plain 50ms", TaskCheckInterval: 50 * time.Millisecond},
			{Label: "wake", Wake: true, TaskCheckInterval: time.Second, ActiveCheckInterval: 20 * time.Millisecond, Linger: 500 * time.Millisecond},
		},
		Concurrency: 10, Rate: 100, RateDuration: time.Second, IdleWindow: 2 * time.Second, Spawn: testSpawn,
	})
	if err != nil {
		t.Fatal(err)
	}
	plain, wake := f.Points[0], f.Points[1]
	// A plain worker at 50ms polls 3 queues 10-30 times a second.
	if plain.IdleCmds < 20 {
		t.Errorf("plain 50ms idle = %.2f commands/s, want at least 20", plain.IdleCmds)
	}
	// The woken worker: one check a second and the subscription's rare PING.
	if wake.IdleCmds < 0.4 || wake.IdleCmds > 2 {
		t.Errorf("wake idle = %.2f commands/s, want about 1", wake.IdleCmds)
	}
	for _, p := range f.Points {
		if p.N != 100 || p.P50 > p.P99 || p.TaskCmds < 2 {
			t.Errorf("%s: n=%d p50 %s p99 %s cmds/task %.2f", p.Label, p.N, p.P50, p.P99, p.TaskCmds)
		}
	}
	if !strings.Contains(f.Table(), "| plain 50ms |") {
		t.Errorf("table:\n%s", f.Table())
	}
}

func TestParseWorkerArgsRoundTrip(t *testing.T) {
	tests := []bench.WorkerConfig{
		{Redis: "127.0.0.1:1", Mode: bench.ModeAsynq, Concurrency: 3, TaskCheckInterval: time.Second, Target: 7},
		{Redis: "127.0.0.1:2", Mode: bench.ModeWake, Concurrency: 100, TaskCheckInterval: 5 * time.Second,
			ActiveCheckInterval: 20 * time.Millisecond, Linger: time.Second},
	}
	for _, want := range tests {
		got, err := bench.ParseWorkerArgs(want.Args())
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("round trip = %+v, want %+v", got, want)
		}
	}
	if _, err := bench.ParseWorkerArgs([]string{"--mode", "asynq"}); err == nil {
		t.Error("no --redis: want an error")
	}
}
