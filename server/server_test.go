package server_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	caarlosenv "github.com/caarlos0/env/v10"
	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/config"
	"github.com/plyr-fm/plyrtasks/internal/rdb"
	"github.com/plyr-fm/plyrtasks/internal/redistest"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/server"
	"github.com/plyr-fm/plyrtasks/tasks"
)

func TestProcessTranslatesTheTask(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	rec := &recorder{}
	reg := job.NewRegistry(testCatalog())
	job.Register(reg, func(ctx context.Context, j *job.Job[noopArgs]) error {
		rec.add(j.Task)
		return j.SetResult(map[string]int{"doubled": 2 * j.Args.N})
	})
	e.start(t, reg, fastOptions())
	withHeader := func(next client.EnqueueFunc) client.EnqueueFunc {
		return func(ctx context.Context, req *client.Request) (client.Result, error) {
			req.Headers["traceparent"] = "00-a-b-01"
			return next(ctx, req)
		}
	}
	c := client.New(e.rc, client.Options{Catalog: testCatalog(), EnqueueMiddleware: []client.EnqueueMiddleware{withHeader}})
	res, err := c.Enqueue(ctx, noopArgs{N: 21}, client.TaskID("noop-1"), client.Queue(tasks.QueueBulk), client.MaxRetry(4), client.Retention(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the task to run", func() bool { return rec.count("test:noop") == 1 })
	got := rec.all()[0]
	if got.ID != "noop-1" || got.Kind != "test:noop" || got.Queue != tasks.QueueBulk || got.Attempt != 0 ||
		got.MaxRetry != 4 || got.Headers["traceparent"] != "00-a-b-01" || got.Inline || string(got.Payload) != `{"n":21}` {
		t.Errorf("task = %+v", got)
	}
	waitFor(t, 5*time.Second, "completion", func() bool {
		info, err := e.ins.GetTaskInfo(res.Queue, res.ID)
		return err == nil && info.State == asynq.TaskStateCompleted
	})
	info, _ := e.ins.GetTaskInfo(res.Queue, res.ID)
	if string(info.Result) != `{"doubled":42}` {
		t.Errorf("result = %s", info.Result)
	}
}

func TestBadTasksAreArchivedWithTheReason(t *testing.T) {
	e := newEnv(t)
	rec := &recorder{}
	e.start(t, testRegistry(rec), fastOptions())
	ac := asynq.NewClientFromRedisClient(e.rc)
	tests := []struct {
		name, kind, payload, reason string
	}{
		{"malformed JSON for a known kind", "test:noop", `{"n":"x"}`, `invalid payload: n: must be int`},
		{"not JSON at all", "test:noop", `nope`, `invalid payload: (body): invalid JSON`},
		{"unknown field", "test:noop", `{"n":1,"token":"s3cr3t"}`, `invalid payload: token: unknown field`},
		{"unknown kind", "no:such-kind", `{}`, `unknown task type "no:such-kind"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := ac.Enqueue(asynq.NewTask(tt.kind, []byte(tt.payload)), asynq.Queue("plyr:default"), asynq.MaxRetry(10))
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, "archive", func() bool {
				ti, err := e.ins.GetTaskInfo("plyr:default", info.ID)
				return err == nil && ti.State == asynq.TaskStateArchived
			})
			ti, _ := e.ins.GetTaskInfo("plyr:default", info.ID)
			if ti.Retried != 0 {
				t.Errorf("retried %d times before archiving", ti.Retried)
			}
			if !strings.Contains(ti.LastErr, tt.reason) {
				t.Errorf("last error = %q, want it to contain %q", ti.LastErr, tt.reason)
			}
		})
	}
	if n := len(rec.all()); n != 0 {
		t.Errorf("a handler ran %d times for bad tasks", n)
	}
	// The worker is still taking tasks.
	if _, err := e.client.Enqueue(context.Background(), noopArgs{N: 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a good task after the bad ones", func() bool { return rec.count("test:noop") == 1 })
}

func TestFailuresRetryAndPanicsDoNotCrash(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	var mu sync.Mutex
	var attempts []int
	var delays int
	reg := job.NewRegistry(testCatalog())
	job.Register(reg, func(ctx context.Context, j *job.Job[noopArgs]) error {
		mu.Lock()
		attempts = append(attempts, j.Attempt)
		n := len(attempts)
		mu.Unlock()
		switch n {
		case 1:
			panic("handler bug")
		case 2:
			return job.RetryAfter(200*time.Millisecond, errors.New("rate limited"))
		}
		return nil
	})
	o := fastOptions()
	o.RetryDelay = func(n int, err error) time.Duration {
		mu.Lock()
		delays++
		mu.Unlock()
		return time.Millisecond
	}
	e.start(t, reg, o)
	res, err := e.client.Enqueue(ctx, noopArgs{N: 1}, client.Retention(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "completion after two failures", func() bool {
		info, err := e.ins.GetTaskInfo(res.Queue, res.ID)
		return err == nil && info.State == asynq.TaskStateCompleted
	})
	info, _ := e.ins.GetTaskInfo(res.Queue, res.ID)
	if info.Retried != 2 || !strings.Contains(info.LastErr, "rate limited") {
		t.Errorf("retried %d, last error %q", info.Retried, info.LastErr)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(attempts) != 3 || attempts[0] != 0 || attempts[1] != 1 || attempts[2] != 2 {
		t.Errorf("attempts = %v", attempts)
	}
	if delays != 2 {
		t.Errorf("RetryDelay called %d times", delays)
	}
}

func TestUniqueLockReleasedWhenTaskEnds(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	rec := &recorder{}
	e.start(t, testRegistry(rec), fastOptions())
	lockOf := func(key string) string { return rdb.UniqueLockKey("plyr:critical", "test:unique", key) }

	t.Run("completed", func(t *testing.T) {
		first, err := e.client.Enqueue(ctx, uniqueArgs{Key: "a"})
		if err != nil || first.Outcome != client.Enqueued {
			t.Fatalf("%+v, %v", first, err)
		}
		waitFor(t, 5*time.Second, "lock release on completion", func() bool { return e.rc.Exists(ctx, lockOf("a")).Val() == 0 })
		again, _ := e.client.Enqueue(ctx, uniqueArgs{Key: "a"})
		if again.Outcome != client.Enqueued || again.ID == first.ID {
			t.Errorf("after completion: %+v", again)
		}
	})
	t.Run("archived", func(t *testing.T) {
		first, _ := e.client.Enqueue(ctx, uniqueArgs{Key: "b", Fail: "permanent"})
		waitFor(t, 5*time.Second, "archive", func() bool {
			info, err := e.ins.GetTaskInfo(first.Queue, first.ID)
			return err == nil && info.State == asynq.TaskStateArchived
		})
		waitFor(t, 5*time.Second, "lock release on archive", func() bool { return e.rc.Exists(ctx, lockOf("b")).Val() == 0 })
		again, _ := e.client.Enqueue(ctx, uniqueArgs{Key: "b"})
		if again.Outcome != client.Enqueued {
			t.Errorf("after archive: %+v", again)
		}
	})
	t.Run("retrying keeps the lock", func(t *testing.T) {
		first, _ := e.client.Enqueue(ctx, uniqueArgs{Key: "c", Fail: "transient"})
		waitFor(t, 5*time.Second, "retry state", func() bool {
			info, err := e.ins.GetTaskInfo(first.Queue, first.ID)
			return err == nil && info.State == asynq.TaskStateRetry
		})
		dup, _ := e.client.Enqueue(ctx, uniqueArgs{Key: "c"})
		if dup.Outcome != client.Duplicate || dup.ID != first.ID || dup.State != "retry" {
			t.Errorf("while retrying: %+v", dup)
		}
	})
}

// SIGTERM drain: a task still running when ShutdownTimeout ends goes back
// to pending with its retry count unchanged, and the next worker runs it.
func TestShutdownRequeuesWithoutUsingARetry(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	rec := &recorder{}
	o := fastOptions()
	o.ShutdownTimeout = time.Second
	var logs syncBuffer
	o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	first := server.New(srv.Client(t, e.db), testRegistry(rec), o)
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := e.client.Enqueue(ctx, blockArgs{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the long task to start", func() bool { return rec.count("test:block") == 1 })

	start := time.Now()
	first.Shutdown()
	if el := time.Since(start); el < time.Second || el > 5*time.Second {
		t.Errorf("Shutdown took %s, want about ShutdownTimeout (1s)", el)
	}
	info, err := e.ins.GetTaskInfo(res.Queue, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != asynq.TaskStatePending || info.Retried != 0 || info.LastErr != "" {
		t.Fatalf("after shutdown: state %v, retried %d, last error %q; want pending, 0, none", info.State, info.Retried, info.LastErr)
	}
	if err := first.Ready(ctx); !errors.Is(err, server.ErrNotRunning) {
		t.Errorf("Ready after Shutdown = %v", err)
	}
	// The interrupted run is logged as interrupted, not as a failure, nor
	// as an operator's cancel.
	waitFor(t, 2*time.Second, "the interrupted line", func() bool { return strings.Contains(logs.String(), `"outcome":"interrupted"`) })
	if strings.Contains(logs.String(), `"outcome":"retry"`) {
		t.Errorf("the interrupted run was logged as a retry:\n%s", logs.String())
	}

	// A second worker completes it.
	done := make(chan job.Task, 1)
	reg := job.NewRegistry(testCatalog())
	job.Register(reg, func(ctx context.Context, j *job.Job[blockArgs]) error { done <- *j.Task; return nil })
	e.start(t, reg, fastOptions())
	select {
	case got := <-done:
		if got.ID != res.ID || got.Attempt != 0 {
			t.Errorf("second worker ran %s at attempt %d", got.ID, got.Attempt)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second worker did not pick the task up")
	}
	waitFor(t, 5*time.Second, "the task to complete", func() bool {
		info, err := e.ins.GetTaskInfo(res.Queue, res.ID)
		return err == nil && info.State == asynq.TaskStateCompleted && info.Retried == 0
	})
}

func TestReady(t *testing.T) {
	ctx := context.Background()
	r := redistest.Start(t, redistest.Options{})
	rc := r.Client(t, 0)
	s := server.New(rc, testRegistry(&recorder{}), fastOptions())
	if err := s.Ready(ctx); !errors.Is(err, server.ErrNotRunning) {
		t.Errorf("before Start: %v", err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err == nil {
		t.Error("a second Start succeeded")
	}
	if err := s.Ready(ctx); err != nil {
		t.Errorf("running: %v", err)
	}
	r.Stop()
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.Ready(short); err == nil {
		t.Error("Ready with Redis down = nil")
	}
	s.Shutdown()
	if err := s.Ready(ctx); !errors.Is(err, server.ErrNotRunning) {
		t.Errorf("after Shutdown: %v", err)
	}
}

func TestStartRefusesBadOptionsAndDeadRedis(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	o := fastOptions()
	o.TaskCheckInterval = time.Minute
	err := server.New(e.rc, testRegistry(&recorder{}), o).Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "TaskCheckInterval = 1m0s is out of range 10ms..5s") {
		t.Errorf("Start = %v", err)
	}
	r := redistest.Start(t, redistest.Options{})
	rc := r.Client(t, 0)
	r.Stop()
	if err := server.New(rc, testRegistry(&recorder{}), fastOptions()).Start(ctx); err == nil {
		t.Error("Start with Redis down succeeded")
	}
}

func TestOptionsValidate(t *testing.T) {
	r := server.Timing()
	tests := []struct {
		name string
		mod  func(o *server.Options)
		want string // "" = valid
	}{
		{"defaults", func(o *server.Options) {}, ""},
		{"all minimum", func(o *server.Options) { setAll(o, false) }, ""},
		{"all maximum", func(o *server.Options) { setAll(o, true) }, ""},
		{"task check below", func(o *server.Options) { o.TaskCheckInterval = r.TaskCheckInterval.Min - 1 }, "TaskCheckInterval"},
		{"task check above", func(o *server.Options) { o.TaskCheckInterval = r.TaskCheckInterval.Max + 1 }, "TaskCheckInterval"},
		{"negative delayed check", func(o *server.Options) { o.DelayedTaskCheckInterval = -time.Second }, "DelayedTaskCheckInterval = -1s is out of range 100ms..10s"},
		{"shutdown above", func(o *server.Options) { o.ShutdownTimeout = time.Hour }, "ShutdownTimeout = 1h0m0s is out of range 1s..20s"},
		{"health below", func(o *server.Options) { o.HealthCheckInterval = time.Millisecond }, "HealthCheckInterval"},
		{"janitor above", func(o *server.Options) { o.JanitorInterval = time.Minute }, "JanitorInterval"},
		{"repair below", func(o *server.Options) { o.RepairInterval = time.Second }, "RepairInterval"},
		{"concurrency", func(o *server.Options) { o.Concurrency = -1 }, "Concurrency = -1"},
		{"no positive queue", func(o *server.Options) { o.Queues = map[string]int{"default": 0} }, "no queue with a positive priority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o server.Options
			tt.mod(&o)
			err := o.Validate()
			if tt.want == "" {
				if err != nil {
					t.Errorf("Validate = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// setAll sets every timing setting to the minimum or maximum that package
// config allows for its variable (the server's own RepairInterval from
// server.Timing).
func setAll(o *server.Options, maximum bool) {
	pick := func(min, max time.Duration) time.Duration {
		if maximum {
			return max
		}
		return min
	}
	fields := map[string]*time.Duration{
		"TASK_CHECK_INTERVAL":         &o.TaskCheckInterval,
		"DELAYED_TASK_CHECK_INTERVAL": &o.DelayedTaskCheckInterval,
		"SHUTDOWN_TIMEOUT":            &o.ShutdownTimeout,
		"HEALTH_CHECK_INTERVAL":       &o.HealthCheckInterval,
		"JANITOR_INTERVAL":            &o.JanitorInterval,
	}
	for name, r := range config.TimingRanges() {
		f, ok := fields[name]
		if !ok {
			panic("setAll: config has a timing setting the server does not know: " + name)
		}
		*f = pick(r.Min, r.Max)
	}
	r := server.Timing().RepairInterval
	o.RepairInterval = pick(r.Min, r.Max)
}

// The server validates against the ranges the config package enforces on
// the environment.
func TestTimingMatchesConfig(t *testing.T) {
	s := server.Timing()
	ours := map[string]server.Range{
		"TASK_CHECK_INTERVAL":         s.TaskCheckInterval,
		"DELAYED_TASK_CHECK_INTERVAL": s.DelayedTaskCheckInterval,
		"SHUTDOWN_TIMEOUT":            s.ShutdownTimeout,
		"HEALTH_CHECK_INTERVAL":       s.HealthCheckInterval,
		"JANITOR_INTERVAL":            s.JanitorInterval,
	}
	cfg := config.TimingRanges()
	if len(cfg) != len(ours) {
		t.Errorf("config has %d timing settings, the server %d", len(cfg), len(ours))
	}
	for name, r := range cfg {
		if o := ours[name]; o.Min != r.Min || o.Max != r.Max {
			t.Errorf("%s: server range %s, config range %s", name, o, r)
		}
	}
	var c config.Config
	if err := caarlosenv.Parse(&c.Timing); err != nil {
		t.Fatal(err)
	}
	defaults := map[string]time.Duration{
		"TASK_CHECK_INTERVAL": c.Timing.TaskCheckInterval, "DELAYED_TASK_CHECK_INTERVAL": c.Timing.DelayedTaskCheckInterval,
		"SHUTDOWN_TIMEOUT": c.Timing.ShutdownTimeout, "HEALTH_CHECK_INTERVAL": c.Timing.HealthCheckInterval,
		"JANITOR_INTERVAL": c.Timing.JanitorInterval,
	}
	for name, d := range defaults {
		if ours[name].Default != d {
			t.Errorf("%s: server default %s, config default %s", name, ours[name].Default, d)
		}
	}
}
