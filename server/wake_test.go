package server_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/server"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// wakeOptions: a woken worker whose idle check is slow (5 s), so a task
// picked up sooner was picked up through the wake signal.
func wakeOptions() server.Options {
	o := fastOptions()
	o.TaskCheckInterval = 5 * time.Second
	o.Wake = server.Wake{Enabled: true, ActiveCheckInterval: 10 * time.Millisecond, Linger: 200 * time.Millisecond}
	return o
}

// timedRecorder records when each noop task started.
type timedRecorder struct {
	mu      sync.Mutex
	started map[int]time.Time
}

func (r *timedRecorder) registry() *job.Registry {
	reg := job.NewRegistry(testCatalog())
	job.Register(reg, func(ctx context.Context, j *job.Job[noopArgs]) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.started == nil {
			r.started = map[int]time.Time{}
		}
		r.started[j.Args.N] = time.Now()
		return nil
	})
	return reg
}

func (r *timedRecorder) at(n int) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.started[n]
	return t, ok
}

func TestWakeSignalPicksUpAtOnceAndWorkerSleepsAgain(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	rec := &timedRecorder{}
	s := e.start(t, rec.registry(), wakeOptions())
	c := client.New(e.rc, client.Options{Catalog: testCatalog(), Logger: discardLogger(),
		EnqueueMiddleware: []client.EnqueueMiddleware{client.WakeWorkers(e.rc, "plyr", 0)}})
	// Let the first idle check (at Start) pass and the subscription settle.
	waitFor(t, 5*time.Second, "the first idle check", func() bool { return s.WakeStats().Checks >= 1 })
	time.Sleep(100 * time.Millisecond)

	for round := range 2 {
		enq := time.Now()
		if _, err := c.Enqueue(ctx, noopArgs{N: round}); err != nil {
			t.Fatal(err)
		}
		var started time.Time
		waitFor(t, 4*time.Second, "the task to start", func() bool {
			var ok bool
			started, ok = rec.at(round)
			return ok
		})
		// Without the signal the 5 s idle check would find it after up
		// to 5 s; 2 s leaves room for a loaded machine.
		if d := started.Sub(enq); d > 2*time.Second {
			t.Errorf("round %d: picked up %s after enqueue, want well below the 5s idle check", round, d)
		}
		// Asleep again after Linger: no asynq server left registered.
		waitFor(t, 5*time.Second, "the worker to sleep", func() bool {
			servers, err := e.ins.Servers()
			return err == nil && len(servers) == 0
		})
	}
	if st := s.WakeStats(); st.Wakes != 2 {
		t.Errorf("wakes = %d, want 2 (one per round)", st.Wakes)
	}
}

func TestWakeIdleCheckFindsUnsignalledAndScheduledTasks(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	rec := &timedRecorder{}
	o := wakeOptions()
	o.TaskCheckInterval = 100 * time.Millisecond
	e.start(t, rec.registry(), o)
	// e.client publishes no wake: only the idle check can find these.
	if _, err := e.client.Enqueue(ctx, noopArgs{N: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Enqueue(ctx, noopArgs{N: 2}, client.In(time.Second)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "both tasks to run", func() bool {
		_, a := rec.at(1)
		_, b := rec.at(2)
		return a && b
	})
}

func TestWakeKeepsConcurrencyBoundAcrossSleeps(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	var running, peak, done atomic.Int64
	reg := job.NewRegistry(testCatalog())
	job.Register(reg, func(ctx context.Context, j *job.Job[noopArgs]) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		// Tasks of the second wave outlive the Linger, so the worker
		// sleeps and wakes while some still run.
		time.Sleep(time.Duration(j.Args.N) * time.Millisecond)
		running.Add(-1)
		done.Add(1)
		return nil
	})
	o := wakeOptions()
	o.Concurrency = 2
	o.TaskCheckInterval = 50 * time.Millisecond
	e.start(t, reg, o)
	c := client.New(e.rc, client.Options{Catalog: testCatalog(), Logger: discardLogger(),
		EnqueueMiddleware: []client.EnqueueMiddleware{client.WakeWorkers(e.rc, "plyr", 0)}})
	total := 0
	for _, wave := range [][]int{{20, 20, 20, 20}, {400, 30, 30, 30}, {10, 10, 10}} {
		for _, ms := range wave {
			if _, err := c.Enqueue(ctx, noopArgs{N: ms}); err != nil {
				t.Fatal(err)
			}
			total++
		}
		time.Sleep(300 * time.Millisecond)
	}
	waitFor(t, 15*time.Second, "every task to run", func() bool { return done.Load() == int64(total) })
	if p := peak.Load(); p > 2 {
		t.Errorf("peak concurrency = %d, want at most Concurrency (2)", p)
	}
}

func TestWakeShutdownRequeuesARunningTask(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	rec := &recorder{}
	o := wakeOptions()
	o.ShutdownTimeout = time.Second
	s := server.New(srv.Client(t, e.db), testRegistry(rec), o)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c := client.New(e.rc, client.Options{Catalog: testCatalog(), Logger: discardLogger(),
		EnqueueMiddleware: []client.EnqueueMiddleware{client.WakeWorkers(e.rc, "plyr", 0)}})
	res, err := c.Enqueue(ctx, blockArgs{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 6*time.Second, "the long task to start", func() bool { return rec.count("test:block") == 1 })
	// Past the Linger the worker stays awake: the task still runs.
	time.Sleep(2 * o.Wake.Linger)
	info, err := e.ins.GetTaskInfo(res.Queue, res.ID)
	if err != nil || info.State != asynq.TaskStateActive {
		t.Fatalf("after Linger: %v, %v; want the task still active", info, err)
	}
	s.Shutdown()
	info, err = e.ins.GetTaskInfo(res.Queue, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != asynq.TaskStatePending || info.Retried != 0 {
		t.Fatalf("after shutdown: state %v, retried %d; want pending, 0", info.State, info.Retried)
	}
}

func TestWakeWorkersSignalsOnlyPendingTasksOncePerWindow(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	ps := e.rc.Subscribe(ctx, "plyrtasks:wake:plyr")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
		t.Fatal(err)
	}
	msgs := ps.Channel()
	published := func() (string, bool) {
		select {
		case msg := <-msgs:
			return msg.Payload, true
		case <-time.After(300 * time.Millisecond):
			return "", false
		}
	}
	newClient := func(window time.Duration) *client.Client {
		return client.New(e.rc, client.Options{Catalog: testCatalog(), Logger: discardLogger(),
			EnqueueMiddleware: []client.EnqueueMiddleware{client.WakeWorkers(e.rc, "plyr", window)}})
	}
	type enqueue struct {
		args tasks.Args
		opts []client.Option
		want string // the message published, "" for none
	}
	tests := []struct {
		name   string
		window time.Duration
		steps  []enqueue
	}{
		{"scheduled: the idle check forwards it", time.Hour, []enqueue{
			{noopArgs{N: 1}, []client.Option{client.In(time.Hour)}, ""},
		}},
		{"pending, then again inside the window", time.Hour, []enqueue{
			{noopArgs{N: 2}, nil, "plyr:default"},
			{noopArgs{N: 3}, nil, ""},
		}},
		{"the queue is in the message", time.Hour, []enqueue{
			{noopArgs{N: 4}, []client.Option{client.Queue(tasks.QueueBulk)}, "plyr:bulk"},
		}},
		{"a duplicate after the window", 10 * time.Millisecond, []enqueue{
			{uniqueArgs{Key: "k"}, nil, "plyr:critical"},
			{uniqueArgs{Key: "k"}, nil, ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(tt.window)
			for i, st := range tt.steps {
				if i > 0 {
					time.Sleep(2 * tt.window % time.Second) // past a short window only
				}
				if _, err := c.Enqueue(ctx, st.args, st.opts...); err != nil {
					t.Fatal(err)
				}
				got, _ := published()
				if got != st.want {
					t.Errorf("step %d: published %q, want %q", i, got, st.want)
				}
			}
		})
	}
}
