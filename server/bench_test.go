package server_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/logging"
	"github.com/plyr-fm/plyrtasks/server"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// BenchmarkProcessNoop measures no-op tasks processed per second through
// the full plyrtasks stack (client enqueue; server with the job middleware:
// logging, metrics, recovery; registry decode) against bare asynq (asynq
// client, ServeMux) with the same concurrency, queues and check interval,
// on the same redis-server. b.N tasks are enqueued first (not timed), then
// the server drains them (timed). It also reports the Redis commands per
// task of each phase: top-level (what the process sends; a script counts
// once) from a go-redis hook, and including the commands scripts run
// (INFO commandstats counts both).
//
//	go test -run '^$' -bench BenchmarkProcessNoop -benchtime 20000x ./server/
func BenchmarkProcessNoop(b *testing.B) {
	b.Run("plyrtasks", func(b *testing.B) { benchProcess(b, true) })
	b.Run("asynq", func(b *testing.B) { benchProcess(b, false) })
}

const benchConcurrency = 20

func benchProcess(b *testing.B, full bool) {
	ctx := context.Background()
	db := srv.DB(b)
	rc := srv.Client(b, db)
	sent := &countHook{}
	rc.AddHook(sent)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	queues := map[string]int{}
	for q, p := range tasks.QueuePriorities() {
		queues[tasks.Namespaced("plyr", q)] = p
	}
	var processed atomic.Int64

	before, sentBefore := commandCalls(b, rc), sent.n.Load()
	if full {
		c := client.New(rc, client.Options{Catalog: testCatalog(), Logger: quiet})
		for i := range b.N {
			if _, err := c.Enqueue(ctx, noopArgs{N: i}, client.Retention(0)); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		ac := asynq.NewClientFromRedisClient(rc)
		for i := range b.N {
			payload := []byte(`{"n":` + strconv.Itoa(i) + `}`)
			if _, err := ac.Enqueue(asynq.NewTask("test:noop", payload), asynq.Queue("plyr:default"), asynq.MaxRetry(10), asynq.Timeout(5*time.Minute)); err != nil {
				b.Fatal(err)
			}
		}
	}
	afterEnqueue, sentEnqueue := commandCalls(b, rc), sent.n.Load()

	var shutdown func()
	b.ResetTimer()
	cpuBefore, redisCPUBefore := processCPU(b), redisCPU(b, rc)
	start := time.Now()
	if full {
		reg := job.NewRegistry(testCatalog())
		job.Register(reg, func(ctx context.Context, j *job.Job[noopArgs]) error { processed.Add(1); return nil })
		s := server.New(rc, reg, server.Options{
			Concurrency: benchConcurrency, TaskCheckInterval: 100 * time.Millisecond,
			DisablePeriodic: true, Logger: quiet, Metrics: job.NewMetricsFor(prometheus.NewRegistry(), testCatalog()),
		})
		if err := s.Start(ctx); err != nil {
			b.Fatal(err)
		}
		shutdown = s.Shutdown
	} else {
		mux := asynq.NewServeMux()
		mux.HandleFunc("test:noop", func(ctx context.Context, t *asynq.Task) error { processed.Add(1); return nil })
		s := asynq.NewServerFromRedisClient(rc, asynq.Config{
			Concurrency: benchConcurrency, Queues: queues, TaskCheckInterval: 100 * time.Millisecond,
			Logger: logging.AsynqLogger(quiet), LogLevel: asynq.ErrorLevel,
		})
		if err := s.Start(mux); err != nil {
			b.Fatal(err)
		}
		shutdown = s.Shutdown
	}
	for processed.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	cpuAfter, redisCPUAfter := processCPU(b), redisCPU(b, rc)
	b.StopTimer()
	afterProcess, sentProcess := commandCalls(b, rc), sent.n.Load()
	shutdown()

	n := float64(b.N)
	b.ReportMetric(n/elapsed.Seconds(), "tasks/s")
	// CPU per task is steadier than tasks/s on a loaded machine.
	b.ReportMetric(float64((cpuAfter-cpuBefore).Microseconds())/n, "worker-cpu-µs/task")
	b.ReportMetric(float64((redisCPUAfter-redisCPUBefore).Microseconds())/n, "redis-cpu-µs/task")
	b.ReportMetric(float64(sentEnqueue-sentBefore-1)/n, "enqueue-cmds/task")
	b.ReportMetric(float64(sentProcess-sentEnqueue-1)/n, "process-cmds/task")
	b.ReportMetric(float64(afterEnqueue-before)/n, "enqueue-cmds+lua/task")
	b.ReportMetric(float64(afterProcess-afterEnqueue)/n, "process-cmds+lua/task")
}

// commandCalls is the redis-server's total command count, less the INFO
// calls that read it.
func commandCalls(b *testing.B, rc *redis.Client) int64 {
	b.Helper()
	info, err := rc.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") || name == "cmdstat_info" {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, err := strconv.ParseInt(calls, 10, 64)
		if err != nil {
			b.Fatalf("commandstats line %q: %v", line, err)
		}
		total += n
	}
	return total
}

// processCPU is this process' user+system CPU time.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPU is the redis-server's user+system CPU time (INFO cpu).
func redisCPU(b *testing.B, rc *redis.Client) time.Duration {
	info, err := rc.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("INFO cpu line %q: %v", line, err)
			}
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}

// countHook counts the commands a go-redis client sends.
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}
