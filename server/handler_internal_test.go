package server

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/job"
)

func TestBackoffBounds(t *testing.T) {
	tests := []struct {
		n        int
		min, max time.Duration
	}{
		{0, 5 * time.Second, 10 * time.Second},
		{1, 10 * time.Second, 20 * time.Second},
		{3, 40 * time.Second, 80 * time.Second},
		{8, 1280 * time.Second, 2560 * time.Second}, // 10s·2⁸, under the cap
		{9, 30 * time.Minute, time.Hour},            // capped
		{60, 30 * time.Minute, time.Hour},           // no overflow
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 200 {
				d := backoff(tt.n)
				if d < tt.min || d > tt.max {
					t.Fatalf("backoff(%d) = %s, want within [%s, %s]", tt.n, d, tt.min, tt.max)
				}
				seen[d] = true
			}
			if len(seen) < 2 {
				t.Errorf("backoff(%d) has no jitter", tt.n)
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	s := &Server{}
	fixed := &Server{opts: Options{RetryDelay: func(n int, err error) time.Duration { return time.Duration(n+1) * time.Second }}}
	tests := []struct {
		name     string
		s        *Server
		n        int
		err      error
		min, max time.Duration
	}{
		{"backoff", s, 0, errors.New("x"), 5 * time.Second, 10 * time.Second},
		{"retry-after above backoff wins", s, 0, job.RetryAfter(10*time.Minute, errors.New("429")), 10 * time.Minute, 10 * time.Minute},
		{"retry-after below backoff", s, 3, job.RetryAfter(time.Second, errors.New("429")), 40 * time.Second, 80 * time.Second},
		{"wrapped retry-after", s, 0, fmt.Errorf("pds: %w", job.RetryAfter(time.Hour, errors.New("429"))), time.Hour, time.Hour},
		{"lease expired: soon", s, 5, asynq.ErrLeaseExpired, time.Second, time.Second},
		{"custom delay", fixed, 2, errors.New("x"), 3 * time.Second, 3 * time.Second},
		{"custom delay, retry-after wins", fixed, 0, job.RetryAfter(time.Minute, errors.New("x")), time.Minute, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.s.retryDelay(tt.n, tt.err, nil)
			if d < tt.min || d > tt.max {
				t.Errorf("retryDelay = %s, want within [%s, %s]", d, tt.min, tt.max)
			}
		})
	}
}

func TestIsFailure(t *testing.T) {
	tests := []struct {
		name     string
		stopping bool
		err      error
		want     bool
	}{
		{"error while running", false, errors.New("x"), true},
		{"cancelled while running (cancel request)", false, context.Canceled, true},
		{"cancelled by shutdown", true, fmt.Errorf("upload: %w", context.Canceled), false},
		{"timeout during shutdown still counts", true, context.DeadlineExceeded, true},
		{"other error during shutdown counts", true, errors.New("x"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{}
			s.stopping.Store(tt.stopping)
			if got := s.isFailure(tt.err); got != tt.want {
				t.Errorf("isFailure = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNextTickAndSlotID(t *testing.T) {
	every := 5 * time.Minute
	now := time.Date(2026, 1, 1, 10, 7, 30, 0, time.UTC)
	if got, want := nextTick(now, every), time.Date(2026, 1, 1, 10, 10, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("nextTick = %s, want %s", got, want)
	}
	onTick := time.Date(2026, 1, 1, 10, 10, 0, 0, time.UTC)
	if got, want := nextTick(onTick, every), onTick.Add(every); !got.Equal(want) {
		t.Errorf("nextTick on a tick = %s, want the following one %s", got, want)
	}
	slot := onTick.UnixNano() / int64(every)
	if got := slotTaskID("plyr", "copyright:sync-resolutions", slot); got != fmt.Sprintf("plyr:copyright:sync-resolutions:%d", slot) {
		t.Errorf("slotTaskID = %s", got)
	}
}

// TestRunContextCause: why asynq cancelled a run decides its cause. Only
// CancelProcessing (asynq reports context.Canceled) is an operator's
// cancel; a lost lease (ErrLeaseExpired), or a cancel with no report at all
// (a stopping asynq server requeueing the task), must not read as one: an
// export would end cancelled when it should run again.
func TestRunContextCause(t *testing.T) {
	tests := []struct {
		name     string
		report   error // what asynq hands the ErrorHandler; nil: nothing
		stopping bool
		want     error
	}{
		{"operator cancel", context.Canceled, false, job.ErrCancelled},
		{"lease expired", asynq.ErrLeaseExpired, false, context.Canceled},
		{"no report (requeued by a stopping asynq server)", nil, false, context.Canceled},
		{"worker shutting down", context.Canceled, true, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{}
			s.stopping.Store(tt.stopping)
			parent, cancel := context.WithCancel(context.Background())
			run, done := s.runContext(parent, "task-1")
			defer done()
			cancel()
			if tt.report != nil {
				s.noteFailure("task-1", tt.report)
			}
			select {
			case <-run.Done():
			case <-time.After(cancelWait + 3*time.Second):
				t.Fatal("the run's context did not end")
			}
			if got := context.Cause(run); got != tt.want {
				t.Errorf("cause = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("deadline", func(t *testing.T) {
		s := &Server{}
		parent, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		run, done := s.runContext(parent, "task-2")
		defer done()
		<-run.Done()
		if got := context.Cause(run); !errors.Is(got, context.DeadlineExceeded) {
			t.Errorf("cause = %v, want DeadlineExceeded", got)
		}
	})
}
