package monitor

import (
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
)

// QueueCollectorOptions configure NewQueueCollector.
type QueueCollectorOptions struct {
	// Inspector reads the queues. Required.
	Inspector *asynq.Inspector
	// Namespace limits the report to queues named "<Namespace>:…" so a
	// shared Redis does not leak another deployment's queues into our
	// labels. Empty reports every queue.
	Namespace string
	// Queues are always reported, at zero before their first task, so
	// dashboards and alerts see them from the start. Full (namespaced)
	// asynq queue names.
	Queues []string
	// CacheFor is how long one read of Redis answers scrapes. Default 5s.
	CacheFor time.Duration
	// MaxQueues bounds how many queues are reported (label cardinality).
	// Default 32.
	MaxQueues int
	// Logger receives read errors. Default: discard.
	Logger *slog.Logger
}

// QueueCollector exports queue depth per state, latency (age of the oldest
// pending task), pause state and asynq's processed/failed totals per queue.
//
// A scrape costs O(queues) Redis work, independent of how many tasks are
// queued: Inspector.GetQueueInfo runs asynq's currentStats script (LLEN and
// ZCARD per state, GET of four counters, one HGET of the oldest pending
// task's pending_since) and its memoryUsage script, which samples at most 20
// tasks per state. Results are cached for CacheFor, so many scrapers (or a
// short scrape interval) do not multiply the load.
type QueueCollector struct {
	o   QueueCollectorOptions
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	readAt  time.Time
	queues  []queueStats
	listErr bool
}

type queueStats struct {
	name string
	info *asynq.QueueInfo // nil when reading it failed
}

var (
	descTasks = prometheus.NewDesc("plyrtasks_queue_tasks",
		"Tasks in the queue by state (pending, active, scheduled, retry, archived, completed, aggregating).",
		[]string{"queue", "state"}, nil)
	descLatency = prometheus.NewDesc("plyrtasks_queue_latency_seconds",
		"Age of the oldest pending task: how long the next task has waited. 0 when nothing is pending.",
		[]string{"queue"}, nil)
	descPaused = prometheus.NewDesc("plyrtasks_queue_paused",
		"1 when the queue is paused, else 0.", []string{"queue"}, nil)
	descProcessed = prometheus.NewDesc("plyrtasks_queue_processed_total",
		"Tasks processed from the queue, succeeded or failed (asynq's cumulative counter).", []string{"queue"}, nil)
	descFailed = prometheus.NewDesc("plyrtasks_queue_failed_total",
		"Task attempts that failed in the queue (asynq's cumulative counter).", []string{"queue"}, nil)
	descMemory = prometheus.NewDesc("plyrtasks_queue_memory_bytes",
		"Approximate Redis memory the queue's tasks use (sampled by asynq).", []string{"queue"}, nil)
	descUp = prometheus.NewDesc("plyrtasks_queue_stats_up",
		"1 when the queue's statistics were read from Redis at the last refresh, 0 when reading failed.", []string{"queue"}, nil)
)

// NewQueueCollector returns a collector to register on the metrics registry.
func NewQueueCollector(o QueueCollectorOptions) *QueueCollector {
	if o.CacheFor <= 0 {
		o.CacheFor = 5 * time.Second
	}
	if o.MaxQueues <= 0 {
		o.MaxQueues = 32
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &QueueCollector{o: o, log: log, now: time.Now}
}

// Describe implements prometheus.Collector.
func (c *QueueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTasks, descLatency, descPaused, descProcessed, descFailed, descMemory, descUp} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	for _, q := range c.snapshot() {
		if q.info == nil {
			ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0, q.name)
			continue
		}
		i := q.info
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1, q.name)
		for _, s := range []struct {
			state string
			n     int
		}{
			{"pending", i.Pending}, {"active", i.Active}, {"scheduled", i.Scheduled},
			{"retry", i.Retry}, {"archived", i.Archived}, {"completed", i.Completed},
			{"aggregating", i.Aggregating},
		} {
			ch <- prometheus.MustNewConstMetric(descTasks, prometheus.GaugeValue, float64(s.n), q.name, s.state)
		}
		ch <- prometheus.MustNewConstMetric(descLatency, prometheus.GaugeValue, i.Latency.Seconds(), q.name)
		paused := 0.0
		if i.Paused {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(descPaused, prometheus.GaugeValue, paused, q.name)
		ch <- prometheus.MustNewConstMetric(descProcessed, prometheus.CounterValue, float64(i.ProcessedTotal), q.name)
		ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(i.FailedTotal), q.name)
		ch <- prometheus.MustNewConstMetric(descMemory, prometheus.GaugeValue, float64(i.MemoryUsage), q.name)
	}
}

// snapshot returns the cached statistics, reading Redis when they are older
// than CacheFor. Concurrent scrapes wait for one read instead of each
// issuing their own.
func (c *QueueCollector) snapshot() []queueStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.readAt.IsZero() && c.now().Sub(c.readAt) < c.o.CacheFor {
		return c.queues
	}
	c.queues = c.read()
	c.readAt = c.now()
	return c.queues
}

func (c *QueueCollector) read() []queueStats {
	existing, err := c.o.Inspector.Queues()
	if err != nil {
		c.log.Warn("queue metrics: list queues", "err", err)
		out := make([]queueStats, 0, len(c.o.Queues))
		for _, q := range c.o.Queues {
			out = append(out, queueStats{name: q})
		}
		return out
	}
	names := c.names(existing)
	out := make([]queueStats, 0, len(names))
	for _, q := range names {
		if !slices.Contains(existing, q) {
			// Configured but no task seen yet: asynq has no record of it
			// and GetQueueInfo would fail; it is simply empty.
			out = append(out, queueStats{name: q, info: &asynq.QueueInfo{Queue: q}})
			continue
		}
		info, err := c.o.Inspector.GetQueueInfo(q)
		if err != nil {
			c.log.Warn("queue metrics: read queue", "queue", q, "err", err)
			out = append(out, queueStats{name: q})
			continue
		}
		out = append(out, queueStats{name: q, info: info})
	}
	return out
}

// names is the configured queues plus the namespace's other queues found in
// Redis, sorted, capped at MaxQueues (configured ones first).
func (c *QueueCollector) names(existing []string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(q string) {
		if seen[q] || len(out) >= c.o.MaxQueues {
			return
		}
		seen[q] = true
		out = append(out, q)
	}
	for _, q := range c.o.Queues {
		add(q)
	}
	extra := slices.Clone(existing)
	slices.Sort(extra)
	for _, q := range extra {
		if c.o.Namespace == "" || strings.HasPrefix(q, c.o.Namespace+":") {
			add(q)
		}
	}
	slices.Sort(out)
	return out
}
