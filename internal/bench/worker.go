package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/logging"
	"github.com/plyr-fm/plyrtasks/server"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// The benchmark's task: a no-op whose payload carries its enqueue time, so
// the worker can tell its pickup latency (same machine, same clock).

// Kind is the benchmark task's type.
const Kind = "bench:noop"

// Namespace is the benchmark's queue namespace (its own redis-server).
const Namespace = "plyr"

// noopArgs is the benchmark task's payload.
type noopArgs struct {
	// T is the enqueue time, Unix ns; 0: not timed.
	T int64 `json:"t"`
}

func (noopArgs) Kind() string { return Kind }

// catalog declares the benchmark task alone (no periodic types: an idle
// worker's cost is the worker's own).
func catalog() *tasks.Catalog { return tasks.NewCatalog(tasks.Declare[noopArgs]()) }

// Worker modes: which stack runs the tasks.
const (
	ModeAsynq     = "asynq"     // asynq.NewServer + ServeMux
	ModePlyrtasks = "plyrtasks" // server.New + job registry + default middleware
	ModeWake      = "wake"      // the same with server.Options.Wake
)

// WorkerConfig is what one worker child runs.
type WorkerConfig struct {
	Redis             string
	Mode              string
	Concurrency       int
	TaskCheckInterval time.Duration
	// ActiveCheckInterval and Linger apply to ModeWake.
	ActiveCheckInterval time.Duration
	Linger              time.Duration
	// Target: the worker notes the time its processed count reaches it.
	Target int64
}

// Args renders c as the worker command's flags (ParseWorkerArgs reads
// them back).
func (c WorkerConfig) Args() []string {
	return []string{
		"--redis", c.Redis, "--mode", c.Mode, "--concurrency", fmt.Sprint(c.Concurrency),
		"--task-check-interval", c.TaskCheckInterval.String(),
		"--active-check-interval", c.ActiveCheckInterval.String(), "--linger", c.Linger.String(),
		"--target", fmt.Sprint(c.Target),
	}
}

// ParseWorkerArgs parses the flags Args renders.
func ParseWorkerArgs(args []string) (WorkerConfig, error) {
	var c WorkerConfig
	fs := flag.NewFlagSet("bench worker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.Redis, "redis", "", "")
	fs.StringVar(&c.Mode, "mode", ModePlyrtasks, "")
	fs.IntVar(&c.Concurrency, "concurrency", 100, "")
	fs.DurationVar(&c.TaskCheckInterval, "task-check-interval", time.Second, "")
	fs.DurationVar(&c.ActiveCheckInterval, "active-check-interval", 0, "")
	fs.DurationVar(&c.Linger, "linger", 0, "")
	fs.Int64Var(&c.Target, "target", 0, "")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("bench worker: %w", err)
	}
	if c.Redis == "" {
		return c, fmt.Errorf("bench worker: --redis is required")
	}
	return c, nil
}

// WorkerStats is a worker's answer to "stats".
type WorkerStats struct {
	Processed int64 `json:"processed"`
	// Elapsed from just before the server started to the processed count
	// reaching Target; 0 until then.
	Elapsed time.Duration `json:"elapsed"`
	// Pickup latencies (enqueue to handler start) since the last reset.
	Latencies []time.Duration `json:"latencies,omitempty"`
	Wakes     int64           `json:"wakes"`
}

// recorder counts runs and pickup latencies.
type recorder struct {
	processed atomic.Int64
	target    int64
	start     time.Time
	doneAt    atomic.Int64 // ns since start

	mu  sync.Mutex
	lat []time.Duration
}

func (r *recorder) record(enqueued int64) {
	if enqueued > 0 {
		d := time.Since(time.Unix(0, enqueued))
		r.mu.Lock()
		r.lat = append(r.lat, d)
		r.mu.Unlock()
	}
	if n := r.processed.Add(1); n == r.target {
		r.doneAt.Store(int64(time.Since(r.start)))
	}
}

func (r *recorder) stats(reset bool) WorkerStats {
	r.mu.Lock()
	lat := r.lat
	if reset {
		r.lat = nil
	} else {
		lat = slices.Clone(lat)
	}
	r.mu.Unlock()
	return WorkerStats{Processed: r.processed.Load(), Elapsed: time.Duration(r.doneAt.Load()), Latencies: lat}
}

// RunWorker is the worker child (`plyrtasks bench worker`): it runs c's
// stack on no-op tasks, writes {"ready":true} to out once started, then
// answers each line of in — "stats", "reset" (stats, then forget the
// latencies) or "quit" — with one JSON line. It returns at "quit", at the
// end of in, or when ctx ends.
func RunWorker(ctx context.Context, c WorkerConfig, in io.Reader, out io.Writer) error {
	rc := redis.NewClient(&redis.Options{Addr: c.Redis, PoolSize: 32})
	defer rc.Close()
	if err := rc.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("bench worker: redis: %w", err)
	}
	// The full stack logs a line per task as deployed; the lines are
	// formatted, then dropped.
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	rec := &recorder{target: c.Target}
	var stop func()
	var wakes func() int64
	rec.start = time.Now()
	switch c.Mode {
	case ModeAsynq:
		mux := asynq.NewServeMux()
		mux.HandleFunc(Kind, func(ctx context.Context, t *asynq.Task) error {
			var a noopArgs
			if err := json.Unmarshal(t.Payload(), &a); err != nil {
				return err
			}
			rec.record(a.T)
			return nil
		})
		s := asynq.NewServerFromRedisClient(rc, asynq.Config{
			Concurrency: c.Concurrency, Queues: queues(), TaskCheckInterval: c.TaskCheckInterval,
			Logger: logging.AsynqLogger(quiet), LogLevel: asynq.ErrorLevel,
		})
		if err := s.Start(mux); err != nil {
			return fmt.Errorf("bench worker: %w", err)
		}
		stop, wakes = s.Shutdown, func() int64 { return 0 }
	case ModePlyrtasks, ModeWake:
		reg := job.NewRegistry(catalog())
		job.Register(reg, func(ctx context.Context, j *job.Job[noopArgs]) error {
			rec.record(j.Args.T)
			return nil
		})
		o := server.Options{
			Namespace: Namespace, Concurrency: c.Concurrency, TaskCheckInterval: c.TaskCheckInterval,
			DisablePeriodic: true, Logger: quiet, Metrics: job.NewMetricsFor(prometheus.NewRegistry(), catalog()),
		}
		if c.Mode == ModeWake {
			o.Wake = server.Wake{Enabled: true, ActiveCheckInterval: c.ActiveCheckInterval, Linger: c.Linger}
		}
		s := server.New(rc, reg, o)
		if err := s.Start(ctx); err != nil {
			return fmt.Errorf("bench worker: %w", err)
		}
		stop, wakes = s.Shutdown, func() int64 { return s.WakeStats().Wakes }
	default:
		return fmt.Errorf("bench worker: unknown mode %q", c.Mode)
	}
	defer stop()

	enc := json.NewEncoder(out)
	if err := enc.Encode(map[string]bool{"ready": true}); err != nil {
		return err
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok || line == "quit" {
				return nil
			}
			st := rec.stats(line == "reset")
			st.Wakes = wakes()
			if err := enc.Encode(st); err != nil {
				return err
			}
		}
	}
}

// queues are the namespaced queues with plyrtasks' priorities.
func queues() map[string]int {
	out := map[string]int{}
	for q, p := range tasks.QueuePriorities() {
		out[tasks.Namespaced(Namespace, q)] = p
	}
	return out
}
