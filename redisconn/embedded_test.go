package redisconn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
)

func startEmbedded(t *testing.T) *EmbeddedServer {
	t.Helper()
	e, err := Embedded(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func TestEmbeddedAddress(t *testing.T) {
	e := startEmbedded(t)
	if !strings.HasPrefix(e.Addr(), "127.0.0.1:") || strings.HasSuffix(e.Addr(), ":0") {
		t.Fatalf("Addr() = %q, want 127.0.0.1 and a real port", e.Addr())
	}
	if want := "redis://" + e.Addr() + "/0"; e.URL() != want {
		t.Fatalf("URL() = %q, want %q", e.URL(), want)
	}
	// Another process reaches it through URL(): parse it like REDIS_URL.
	s, err := Parse(e.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := s.Client()
	defer c.Close()
	checkRedis(t, c)

	for _, bad := range []string{"0.0.0.0:0", ":0", "192.0.2.1:6379", "example.com:6379", "nonsense"} {
		if _, err := Embedded(context.Background(), bad); err == nil {
			t.Errorf("Embedded(%q) accepted a non-loopback address", bad)
		}
	}
	if e2, err := Embedded(context.Background(), "localhost:0"); err != nil {
		t.Errorf("Embedded(localhost:0): %v", err)
	} else {
		e2.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Embedded(ctx, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Embedded(cancelled ctx) = %v, want context.Canceled", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
}

// miniredis decrements TTLs only when told to; the embedded server's clock
// makes keys expire in real time, as asynq's unique locks and server
// records need.
func TestEmbeddedTTLsExpire(t *testing.T) {
	e := startEmbedded(t)
	c := e.Spec().Client()
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "short", "x", 700*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "long", "x", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for c.Exists(ctx, "short").Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatal("key with a 700ms TTL still there after 3s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c.Exists(ctx, "long").Val() != 1 {
		t.Fatal("key with a 1h TTL expired")
	}
	if ttl := c.TTL(ctx, "long").Val(); ttl > time.Hour-500*time.Millisecond || ttl < time.Hour-5*time.Second {
		t.Fatalf("TTL of long = %v, want a little under 1h", ttl)
	}
}

func TestEmbeddedInfo(t *testing.T) {
	e := startEmbedded(t)
	c := e.Spec().Client()
	defer c.Close()
	ctx := context.Background()
	info, err := c.Info(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"redis_version:miniredis", "redis_mode:standalone", "connected_clients:1", "uptime_in_days:0"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO lacks %q:\n%s", want, info)
		}
	}
	// Sections miniredis serves itself still reach it.
	clients, err := c.Info(ctx, "clients").Result()
	if err != nil || !strings.Contains(clients, "connected_clients:") || strings.Contains(clients, "redis_version") {
		t.Fatalf("INFO clients = %q, %v", clients, err)
	}
}

// TestAsynqOnEmbedded proves asynq v0.26.0 works on the embedded Redis:
// one-off, delayed, retried, archived, unique and periodic tasks, the
// Inspector calls asynqmon makes, and asynqmon's HTTP API itself.
func TestAsynqOnEmbedded(t *testing.T) {
	e := startEmbedded(t)
	rc := e.Spec().Client()
	defer rc.Close()
	const q = "plyr:default"
	logger, logs := warnLogger(t)

	type run struct {
		typ     string
		retried int
		at      time.Time
	}
	runs := make(chan run, 100)
	var flakyOnce sync.Once
	firstFailure := make(chan struct{})
	mux := asynq.NewServeMux()
	record := func(ctx context.Context, tk *asynq.Task) {
		n, _ := asynq.GetRetryCount(ctx)
		runs <- run{tk.Type(), n, time.Now()}
	}
	for _, typ := range []string{"test:oneoff", "test:delayed", "test:periodic"} {
		mux.HandleFunc(typ, func(ctx context.Context, tk *asynq.Task) error {
			record(ctx, tk)
			return nil
		})
	}
	mux.HandleFunc("test:flaky", func(ctx context.Context, tk *asynq.Task) error {
		record(ctx, tk)
		if n, _ := asynq.GetRetryCount(ctx); n == 0 {
			flakyOnce.Do(func() { close(firstFailure) })
			return errors.New("transient: PDS returned 502")
		}
		return nil
	})
	mux.HandleFunc("test:bad", func(ctx context.Context, tk *asynq.Task) error {
		record(ctx, tk)
		return fmt.Errorf("payload invalid: %w", asynq.SkipRetry)
	})

	srv := asynq.NewServerFromRedisClient(rc, asynq.Config{
		Concurrency:              4,
		Queues:                   map[string]int{q: 1},
		TaskCheckInterval:        50 * time.Millisecond,
		DelayedTaskCheckInterval: 100 * time.Millisecond,
		RetryDelayFunc:           func(int, error, *asynq.Task) time.Duration { return 2 * time.Second },
		// The failing handlers are expected; asynq's own warnings about
		// them ("Retry exhausted") are filtered below.
		Logger:   logger,
		LogLevel: asynq.WarnLevel,
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	sched := asynq.NewSchedulerFromRedisClient(rc, &asynq.SchedulerOpts{
		Logger: logger, LogLevel: asynq.WarnLevel, HeartbeatInterval: 500 * time.Millisecond,
	})
	if _, err := sched.Register("@every 1s", asynq.NewTask("test:periodic", nil), asynq.Queue(q)); err != nil {
		t.Fatal(err)
	}
	if err := sched.Start(); err != nil {
		t.Fatal(err)
	}
	defer sched.Shutdown()

	client := asynq.NewClientFromRedisClient(rc)
	ins := asynq.NewInspectorFromRedisClient(rc)

	oneoff, err := client.Enqueue(asynq.NewTask("test:oneoff", []byte(`{"n":1}`)), asynq.Queue(q), asynq.Retention(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	flaky, err := client.Enqueue(asynq.NewTask("test:flaky", nil), asynq.Queue(q), asynq.MaxRetry(3), asynq.Retention(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	bad, err := client.Enqueue(asynq.NewTask("test:bad", nil), asynq.Queue(q), asynq.MaxRetry(5))
	if err != nil {
		t.Fatal(err)
	}
	// asynq schedules at whole seconds: start just after a second boundary
	// so the task stays scheduled for at least half a second.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 20*time.Millisecond)))
	delayedAt := time.Now()
	delayed, err := client.Enqueue(asynq.NewTask("test:delayed", nil), asynq.Queue(q), asynq.ProcessIn(time.Second), asynq.Retention(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if ti, err := ins.GetTaskInfo(q, delayed.ID); err != nil || ti.State != asynq.TaskStateScheduled {
		t.Fatalf("delayed task right after enqueue: %+v, %v; want scheduled", ti, err)
	}
	// A unique task left pending (no server reads its queue) holds its lock
	// for UniqueFor only: a duplicate is refused now and accepted once the
	// lock's TTL has run out.
	uniq := asynq.NewTask("test:oneoff", []byte(`{"unique":true}`))
	const unserved = "plyr:unserved"
	if _, err := client.Enqueue(uniq, asynq.Queue(unserved), asynq.Unique(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Enqueue(uniq, asynq.Queue(unserved), asynq.Unique(time.Second)); !errors.Is(err, asynq.ErrDuplicateTask) {
		t.Fatalf("second unique enqueue: %v, want ErrDuplicateTask", err)
	}
	// A task scheduled an hour ahead stays in the scheduled set.
	if _, err := client.Enqueue(asynq.NewTask("test:oneoff", nil), asynq.Queue(q), asynq.ProcessIn(time.Hour)); err != nil {
		t.Fatal(err)
	}

	select {
	case <-firstFailure:
	case <-time.After(10 * time.Second):
		t.Fatal("flaky task never ran")
	}
	retrying := false
	for i := 0; i < 20 && !retrying; i++ {
		rt, err := ins.ListRetryTasks(q)
		if err != nil {
			t.Fatal(err)
		}
		retrying = slices.ContainsFunc(rt, func(ti *asynq.TaskInfo) bool { return ti.ID == flaky.ID })
		time.Sleep(50 * time.Millisecond)
	}
	if !retrying {
		t.Fatal("flaky task not listed in the retry set after its first failure")
	}

	seen := map[string][]run{}
	deadline := time.After(20 * time.Second)
	for len(seen["test:oneoff"]) < 1 || len(seen["test:delayed"]) < 1 || len(seen["test:flaky"]) < 2 ||
		len(seen["test:bad"]) < 1 || len(seen["test:periodic"]) < 2 {
		select {
		case r := <-runs:
			seen[r.typ] = append(seen[r.typ], r)
		case <-deadline:
			t.Fatalf("not every task ran within 20s: %v", seen)
		}
	}
	if d := seen["test:delayed"][0].at.Sub(delayedAt); d < 500*time.Millisecond {
		t.Errorf("delayed task ran %v after enqueue, want ≥ 500ms (ProcessIn 1s)", d)
	}
	if f := seen["test:flaky"]; f[0].retried != 0 || f[1].retried != 1 {
		t.Errorf("flaky attempts had retry counts %d, %d; want 0, 1", f[0].retried, f[1].retried)
	}
	if n := len(seen["test:bad"]); n != 1 {
		t.Errorf("SkipRetry task ran %d times, want 1", n)
	}
	time.Sleep(300 * time.Millisecond) // let the last completions be written

	// The Inspector calls asynqmon makes.
	queues, err := ins.Queues()
	if err != nil || !slices.Contains(queues, q) {
		t.Fatalf("Queues() = %v, %v; want %s", queues, err, q)
	}
	qi, err := ins.GetQueueInfo(q)
	if err != nil {
		t.Fatalf("GetQueueInfo: %v", err)
	}
	if qi.Scheduled != 1 || qi.Archived != 1 || qi.Completed < 3 || qi.Processed < 6 || qi.Failed < 2 || qi.MemoryUsage <= 0 {
		t.Errorf("GetQueueInfo = %+v; want 1 scheduled, 1 archived, ≥3 completed, ≥6 processed, ≥2 failed, memory > 0", qi)
	}
	for id, want := range map[string]asynq.TaskState{
		oneoff.ID: asynq.TaskStateCompleted, flaky.ID: asynq.TaskStateCompleted,
		delayed.ID: asynq.TaskStateCompleted, bad.ID: asynq.TaskStateArchived,
	} {
		ti, err := ins.GetTaskInfo(q, id)
		if err != nil || ti.State != want {
			t.Errorf("GetTaskInfo(%s) = %+v, %v; want state %v", id, ti, err, want)
		}
	}
	archived, err := ins.ListArchivedTasks(q)
	if err != nil || len(archived) != 1 || !strings.Contains(archived[0].LastErr, "payload invalid") {
		t.Errorf("ListArchivedTasks = %+v, %v; want the SkipRetry task with its error", archived, err)
	}
	completed, err := ins.ListCompletedTasks(q, asynq.PageSize(100))
	if err != nil || !slices.ContainsFunc(completed, func(ti *asynq.TaskInfo) bool { return ti.ID == oneoff.ID }) {
		t.Errorf("ListCompletedTasks = %d tasks, %v; want the one-off task", len(completed), err)
	}
	if hist, err := ins.History(q, 2); err != nil || len(hist) != 2 || hist[0].Processed < 6 {
		t.Errorf("History = %+v, %v; want 2 days, ≥6 processed today", hist, err)
	}
	if servers, err := ins.Servers(); err != nil || len(servers) != 1 || servers[0].Queues[q] != 1 {
		t.Errorf("Servers = %+v, %v; want our one server on %s", servers, err, q)
	}
	if entries, err := ins.SchedulerEntries(); err != nil || len(entries) != 1 || entries[0].Spec != "@every 1s" {
		t.Errorf("SchedulerEntries = %+v, %v; want the @every 1s entry", entries, err)
	}

	// The duplicate is accepted once the 1s unique lock has expired.
	time.Sleep(time.Second)
	if _, err := client.Enqueue(uniq, asynq.Queue(unserved), asynq.Unique(time.Second)); err != nil {
		t.Fatalf("unique enqueue after the lock's TTL: %v (embedded TTLs not running?)", err)
	}

	// asynqmon's HTTP API over the embedded Redis.
	mon := asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: e.Spec().ConnOpt(), ReadOnly: true})
	defer mon.Close()
	hs := httptest.NewServer(mon)
	defer hs.Close()
	for path, want := range map[string]string{
		"/monitoring/api/queues":                                `"queue":"plyr:default"`,
		"/monitoring/api/queues/plyr:default/completed_tasks":   oneoff.ID,
		"/monitoring/api/queues/plyr:default/archived_tasks":    bad.ID,
		"/monitoring/api/queues/plyr:default/scheduled_tasks":   `"type":"test:oneoff"`,
		"/monitoring/api/servers":                               `"plyr:default":1`,
		"/monitoring/api/scheduler_entries":                     `"spec":"@every 1s"`,
		"/monitoring/api/redis_info":                            `"redis_version":"miniredis`,
		"/monitoring/api/queue_stats":                           `"plyr:default"`,
		"/monitoring/api/queues/plyr:default/tasks/" + flaky.ID: `"state":"completed"`,
	} {
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d %.300s; want 200 containing %s", path, resp.StatusCode, body, want)
		}
		if !json.Valid(body) {
			t.Errorf("GET %s: body is not JSON", path)
		}
	}

	// asynq met no command miniredis lacks: its only warnings are about the
	// tasks that were meant to fail.
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if line != "" && !strings.Contains(line, "Retry exhausted for task id="+bad.ID) {
			t.Errorf("unexpected asynq log: %s", line)
		}
	}
}

// Several clients and a server share the embedded Redis like any Redis.
func TestAsynqRoundTripEmbedded(t *testing.T) {
	e := startEmbedded(t)
	c := e.Spec().Client()
	defer c.Close()
	asynqRoundTrip(t, c, "plyr:critical")
}
