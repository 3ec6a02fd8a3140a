package server

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// Options configure a Server. Zero fields take the documented defaults;
// timing settings must lie within Timing's ranges (Start refuses others).
type Options struct {
	// Namespace prefixes queue names; it must match the producers'.
	// Default "plyr".
	Namespace string
	// Concurrency is how many tasks run at once. Default 10.
	Concurrency int
	// Queues maps logical queue names to priorities (asynq's weighted
	// priority). Default tasks.QueuePriorities().
	Queues map[string]int

	// TaskCheckInterval: how long an idle processor sleeps after finding
	// every queue empty (asynq sleeps between ½ and 1½ of it). Default 1s.
	TaskCheckInterval time.Duration
	// DelayedTaskCheckInterval: how often scheduled and retrying tasks
	// that are due move to pending. Default 5s.
	DelayedTaskCheckInterval time.Duration
	// ShutdownTimeout: how long Shutdown lets running tasks finish before
	// it pushes them back to pending (without using up a retry). The whole
	// stop takes up to ShutdownTimeout + 1.5×TaskCheckInterval; keep that
	// below the orchestrator's kill grace period. Default 20s.
	ShutdownTimeout time.Duration
	// HealthCheckInterval: how often asynq pings Redis. Default 15s.
	HealthCheckInterval time.Duration
	// JanitorInterval: how often completed tasks past retention are
	// deleted. Default 8s.
	JanitorInterval time.Duration
	// RepairInterval: how often dangling task IDs are removed (see Repair).
	// Default 10m.
	RepairInterval time.Duration

	// RetryDelay computes the wait before retry n+1 of a failed task.
	// Default: exponential backoff with jitter (10s doubling, capped at
	// 1h). A job.RetryAfter delay is honoured on top of it either way.
	RetryDelay func(n int, err error) time.Duration

	// DisablePeriodic turns off this worker's periodic scheduler. By
	// default every worker runs one; together they enqueue exactly one task
	// per tick of every periodic type this worker has a handler for.
	DisablePeriodic bool

	// Logger receives the per-task lines, asynq's own messages and the
	// server's. Default slog.Default().
	Logger *slog.Logger
	// Metrics counts task runs. Nil: none.
	Metrics *job.Metrics
	// Middleware wraps every run outside logging, metrics and recovery
	// (job.DefaultMiddleware's extra): the tracing hook.
	Middleware []job.Middleware

	// Wake runs asynq only while there is work, and wakes on producers'
	// signal (see wake.go). Zero: off, a plain always-polling asynq server.
	Wake Wake
}

// Wake configures the woken worker (wake.go). When Enabled, an idle worker
// runs no asynq server: every TaskCheckInterval it runs one Redis script
// over all its queues (rdb.WakeCheck: due scheduled and retry tasks
// forwarded, expired completed ones deleted, pending work and dead leases
// reported), and it listens on the namespace's wake channel, where
// producers with client.WakeWorkers publish. Work found or signalled
// starts an asynq server polling every ActiveCheckInterval; it stops once
// no task started and no wake came for Linger and no task runs.
type Wake struct {
	Enabled bool
	// ActiveCheckInterval is the awake server's TaskCheckInterval: the
	// pickup latency of a task enqueued while awake is up to 1.5× this.
	// Default 20ms.
	ActiveCheckInterval time.Duration
	// Linger is how long the worker stays awake after the last pickup or
	// wake signal. It must exceed producers' coalescing window
	// (client.WakeWorkers), which skips signals while workers are awake.
	// Default 1s.
	Linger time.Duration
}

// WakeRanges are the allowed ranges of the Wake settings, and defaults.
func WakeRanges() (activeCheckInterval, linger Range) {
	return Range{Min: 5 * time.Millisecond, Max: time.Second, Default: 20 * time.Millisecond},
		Range{Min: 200 * time.Millisecond, Max: time.Minute, Default: time.Second}
}

// Range is the allowed range of one timing setting, and its default.
type Range struct {
	Min, Max, Default time.Duration
}

// Contains reports whether d lies in [Min, Max].
func (r Range) Contains(d time.Duration) bool { return d >= r.Min && d <= r.Max }

func (r Range) String() string { return fmt.Sprintf("%s..%s", r.Min, r.Max) }

// TimingRanges are the allowed ranges of the worker timing settings. Every
// value inside keeps one-off, delayed and periodic tasks running (the
// 2025-12-30 incident test runs a worker at each end); the maxima also
// bound how long a due task can wait for pickup (about 1.5×
// TaskCheckInterval + DelayedTaskCheckInterval).
type TimingRanges struct {
	TaskCheckInterval        Range
	DelayedTaskCheckInterval Range
	ShutdownTimeout          Range
	HealthCheckInterval      Range
	JanitorInterval          Range
	RepairInterval           Range
}

// Timing returns the allowed timing ranges. They are the ranges package
// config validates the environment against (config.TimingRanges, where
// the reasons for each bound are written down); a test keeps the two
// equal. RepairInterval is the server's own.
func Timing() TimingRanges {
	return TimingRanges{
		TaskCheckInterval:        Range{Min: 10 * time.Millisecond, Max: 5 * time.Second, Default: time.Second},
		DelayedTaskCheckInterval: Range{Min: 100 * time.Millisecond, Max: 10 * time.Second, Default: 5 * time.Second},
		ShutdownTimeout:          Range{Min: time.Second, Max: 20 * time.Second, Default: 20 * time.Second},
		HealthCheckInterval:      Range{Min: time.Second, Max: time.Minute, Default: 15 * time.Second},
		JanitorInterval:          Range{Min: time.Second, Max: 30 * time.Second, Default: 8 * time.Second},
		RepairInterval:           Range{Min: 10 * time.Second, Max: 24 * time.Hour, Default: 10 * time.Minute},
	}
}

// withDefaults fills zero fields.
func (o Options) withDefaults() Options {
	r := Timing()
	def := func(d *time.Duration, rg Range) {
		if *d == 0 {
			*d = rg.Default
		}
	}
	if o.Namespace == "" {
		o.Namespace = "plyr"
	}
	if o.Concurrency == 0 {
		o.Concurrency = 10
	}
	if len(o.Queues) == 0 {
		o.Queues = tasks.QueuePriorities()
	}
	def(&o.TaskCheckInterval, r.TaskCheckInterval)
	def(&o.DelayedTaskCheckInterval, r.DelayedTaskCheckInterval)
	def(&o.ShutdownTimeout, r.ShutdownTimeout)
	def(&o.HealthCheckInterval, r.HealthCheckInterval)
	def(&o.JanitorInterval, r.JanitorInterval)
	def(&o.RepairInterval, r.RepairInterval)
	if o.Wake.Enabled {
		aci, linger := WakeRanges()
		def(&o.Wake.ActiveCheckInterval, aci)
		def(&o.Wake.Linger, linger)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Validate checks o after defaults: every timing setting inside its range,
// a positive concurrency, at least one queue with a positive priority. The
// error names each bad field and its allowed range.
func (o Options) Validate() error {
	o = o.withDefaults()
	r := Timing()
	var errs []error
	check := func(name string, d time.Duration, rg Range) {
		if !rg.Contains(d) {
			errs = append(errs, fmt.Errorf("server: %s = %s is out of range %s", name, d, rg))
		}
	}
	check("TaskCheckInterval", o.TaskCheckInterval, r.TaskCheckInterval)
	check("DelayedTaskCheckInterval", o.DelayedTaskCheckInterval, r.DelayedTaskCheckInterval)
	check("ShutdownTimeout", o.ShutdownTimeout, r.ShutdownTimeout)
	check("HealthCheckInterval", o.HealthCheckInterval, r.HealthCheckInterval)
	check("JanitorInterval", o.JanitorInterval, r.JanitorInterval)
	check("RepairInterval", o.RepairInterval, r.RepairInterval)
	if o.Wake.Enabled {
		aci, linger := WakeRanges()
		check("Wake.ActiveCheckInterval", o.Wake.ActiveCheckInterval, aci)
		check("Wake.Linger", o.Wake.Linger, linger)
	}
	if o.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("server: Concurrency = %d must be at least 1", o.Concurrency))
	}
	positive := 0
	for q, p := range o.Queues {
		if q == "" {
			errs = append(errs, errors.New("server: Queues has an empty queue name"))
		}
		if p > 0 {
			positive++
		}
	}
	if positive == 0 {
		errs = append(errs, errors.New("server: Queues has no queue with a positive priority"))
	}
	return errors.Join(errs...)
}
