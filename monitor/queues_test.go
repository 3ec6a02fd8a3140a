package monitor

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/internal/redistest"
)

// metricValue returns the value of the sample name{labels}, and whether it
// was exported at all.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			return value(m), true
		}
	}
	return 0, false
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	}
	return m.GetUntyped().GetValue()
}

func enqueueN(t *testing.T, c *asynq.Client, queue string, n int, opts ...asynq.Option) {
	t.Helper()
	for range n {
		if _, err := c.Enqueue(asynq.NewTask("copyright:scan", []byte(`{}`)), append(opts, asynq.Queue(queue))...); err != nil {
			t.Fatal(err)
		}
	}
}

func TestQueueCollector(t *testing.T) {
	rdb := srv.Client(t, srv.DB(t))
	c := asynq.NewClientFromRedisClient(rdb)
	enqueueN(t, c, "plyr:default", 3)
	enqueueN(t, c, "plyr:default", 2, asynq.ProcessIn(time.Hour))
	enqueueN(t, c, "plyr:bulk", 1)
	enqueueN(t, c, "other:default", 4) // another deployment's namespace
	insp := asynq.NewInspectorFromRedisClient(rdb)
	if err := insp.PauseQueue("plyr:bulk"); err != nil {
		t.Fatal(err)
	}

	qc := NewQueueCollector(QueueCollectorOptions{
		Inspector: insp, Namespace: "plyr",
		Queues: []string{"plyr:critical", "plyr:default", "plyr:bulk"},
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(qc)

	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"pending default", "plyrtasks_queue_tasks", map[string]string{"queue": "plyr:default", "state": "pending"}, 3},
		{"scheduled default", "plyrtasks_queue_tasks", map[string]string{"queue": "plyr:default", "state": "scheduled"}, 2},
		{"pending bulk", "plyrtasks_queue_tasks", map[string]string{"queue": "plyr:bulk", "state": "pending"}, 1},
		{"configured queue with no task yet is zero", "plyrtasks_queue_tasks", map[string]string{"queue": "plyr:critical", "state": "pending"}, 0},
		{"critical up", "plyrtasks_queue_stats_up", map[string]string{"queue": "plyr:critical"}, 1},
		{"bulk paused", "plyrtasks_queue_paused", map[string]string{"queue": "plyr:bulk"}, 1},
		{"default not paused", "plyrtasks_queue_paused", map[string]string{"queue": "plyr:default"}, 0},
		{"nothing processed yet", "plyrtasks_queue_processed_total", map[string]string{"queue": "plyr:default"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := metricValue(t, reg, tt.metric, tt.labels)
			if !ok || got != tt.want {
				t.Fatalf("%s%v = %v (exported %v), want %v", tt.metric, tt.labels, got, ok, tt.want)
			}
		})
	}
	if _, ok := metricValue(t, reg, "plyrtasks_queue_tasks", map[string]string{"queue": "other:default"}); ok {
		t.Error("another namespace's queue is exported")
	}
	lat, _ := metricValue(t, reg, "plyrtasks_queue_latency_seconds", map[string]string{"queue": "plyr:default"})
	if lat < 0 || lat > 60 {
		t.Errorf("latency of a just-enqueued task = %vs, want between 0 and 60", lat)
	}
}

func TestQueueCollectorCaches(t *testing.T) {
	rdb := srv.Client(t, srv.DB(t))
	c := asynq.NewClientFromRedisClient(rdb)
	enqueueN(t, c, "plyr:default", 1)
	qc := NewQueueCollector(QueueCollectorOptions{Inspector: asynq.NewInspectorFromRedisClient(rdb), Namespace: "plyr", CacheFor: 5 * time.Second})
	now := time.Now()
	qc.now = func() time.Time { return now }
	reg := prometheus.NewRegistry()
	reg.MustRegister(qc)
	pending := func() float64 {
		v, _ := metricValue(t, reg, "plyrtasks_queue_tasks", map[string]string{"queue": "plyr:default", "state": "pending"})
		return v
	}
	if got := pending(); got != 1 {
		t.Fatalf("pending = %v, want 1", got)
	}
	enqueueN(t, c, "plyr:default", 4)
	now = now.Add(4 * time.Second)
	if got := pending(); got != 1 {
		t.Fatalf("within CacheFor: pending = %v, want the cached 1", got)
	}
	now = now.Add(2 * time.Second)
	if got := pending(); got != 5 {
		t.Fatalf("after CacheFor: pending = %v, want 5", got)
	}
}

// A task whose hash is missing makes asynq's stats script fail for that
// queue (the known asynqmon defect). The collector reports that queue as
// down and keeps reporting the others.
func TestQueueCollectorSurvivesMissingTaskHash(t *testing.T) {
	rdb := srv.Client(t, srv.DB(t))
	c := asynq.NewClientFromRedisClient(rdb)
	enqueueN(t, c, "plyr:default", 2)
	enqueueN(t, c, "plyr:bulk", 1)
	info, err := c.Enqueue(asynq.NewTask("copyright:scan", []byte(`{}`)), asynq.Queue("plyr:default"))
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(context.Background(), "asynq:{plyr:default}:t:"+info.ID).Err(); err != nil {
		t.Fatal(err)
	}
	qc := NewQueueCollector(QueueCollectorOptions{Inspector: asynq.NewInspectorFromRedisClient(rdb), Namespace: "plyr"})
	reg := prometheus.NewRegistry()
	reg.MustRegister(qc)
	if up, _ := metricValue(t, reg, "plyrtasks_queue_stats_up", map[string]string{"queue": "plyr:default"}); up != 0 {
		t.Errorf("plyr:default up = %v, want 0 (its stats cannot be read)", up)
	}
	if got, _ := metricValue(t, reg, "plyrtasks_queue_tasks", map[string]string{"queue": "plyr:bulk", "state": "pending"}); got != 1 {
		t.Errorf("plyr:bulk pending = %v, want 1", got)
	}
}

func TestQueueCollectorBoundsCardinality(t *testing.T) {
	rdb := srv.Client(t, srv.DB(t))
	c := asynq.NewClientFromRedisClient(rdb)
	for i := range 10 {
		enqueueN(t, c, fmt.Sprintf("plyr:q%02d", i), 1)
	}
	qc := NewQueueCollector(QueueCollectorOptions{Inspector: asynq.NewInspectorFromRedisClient(rdb), Namespace: "plyr", MaxQueues: 4, Queues: []string{"plyr:q09"}})
	reg := prometheus.NewRegistry()
	reg.MustRegister(qc)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	queues := map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "queue" {
					queues[l.GetValue()] = true
				}
			}
		}
	}
	if len(queues) != 4 || !queues["plyr:q09"] {
		t.Fatalf("exported queues = %v, want 4 including the configured plyr:q09", queues)
	}
}

// The work one scrape makes Redis do does not grow with the number of
// queued tasks: Redis's own command statistics (which count commands run
// inside Lua scripts too) are the same for 25 and for 2,500 pending tasks.
func TestQueueCollectorCostIndependentOfTaskCount(t *testing.T) {
	own := redistest.Start(t, redistest.Options{}) // CONFIG RESETSTAT is server-wide
	rdb := own.Client(t, 0)
	ctx := context.Background()
	calls := func(pending int) int {
		t.Helper()
		if err := rdb.FlushDB(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		pipe := rdb.Pipeline()
		for i := range pending {
			// A cheap stand-in for asynq.Enqueue with identical keys.
			id := fmt.Sprintf("id%d", i)
			pipe.HSet(ctx, "asynq:{plyr:default}:t:"+id, "msg", "x", "state", "pending", "pending_since", time.Now().UnixNano())
			pipe.LPush(ctx, "asynq:{plyr:default}:pending", id)
		}
		pipe.SAdd(ctx, "asynq:queues", "plyr:default")
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		qc := NewQueueCollector(QueueCollectorOptions{Inspector: asynq.NewInspectorFromRedisClient(rdb), Namespace: "plyr"})
		reg := prometheus.NewRegistry()
		reg.MustRegister(qc)
		if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if got, _ := metricValue(t, reg, "plyrtasks_queue_tasks", map[string]string{"queue": "plyr:default", "state": "pending"}); got != float64(pending) {
			t.Fatalf("pending = %v, want %d", got, pending)
		}
		return totalCalls(t, rdb)
	}
	calls(25) // loads asynq's scripts: the first EVALSHA of each misses
	small, large := calls(25), calls(2500)
	if small != large {
		t.Fatalf("Redis commands per scrape: %d with 25 tasks, %d with 2500: cost grows with queue size", small, large)
	}
	t.Logf("Redis commands per scrape (one queue): %d", small)
}

// totalCalls sums calls over INFO commandstats, minus the INFO itself.
func totalCalls(t *testing.T, rdb *redis.Client) int {
	t.Helper()
	s, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "cmdstat_") || strings.HasPrefix(line, "cmdstat_info:") {
			continue
		}
		var n int
		_, rest, _ := strings.Cut(line, "calls=")
		if _, err := fmt.Sscanf(rest, "%d", &n); err != nil {
			t.Fatalf("parse %q: %v", line, err)
		}
		total += n
	}
	return total
}
