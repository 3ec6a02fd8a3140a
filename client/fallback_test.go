package client_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/internal/redistest"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// deadRedis is a client for a loopback port nobody listens on.
func deadRedis(t *testing.T) *redis.Client {
	t.Helper()
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func fallbackCount(t *testing.T, reg *prometheus.Registry, kind, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "plyrtasks_fallback_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := m.GetLabel()
			if l[0].GetValue() == kind && l[1].GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestFallback(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		redis      func(t *testing.T) redis.UniversalClient
		mode       client.FallbackMode
		inline     bool
		reason     string
		wantRan    bool
		wantErr    error // nil: no error
		wantNetErr bool  // the error wraps the connection error
	}{
		{"no redis, inline", func(*testing.T) redis.UniversalClient { return nil }, client.FallbackInline, true, job.FallbackNoRedis, true, nil, false},
		{"redis down, inline", func(t *testing.T) redis.UniversalClient { return deadRedis(t) }, client.FallbackInline, true, job.FallbackEnqueueFailed, true, nil, false},
		{"no redis, error mode", func(*testing.T) redis.UniversalClient { return nil }, client.FallbackError, true, job.FallbackNoRedis, false, client.ErrUnavailable, false},
		{"redis down, error mode", func(t *testing.T) redis.UniversalClient { return deadRedis(t) }, client.FallbackError, true, job.FallbackEnqueueFailed, false, client.ErrUnavailable, true},
		{"no redis, no in-process handler", func(*testing.T) redis.UniversalClient { return nil }, client.FallbackInline, false, job.FallbackNoRedis, false, client.ErrUnavailable, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ran atomic.Int32
			var got tasks.LikeArgs
			var gotTask job.Task
			reg := likeRegistry(func(ctx context.Context, j *job.Job[tasks.LikeArgs]) error {
				ran.Add(1)
				got, gotTask = j.Args, *j.Task
				return nil
			})
			var inline *job.Registry
			if tt.inline {
				inline = reg
			}
			var logs syncBuffer
			promReg := prometheus.NewRegistry()
			c := newClient(t, tt.redis(t), client.Options{
				Fallback: tt.mode, Inline: inline, Logger: jsonLogger(&logs), Metrics: job.NewMetrics(promReg),
			})
			res, err := c.ScheduleLike(ctx, validLike.SessionID, validLike.LikeID, validLike.SubjectURI, validLike.SubjectCID)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatal(err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("err = %v; want %v", err, tt.wantErr)
			}
			var opErr *net.OpError
			if tt.wantNetErr && !errors.As(err, &opErr) {
				t.Errorf("err = %v; want it to wrap the connection error", err)
			}
			if res.FallbackReason != tt.reason {
				t.Errorf("FallbackReason = %q, want %q", res.FallbackReason, tt.reason)
			}
			if tt.wantRan {
				if ran.Load() != 1 || got != validLike {
					t.Fatalf("handler ran %d times with %+v", ran.Load(), got)
				}
				if res.Outcome != client.RanInline || res.State != "completed" || res.Err != nil || res.ID == "" || res.ID != gotTask.ID {
					t.Errorf("result = %+v (task ID %q)", res, gotTask.ID)
				}
				if !gotTask.Inline || gotTask.Queue != tasks.QueueCritical {
					t.Errorf("task = %+v", gotTask)
				}
				if n := fallbackCount(t, promReg, "pds:like", tt.reason); n != 1 {
					t.Errorf("fallback counter = %v, want 1", n)
				}
			} else if ran.Load() != 0 {
				t.Errorf("handler ran %d times", ran.Load())
			}
			// Every fallback is logged at warn with its reason; a run logs
			// its outcome as inline.
			var warned, ranLine bool
			for _, l := range logs.lines(t) {
				if l["level"] == "WARN" && l["reason"] == tt.reason && l["kind"] == "pds:like" {
					warned = true
				}
				if l["outcome"] == job.OutcomeInline && l["inline"] == true {
					ranLine = true
				}
			}
			if !warned {
				t.Errorf("no warn line with reason %s: %v", tt.reason, logs.lines(t))
			}
			if ranLine != tt.wantRan {
				t.Errorf("inline outcome line = %v, want %v", ranLine, tt.wantRan)
			}
		})
	}
}

func TestInlineRetries(t *testing.T) {
	ctx := context.Background()
	transient := errors.New("pds: 503")
	tests := []struct {
		name      string
		errs      []error // returned by attempt i; nil after the list
		opts      []client.Option
		wantCalls int
		wantState string
		wantErr   error
	}{
		{"transient then success", []error{transient, transient}, nil, 3, "completed", nil},
		{"transient every time: 1 + InlineMaxRetry attempts", []error{transient, transient, transient, transient}, nil, 3, "failed", transient},
		{"type allows fewer retries", []error{transient, transient}, []client.Option{client.MaxRetry(1)}, 2, "failed", transient},
		{"permanent: no retry", []error{job.Permanent(job.ErrSessionExpired)}, nil, 1, "failed", job.ErrSessionExpired},
		{"retry-after too long for in-process: no retry", []error{job.RetryAfter(time.Hour, transient)}, nil, 1, "failed", transient},
		{"panic: recovered, retried", []error{errors.New("panic")}, nil, 2, "completed", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			reg := likeRegistry(func(ctx context.Context, j *job.Job[tasks.LikeArgs]) error {
				n := int(calls.Add(1)) - 1
				if j.Attempt != n {
					t.Errorf("attempt %d saw Attempt = %d", n, j.Attempt)
				}
				if n < len(tt.errs) {
					if tt.errs[n].Error() == "panic" {
						panic("handler bug")
					}
					return tt.errs[n]
				}
				return nil
			})
			c := newClient(t, nil, client.Options{Inline: reg, Logger: jsonLogger(&syncBuffer{})})
			res, err := c.Enqueue(ctx, validLike, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if int(calls.Load()) != tt.wantCalls || res.State != tt.wantState {
				t.Errorf("%d calls, state %s; want %d, %s", calls.Load(), res.State, tt.wantCalls, tt.wantState)
			}
			if tt.wantErr == nil && res.Err != nil || tt.wantErr != nil && !errors.Is(res.Err, tt.wantErr) {
				t.Errorf("Result.Err = %v, want %v", res.Err, tt.wantErr)
			}
		})
	}
}

func TestInlineTimeoutFromOptions(t *testing.T) {
	reg := likeRegistry(func(ctx context.Context, j *job.Job[tasks.LikeArgs]) error {
		<-ctx.Done()
		return ctx.Err()
	})
	c := newClient(t, nil, client.Options{Inline: reg, Logger: jsonLogger(&syncBuffer{})})
	start := time.Now()
	res, err := c.Enqueue(context.Background(), validLike, client.Timeout(300*time.Millisecond), client.MaxRetry(0))
	if err != nil {
		t.Fatal(err)
	}
	// 300ms rounds up to 1s, as on a worker.
	if el := time.Since(start); el < time.Second || el > 5*time.Second {
		t.Errorf("run took %s, want the 1s timeout", el)
	}
	if !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Errorf("Result.Err = %v", res.Err)
	}
}

func TestInlineConcurrencyBlocksCaller(t *testing.T) {
	release := make(chan struct{})
	var running atomic.Int32
	reg := likeRegistry(func(ctx context.Context, j *job.Job[tasks.LikeArgs]) error {
		running.Add(1)
		defer running.Add(-1)
		<-release
		return nil
	})
	c := newClient(t, nil, client.Options{Inline: reg, InlineConcurrency: 2, Logger: jsonLogger(&syncBuffer{})})
	ctx := context.Background()
	for range 2 {
		res, err := c.Enqueue(ctx, validLike, client.NoWait())
		if err != nil || res.State != "active" || res.Outcome != client.RanInline {
			t.Fatalf("res = %+v, %v", res, err)
		}
	}
	waitFor(t, func() bool { return running.Load() == 2 })
	// Both slots busy: the third caller blocks until its context ends.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Enqueue(short, validLike)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("third enqueue = %v after %s; want to block until its deadline", err, time.Since(start))
	}
	if running.Load() != 2 {
		t.Errorf("%d running, want 2", running.Load())
	}
	// A freed slot lets the next caller through.
	done := make(chan client.Result)
	go func() {
		res, _ := c.Enqueue(ctx, validLike)
		done <- res
	}()
	close(release)
	select {
	case res := <-done:
		if res.State != "completed" {
			t.Errorf("res = %+v", res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("caller still blocked after slots freed")
	}
}

func TestCallerGivingUpDoesNotAbortTheRun(t *testing.T) {
	finished := make(chan error, 1)
	reg := likeRegistry(func(ctx context.Context, j *job.Job[tasks.LikeArgs]) error {
		time.Sleep(300 * time.Millisecond)
		finished <- ctx.Err()
		return nil
	})
	c := client.New(nil, client.Options{Inline: reg, Logger: jsonLogger(&syncBuffer{})})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res, err := c.Enqueue(ctx, validLike)
	if err != nil || res.State != "active" {
		t.Fatalf("res = %+v, %v; want state active once the caller stopped waiting", res, err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-finished:
		if err != nil {
			t.Errorf("the run's context ended with the caller's: %v", err)
		}
	default:
		t.Fatal("Close returned before the run finished")
	}
}

func TestCloseDrainsInlineRuns(t *testing.T) {
	var finished atomic.Bool
	reg := likeRegistry(func(ctx context.Context, j *job.Job[tasks.LikeArgs]) error {
		time.Sleep(300 * time.Millisecond)
		finished.Store(true)
		return nil
	})
	c := client.New(nil, client.Options{Inline: reg, Logger: jsonLogger(&syncBuffer{})})
	if _, err := c.Enqueue(context.Background(), validLike, client.NoWait()); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Error("Close returned before the in-process run finished")
	}
	if _, err := c.Enqueue(context.Background(), validLike); !errors.Is(err, client.ErrClosed) {
		t.Errorf("enqueue after Close = %v, want ErrClosed", err)
	}
}

func TestCloseStopsRetriesAndCancelsOnDeadline(t *testing.T) {
	t.Run("no retry once closing", func(t *testing.T) {
		var calls atomic.Int32
		reg := likeRegistry(func(ctx context.Context, j *job.Job[tasks.LikeArgs]) error {
			calls.Add(1)
			return job.RetryAfter(20*time.Second, errors.New("429"))
		})
		c := client.New(nil, client.Options{Inline: reg, Logger: jsonLogger(&syncBuffer{})})
		if _, err := c.Enqueue(context.Background(), validLike, client.NoWait()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return calls.Load() == 1 })
		start := time.Now()
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("Close waited %s for a retry backoff", el)
		}
		if calls.Load() != 1 {
			t.Errorf("%d attempts, want 1", calls.Load())
		}
	})
	t.Run("deadline cancels running handlers", func(t *testing.T) {
		cancelled := make(chan struct{})
		reg := likeRegistry(func(ctx context.Context, j *job.Job[tasks.LikeArgs]) error {
			<-ctx.Done()
			close(cancelled)
			return ctx.Err()
		})
		c := client.New(nil, client.Options{Inline: reg, Logger: jsonLogger(&syncBuffer{})})
		if _, err := c.Enqueue(context.Background(), validLike, client.NoWait()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := c.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close = %v, want the deadline", err)
		}
		select {
		case <-cancelled:
		case <-time.After(5 * time.Second):
			t.Fatal("the running handler was not cancelled")
		}
	})
}

func TestInlineRunSeesHeadersAndMiddleware(t *testing.T) {
	var headers map[string]string
	reg := likeRegistry(func(ctx context.Context, j *job.Job[tasks.LikeArgs]) error {
		headers = j.Headers
		return nil
	})
	var wrapped atomic.Bool
	outer := func(next job.HandlerFunc) job.HandlerFunc {
		return func(ctx context.Context, t *job.Task) error {
			wrapped.Store(true)
			return next(ctx, t)
		}
	}
	trace := func(next client.EnqueueFunc) client.EnqueueFunc {
		return func(ctx context.Context, req *client.Request) (client.Result, error) {
			req.Headers["traceparent"] = "00-1-2-01"
			return next(ctx, req)
		}
	}
	c := newClient(t, nil, client.Options{Inline: reg, Logger: jsonLogger(&syncBuffer{}),
		Middleware: []job.Middleware{outer}, EnqueueMiddleware: []client.EnqueueMiddleware{trace}})
	if _, err := c.Enqueue(context.Background(), validLike); err != nil {
		t.Fatal(err)
	}
	if headers["traceparent"] != "00-1-2-01" || !wrapped.Load() {
		t.Errorf("headers = %v, outer middleware ran = %v", headers, wrapped.Load())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
