package server_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/config"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/server"
)

// TestRunContextCauseTellsWhyItEnded: a handler learns from
// context.Cause whether an operator cancelled its task (job.ErrCancelled),
// the worker is stopping (context.Canceled: the task runs again), or the
// task timed out (context.DeadlineExceeded). Before runContext, asynq's
// cancel reached handlers as a bare context.Canceled in every case, so an
// export cancelled from the dashboard started over instead of stopping.
func TestRunContextCauseTellsWhyItEnded(t *testing.T) {
	tests := []struct {
		name string
		opts []client.Option
		end  func(t *testing.T, e *env, s interface{ Shutdown() }, id string)
		want error
	}{
		{
			name: "operator cancel",
			end: func(t *testing.T, e *env, _ interface{ Shutdown() }, id string) {
				if err := e.ins.CancelProcessing(id); err != nil {
					t.Fatal(err)
				}
			},
			want: job.ErrCancelled,
		},
		{
			name: "worker shutdown",
			end:  func(_ *testing.T, _ *env, s interface{ Shutdown() }, _ string) { go s.Shutdown() },
			want: context.Canceled,
		},
		{
			name: "timeout",
			opts: []client.Option{client.Timeout(time.Second)},
			end:  func(*testing.T, *env, interface{ Shutdown() }, string) {},
			want: context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			started := make(chan string, 1)
			causes := make(chan error, 1)
			reg := job.NewRegistry(testCatalog())
			job.Register(reg, func(ctx context.Context, j *job.Job[blockArgs]) error {
				started <- j.ID
				<-ctx.Done()
				causes <- context.Cause(ctx)
				return ctx.Err()
			})
			s := e.start(t, reg, fastOptions())
			if _, err := e.client.Enqueue(context.Background(), blockArgs{}, tt.opts...); err != nil {
				t.Fatal(err)
			}
			var id string
			select {
			case id = <-started:
			case <-time.After(10 * time.Second):
				t.Fatal("the task did not start")
			}
			tt.end(t, e, s, id)
			select {
			case got := <-causes:
				if !errors.Is(got, tt.want) {
					t.Errorf("context.Cause = %v, want %v", got, tt.want)
				}
				// Only an operator's cancel is ErrCancelled.
				if tt.want != job.ErrCancelled && errors.Is(got, job.ErrCancelled) {
					t.Errorf("context.Cause = %v, must not be ErrCancelled", got)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the handler's context did not end")
			}
		})
	}
}

// TestConcurrentShutdownWaitsForTheFirst: a Shutdown called while another
// is draining returns only once the worker has stopped. It used to return
// at once; its caller then closed the Redis client under the still-running
// asynq server, whose cancel subscriber panicked on the closed channel.
func TestConcurrentShutdownWaitsForTheFirst(t *testing.T) {
	e := newEnv(t)
	started := make(chan struct{}, 1)
	reg := job.NewRegistry(testCatalog())
	job.Register(reg, func(ctx context.Context, j *job.Job[blockArgs]) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	})
	s := e.start(t, reg, fastOptions())
	if _, err := e.client.Enqueue(context.Background(), blockArgs{}); err != nil {
		t.Fatal(err)
	}
	<-started
	first := make(chan struct{})
	go func() { s.Shutdown(); close(first) }()
	// Wait until the first Shutdown is under way (it drains for up to 1s:
	// the handler runs until asynq gives up on it).
	waitFor(t, 5*time.Second, "the first Shutdown to start", func() bool {
		err := s.Ready(context.Background())
		return err != nil && strings.Contains(err.Error(), "shutting down")
	})
	s.Shutdown()
	if err := s.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("after the second Shutdown returned, Ready = %v, want stopped", err)
	}
	select {
	case <-first:
	case <-time.After(5 * time.Second):
		t.Fatal("the first Shutdown did not return")
	}
}

// TestOperatorCancelArchivesTheTask: asynq's own cancel (the dashboard's
// button: CancelProcessing) put a running task in retry, to run again a
// few seconds later. An operator's cancel must stop it: it ends archived
// and its handler does not run again.
func TestOperatorCancelArchivesTheTask(t *testing.T) {
	e := newEnv(t)
	var runs atomic.Int32
	started := make(chan string, 4)
	reg := job.NewRegistry(testCatalog())
	job.Register(reg, func(ctx context.Context, j *job.Job[blockArgs]) error {
		runs.Add(1)
		started <- j.ID
		<-ctx.Done()
		return ctx.Err()
	})
	o := fastOptions()
	o.RetryDelay = func(int, error) time.Duration { return 50 * time.Millisecond }
	e.start(t, reg, o)
	res, err := e.client.Enqueue(context.Background(), blockArgs{})
	if err != nil {
		t.Fatal(err)
	}
	id := <-started
	if err := e.ins.CancelProcessing(id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the cancelled task to be archived", func() bool {
		info, err := e.ins.GetTaskInfo(res.Queue, res.ID)
		return err == nil && info.State == asynq.TaskStateArchived
	})
	// Its retry delay (50ms) has long passed: it must not have run again.
	time.Sleep(300 * time.Millisecond)
	if n := runs.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
}

// config.Timing.MaxDrain counts server.HandlerGrace under its own name.
func TestHandlerGraceMatchesConfig(t *testing.T) {
	var tm config.Timing
	if got := tm.MaxDrain(); got != server.HandlerGrace {
		t.Errorf("MaxDrain of zero timings = %s, want server.HandlerGrace (%s)", got, server.HandlerGrace)
	}
}
