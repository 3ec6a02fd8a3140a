package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// Spawn returns the command that runs the worker child with args (the
// flags of WorkerConfig.Args): `plyrtasks bench worker ARGS` in the
// binary, the test binary itself in tests.
type Spawn func(args []string) *exec.Cmd

// Options size a run. Zero fields take the defaults (Quick's when Quick).
type Options struct {
	// Quick shrinks every size so a run ends within a minute.
	Quick bool
	// Concurrency of every worker. Default 100.
	Concurrency int
	// Tasks is the backlog each stack drains for throughput. Default
	// 50,000 (quick 3,000).
	Tasks int
	// CountTasks is the backlog the per-task command counts run over.
	// Default 5,000 (quick 1,000).
	CountTasks int
	// EnqueueTasks per enqueue measurement. Default 10,000 (quick 2,000).
	EnqueueTasks int
	// EnqueueConcurrency of the concurrent enqueue. Default 16.
	EnqueueConcurrency int
	// Rate and RateDuration: the steady load of the pickup measurement
	// (after a second of warm-up). Default 500/s for 10s (quick 2s).
	Rate         int
	RateDuration time.Duration
	// IdleWindow: how long idle cost is counted. Default 30s (quick 2s).
	IdleWindow time.Duration
	// IdleSamples: tasks enqueued one at a time into idle queues, about
	// 2 s apart. Default 20 (quick 3).
	IdleSamples int
	// RSSTasks the woken plyrtasks worker processes while its memory is
	// sampled. Default 1,000,000 (quick 10,000).
	RSSTasks int
	// TaskCheckInterval of the plain stacks and the woken worker's idle
	// check. Default 1s (asynq's and plyrtasks' default).
	TaskCheckInterval time.Duration
	// ActiveCheckInterval and Linger of the woken worker. Defaults 20ms,
	// 1s (server.Wake's).
	ActiveCheckInterval time.Duration
	Linger              time.Duration

	// Spawn runs the worker child. Required.
	Spawn Spawn
	// Progress receives a line per phase. Nil: none.
	Progress io.Writer
}

func (o Options) withDefaults() Options {
	pick := func(v *int, full, quick int) {
		if *v == 0 {
			*v = full
			if o.Quick {
				*v = quick
			}
		}
	}
	pickD := func(v *time.Duration, full, quick time.Duration) {
		if *v == 0 {
			*v = full
			if o.Quick {
				*v = quick
			}
		}
	}
	pick(&o.Concurrency, 100, 100)
	pick(&o.Tasks, 50_000, 3_000)
	pick(&o.CountTasks, 5_000, 1_000)
	pick(&o.EnqueueTasks, 10_000, 2_000)
	pick(&o.EnqueueConcurrency, 16, 16)
	pick(&o.Rate, 500, 500)
	pickD(&o.RateDuration, 10*time.Second, 2*time.Second)
	pickD(&o.IdleWindow, 30*time.Second, 2*time.Second)
	pick(&o.IdleSamples, 20, 3)
	pick(&o.RSSTasks, 1_000_000, 10_000)
	pickD(&o.TaskCheckInterval, time.Second, time.Second)
	pickD(&o.ActiveCheckInterval, 20*time.Millisecond, 20*time.Millisecond)
	pickD(&o.Linger, time.Second, time.Second)
	return o
}

// Stack results: one column of the table.
type StackResult struct {
	Mode string
	// TasksPerSec: no-op tasks processed per second draining a backlog.
	TasksPerSec float64
	// EnqueueSingle: enqueues/s from one goroutine; EnqueueConcurrent:
	// from EnqueueConcurrency goroutines.
	EnqueueSingle, EnqueueConcurrent float64
	// Pickup latency (enqueue → handler) at Rate, and into idle queues.
	RateP50, RateP99, IdleP50, IdleP99 time.Duration
	RateN, IdleN                       int
	// Commands per task while draining a backlog: enqueue and process,
	// top-level (what the processes sent) and with Lua internals.
	EnqueueCmds, EnqueueCmdsLua, ProcessCmds, ProcessCmdsLua float64
	// Commands per second of the idle worker.
	IdleCmds, IdleCmdsLua float64
}

// Ceiling is the same Redis driven without a task system.
type Ceiling struct {
	// TasksPerSec: Concurrency goroutines each doing a minimal reliable
	// dequeue (one script: pending → active, read the message) and ack
	// (one script: drop from active, delete the message) per task — two
	// round trips per task, where asynq needs about three.
	TasksPerSec float64
	// EnqueueSingle / EnqueueConcurrent: a minimal enqueue script (HSET +
	// LPUSH) from one goroutine / EnqueueConcurrency goroutines.
	EnqueueSingle, EnqueueConcurrent float64
	// Pipelined: the same enqueue script in pipelines of 100 from
	// EnqueueConcurrency goroutines: Redis' raw capacity.
	Pipelined float64
}

// RSSResult is the woken plyrtasks worker's memory over RSSTasks.
type RSSResult struct {
	Tasks   int
	Elapsed time.Duration
	Peak    int64   // VmHWM, bytes
	Samples []int64 // VmRSS, bytes, evenly spread over the run
}

// Report is one run's results.
type Report struct {
	Options Options
	Stacks  []StackResult // asynq, plyrtasks, wake
	Ceiling Ceiling
	RSS     RSSResult
	Took    time.Duration
}

// Run starts a redis-server and measures everything Report holds.
func Run(ctx context.Context, o Options) (*Report, error) {
	o = o.withDefaults()
	if o.Spawn == nil {
		return nil, errors.New("bench: Options.Spawn is required")
	}
	start := time.Now()
	rs, err := startRedis(ctx)
	if err != nil {
		return nil, err
	}
	defer rs.stop()
	b := &runner{o: o, redis: rs}
	b.admin = newAdmin(rs.Addr, 2*max(o.Concurrency, o.EnqueueConcurrency))
	defer b.admin.Close()

	rep := &Report{Options: o}
	b.progress("ceiling")
	if rep.Ceiling, err = b.ceiling(ctx); err != nil {
		return nil, err
	}
	for _, mode := range []string{ModeAsynq, ModePlyrtasks, ModeWake} {
		r, err := b.stack(ctx, mode)
		if err != nil {
			return nil, err
		}
		rep.Stacks = append(rep.Stacks, r)
	}
	b.progress("rss: %d tasks through the woken plyrtasks worker", o.RSSTasks)
	if rep.RSS, err = b.rss(ctx); err != nil {
		return nil, err
	}
	rep.Took = time.Since(start)
	return rep, nil
}

// newAdmin is the bench's own client: the ceiling's load, FLUSHALL
// between phases and INFO commandstats.
func newAdmin(addr string, pool int) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, PoolSize: pool})
}

type runner struct {
	o     Options
	redis *redisServer
	admin *redis.Client
}

func (b *runner) progress(format string, args ...any) {
	if b.o.Progress != nil {
		fmt.Fprintf(b.o.Progress, "bench: "+format+"\n", args...)
	}
}

func (b *runner) flush(ctx context.Context) error {
	if err := b.admin.FlushAll(ctx).Err(); err != nil {
		return fmt.Errorf("bench: FLUSHALL: %w", err)
	}
	return nil
}

// producer enqueues benchmark tasks the way mode's producers do.
type producer struct {
	enqueue func(ctx context.Context, t int64) error
	close   func()
}

func newProducer(mode, addr string) producer {
	rc := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	switch mode {
	case ModeAsynq:
		ac := asynq.NewClientFromRedisClient(rc)
		queue := tasks.Namespaced(Namespace, tasks.QueueDefault)
		return producer{
			enqueue: func(ctx context.Context, t int64) error {
				payload := []byte(`{"t":` + strconv.FormatInt(t, 10) + `}`)
				_, err := ac.EnqueueContext(ctx, asynq.NewTask(Kind, payload), asynq.Queue(queue), asynq.MaxRetry(10), asynq.Timeout(5*time.Minute))
				return err
			},
			close: func() { ac.Close(); rc.Close() },
		}
	default:
		opts := client.Options{Namespace: Namespace, Catalog: catalog(), Logger: quiet, Fallback: client.FallbackError}
		if mode == ModeWake {
			opts.EnqueueMiddleware = []client.EnqueueMiddleware{client.WakeWorkers(rc, Namespace, 0)}
		}
		c := client.New(rc, opts)
		return producer{
			enqueue: func(ctx context.Context, t int64) error {
				_, err := c.Enqueue(ctx, noopArgs{T: t}, client.Retention(0))
				return err
			},
			close: func() { _ = c.Close(context.Background()); rc.Close() },
		}
	}
}

// enqueueN enqueues n untimed tasks from g goroutines and returns the rate.
func enqueueN(ctx context.Context, p producer, n, g int) (float64, error) {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := p.enqueue(ctx, 0); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, fmt.Errorf("bench: enqueue: %w", firstErr)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// child is a running worker child.
type child struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	stderr *limitedBuffer
	done   chan struct{}
}

func (b *runner) spawn(ctx context.Context, c WorkerConfig) (*child, error) {
	cmd := b.o.Spawn(c.Args())
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	ch := &child{cmd: cmd, in: in, out: bufio.NewScanner(out), stderr: &limitedBuffer{max: 64 << 10}, done: make(chan struct{})}
	ch.out.Buffer(make([]byte, 1<<20), 64<<20)
	cmd.Stderr = ch.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start worker: %w", err)
	}
	ready := make(chan error, 1)
	go func() {
		if !ch.out.Scan() {
			ready <- fmt.Errorf("bench: worker exited before it was ready: %s", ch.stderr.String())
			return
		}
		ready <- nil
	}()
	select {
	case err := <-ready:
		if err != nil {
			ch.kill()
			return nil, err
		}
	case <-time.After(30 * time.Second):
		ch.kill()
		return nil, errors.New("bench: worker not ready after 30s")
	case <-ctx.Done():
		ch.kill()
		return nil, ctx.Err()
	}
	return ch, nil
}

// ask sends a command line and reads the stats answer.
func (c *child) ask(cmd string) (WorkerStats, error) {
	var st WorkerStats
	if _, err := io.WriteString(c.in, cmd+"\n"); err != nil {
		return st, fmt.Errorf("bench: worker: %w (%s)", err, c.stderr.String())
	}
	if !c.out.Scan() {
		return st, fmt.Errorf("bench: worker stopped answering: %s", c.stderr.String())
	}
	if err := json.Unmarshal(c.out.Bytes(), &st); err != nil {
		return st, fmt.Errorf("bench: worker answer %q: %w", c.out.Text(), err)
	}
	return st, nil
}

// stop ends the worker once its numbers are read: killed, since a
// graceful asynq stop waits out the poll sleep and nothing it holds
// matters (Redis is flushed before the next phase).
func (c *child) stop() {
	c.in.Close()
	c.kill()
}

func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}

// waitProcessed polls the worker until it processed n tasks, at most d.
func (c *child) waitProcessed(ctx context.Context, n int64, d time.Duration) (WorkerStats, error) {
	deadline := time.Now().Add(d)
	for {
		st, err := c.ask("stats")
		if err != nil || st.Processed >= n {
			return st, err
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("bench: worker processed %d of %d tasks in %s", st.Processed, n, d)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (b *runner) config(mode, addr string, target int64) WorkerConfig {
	return WorkerConfig{
		Redis: addr, Mode: mode, Concurrency: b.o.Concurrency, TaskCheckInterval: b.o.TaskCheckInterval,
		ActiveCheckInterval: b.o.ActiveCheckInterval, Linger: b.o.Linger, Target: target,
	}
}

// drainTimeout bounds a drain of n tasks: generous (50 tasks/s at least).
func drainTimeout(n int) time.Duration { return 30*time.Second + time.Duration(n)*20*time.Millisecond }

func (b *runner) stack(ctx context.Context, mode string) (StackResult, error) {
	o := b.o
	r := StackResult{Mode: mode}
	var err error

	// Enqueue rates, no worker running.
	b.progress("%s: enqueue", mode)
	p := newProducer(mode, b.redis.Addr)
	defer p.close()
	if err := b.flush(ctx); err != nil {
		return r, err
	}
	if r.EnqueueSingle, err = enqueueN(ctx, p, o.EnqueueTasks, 1); err != nil {
		return r, err
	}
	if r.EnqueueConcurrent, err = enqueueN(ctx, p, o.EnqueueTasks, o.EnqueueConcurrency); err != nil {
		return r, err
	}

	// Commands per task: producer and worker each behind a counting proxy.
	b.progress("%s: commands per task over %d tasks", mode, o.CountTasks)
	if err := b.countPerTask(ctx, mode, &r); err != nil {
		return r, err
	}

	// Throughput: a backlog of Tasks, then the worker drains it.
	b.progress("%s: throughput over %d tasks", mode, o.Tasks)
	if err := b.flush(ctx); err != nil {
		return r, err
	}
	if _, err := enqueueN(ctx, p, o.Tasks, o.EnqueueConcurrency); err != nil {
		return r, err
	}
	w, err := b.spawn(ctx, b.config(mode, b.redis.Addr, int64(o.Tasks)))
	if err != nil {
		return r, err
	}
	st, err := w.waitProcessed(ctx, int64(o.Tasks), drainTimeout(o.Tasks))
	w.stop()
	if err != nil {
		return r, err
	}
	r.TasksPerSec = float64(o.Tasks) / st.Elapsed.Seconds()

	// Idle cost and idle pickup, the worker behind a counting proxy.
	b.progress("%s: idle cost over %s, %d idle pickups", mode, o.IdleWindow, o.IdleSamples)
	if err := b.idle(ctx, mode, p, &r); err != nil {
		return r, err
	}

	// Pickup at a steady rate.
	b.progress("%s: pickup at %d tasks/s for %s", mode, o.Rate, o.RateDuration)
	if err := b.flush(ctx); err != nil {
		return r, err
	}
	w, err = b.spawn(ctx, b.config(mode, b.redis.Addr, 0))
	if err != nil {
		return r, err
	}
	lat, err := b.atRate(ctx, w, p, nil)
	w.stop()
	if err != nil {
		return r, err
	}
	r.RateN = len(lat)
	r.RateP50, r.RateP99 = percentile(lat, 0.50), percentile(lat, 0.99)
	return r, nil
}

// countPerTask measures commands per task, enqueue and process, over a
// backlog of CountTasks.
func (b *runner) countPerTask(ctx context.Context, mode string, r *StackResult) error {
	n := b.o.CountTasks
	if err := b.flush(ctx); err != nil {
		return err
	}
	pp, err := newCountingProxy(b.redis.Addr)
	if err != nil {
		return err
	}
	defer pp.Close()
	p := newProducer(mode, pp.Addr())
	defer p.close()
	// A first enqueue loads the scripts and opens connections: not counted.
	if err := p.enqueue(ctx, 0); err != nil {
		return fmt.Errorf("bench: enqueue: %w", err)
	}
	before, err := commandCalls(ctx, b.admin)
	if err != nil {
		return err
	}
	pp.Reset()
	if _, err := enqueueN(ctx, p, n, 1); err != nil {
		return err
	}
	enqTop := pp.Count()
	mid, err := commandCalls(ctx, b.admin)
	if err != nil {
		return err
	}
	wp, err := newCountingProxy(b.redis.Addr)
	if err != nil {
		return err
	}
	defer wp.Close()
	w, err := b.spawn(ctx, b.config(mode, wp.Addr(), int64(n+1)))
	if err != nil {
		return err
	}
	_, err = w.waitProcessed(ctx, int64(n+1), drainTimeout(n))
	procTop := wp.Count()
	after, cerr := commandCalls(ctx, b.admin)
	w.stop()
	if err != nil {
		return err
	}
	if cerr != nil {
		return cerr
	}
	r.EnqueueCmds = float64(enqTop) / float64(n)
	r.EnqueueCmdsLua = float64(mid-before) / float64(n)
	// The worker's start-up (connections, first heartbeat) is in these,
	// spread over n tasks.
	r.ProcessCmds = float64(procTop) / float64(n+1)
	r.ProcessCmdsLua = float64(after-mid) / float64(n+1)
	return nil
}

// idle measures the idle worker's commands per second, then pickup
// latency of tasks enqueued one at a time into idle queues.
func (b *runner) idle(ctx context.Context, mode string, p producer, r *StackResult) error {
	o := b.o
	if err := b.flush(ctx); err != nil {
		return err
	}
	wp, err := newCountingProxy(b.redis.Addr)
	if err != nil {
		return err
	}
	defer wp.Close()
	w, err := b.spawn(ctx, b.config(mode, wp.Addr(), 0))
	if err != nil {
		return err
	}
	defer w.stop()
	// Past start-up: connections, the first heartbeat and check.
	warm := 1500 * time.Millisecond
	if o.Quick {
		warm = time.Second
	}
	if err := sleep(ctx, warm); err != nil {
		return err
	}
	if r.IdleCmds, r.IdleCmdsLua, err = b.idleRate(ctx, wp, o.IdleWindow); err != nil {
		return err
	}

	for i := range o.IdleSamples {
		// Past the woken worker's Linger (it sleeps between Linger and
		// 1.5 × Linger after the last pickup), at a random phase of the
		// plain workers' poll sleep.
		gap := o.Linger*3/2 + 200*time.Millisecond + rand.N(o.TaskCheckInterval)
		if err := sleep(ctx, gap); err != nil {
			return err
		}
		if err := p.enqueue(ctx, time.Now().UnixNano()); err != nil {
			return fmt.Errorf("bench: enqueue: %w", err)
		}
		if _, err := w.waitProcessed(ctx, int64(i+1), 10*time.Second+3*o.TaskCheckInterval); err != nil {
			return err
		}
	}
	st, err := w.ask("stats")
	if err != nil {
		return err
	}
	r.IdleN = len(st.Latencies)
	r.IdleP50, r.IdleP99 = percentile(st.Latencies, 0.50), percentile(st.Latencies, 0.99)
	return nil
}

// atRate has p enqueue Rate tasks/s to worker w: a second of warm-up,
// then RateDuration measured. It returns the measured pickup latencies;
// count, when not nil, is called between warm-up and measure and after it
// (the frontier counts commands with it).
func (b *runner) atRate(ctx context.Context, w *child, p producer, count func(phase int)) ([]time.Duration, error) {
	interval := time.Second / time.Duration(b.o.Rate)
	var sent int64
	pace := func(d time.Duration) error {
		start := time.Now()
		for i := 0; ; i++ {
			due := start.Add(time.Duration(i) * interval)
			if due.Sub(start) >= d {
				return nil
			}
			if wait := time.Until(due); wait > 0 {
				if err := sleep(ctx, wait); err != nil {
					return err
				}
			}
			if err := p.enqueue(ctx, time.Now().UnixNano()); err != nil {
				return fmt.Errorf("bench: enqueue: %w", err)
			}
			sent++
		}
	}
	if err := pace(time.Second); err != nil {
		return nil, err
	}
	if _, err := w.waitProcessed(ctx, sent, 30*time.Second); err != nil {
		return nil, err
	}
	if _, err := w.ask("reset"); err != nil {
		return nil, err
	}
	if count != nil {
		count(0)
	}
	if err := pace(b.o.RateDuration); err != nil {
		return nil, err
	}
	st, err := w.waitProcessed(ctx, sent, 30*time.Second)
	if err != nil {
		return nil, err
	}
	if count != nil {
		count(1)
	}
	return st.Latencies, nil
}

// rss runs RSSTasks through the woken plyrtasks worker, producers keeping
// a bounded backlog, and samples the worker's VmRSS.
func (b *runner) rss(ctx context.Context) (RSSResult, error) {
	o := b.o
	res := RSSResult{Tasks: o.RSSTasks}
	if err := b.flush(ctx); err != nil {
		return res, err
	}
	p := newProducer(ModeWake, b.redis.Addr)
	defer p.close()
	w, err := b.spawn(ctx, b.config(ModeWake, b.redis.Addr, int64(o.RSSTasks)))
	if err != nil {
		return res, err
	}
	defer w.stop()
	pid := w.cmd.Process.Pid
	const samples = 20
	batch := max(o.RSSTasks/(samples*5), 1)
	start := time.Now()
	sent := 0
	var all []int64
	for sent < o.RSSTasks {
		n := min(batch, o.RSSTasks-sent)
		if _, err := enqueueN(ctx, p, n, o.EnqueueConcurrency); err != nil {
			return res, err
		}
		sent += n
		// Keep the backlog under two batches: memory is the worker's.
		if _, err := w.waitProcessed(ctx, int64(sent-batch), drainTimeout(2*batch)); err != nil {
			return res, err
		}
		rss, _, err := procMemory(pid)
		if err != nil {
			return res, err
		}
		all = append(all, rss)
	}
	if _, err := w.waitProcessed(ctx, int64(o.RSSTasks), drainTimeout(2*batch)); err != nil {
		return res, err
	}
	res.Elapsed = time.Since(start)
	rss, hwm, err := procMemory(pid)
	if err != nil {
		return res, err
	}
	all = append(all, rss)
	// VmHWM and VmRSS come from per-CPU cached counters, so a VmRSS read
	// earlier can exceed a later VmHWM by a few pages (seen in CI:
	// 60186624 > 60170240): the peak is the larger of all of them.
	res.Peak = max(hwm, slices.Max(all))
	step := max(len(all)/samples, 1)
	for i := 0; i < len(all); i += step {
		res.Samples = append(res.Samples, all[i])
	}
	if last := all[len(all)-1]; res.Samples[len(res.Samples)-1] != last {
		res.Samples = append(res.Samples, last)
	}
	return res, nil
}

// idleRate measures an idle worker's Redis commands per second over
// window: top-level ones (what it sent through wp) and all that Redis ran,
// scripts' inner commands included (INFO commandstats). Nothing else may
// talk to the bench's Redis meanwhile.
func (b *runner) idleRate(ctx context.Context, wp *countingProxy, window time.Duration) (top, lua float64, err error) {
	before, err := commandCalls(ctx, b.admin)
	if err != nil {
		return 0, 0, err
	}
	wp.Reset()
	start := time.Now()
	if err := sleep(ctx, window); err != nil {
		return 0, 0, err
	}
	n := wp.Count()
	el := time.Since(start).Seconds()
	after, err := commandCalls(ctx, b.admin)
	if err != nil {
		return 0, 0, err
	}
	return float64(n) / el, float64(after-before) / el, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// percentile is the q-quantile of ds (nearest rank); 0 when empty.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// limitedBuffer keeps the first max bytes written (a child's stderr).
type limitedBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
