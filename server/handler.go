package server

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/internal/rdb"
	"github.com/plyr-fm/plyrtasks/job"
)

// process is the asynq handler of every task type: it translates the
// asynq task into a job.Task and runs the pipeline. Unknown kinds and
// malformed payloads come back from the registry as permanent errors, so
// asynq archives them with the reason instead of retrying.
func (s *Server) process(ctx context.Context, at *asynq.Task) error {
	s.inflight.Add(1)
	defer s.inflight.Done()
	id, _ := asynq.GetTaskID(ctx)
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	queue, _ := asynq.GetQueueName(ctx)
	t := &job.Task{
		Kind:     at.Type(),
		Payload:  at.Payload(),
		ID:       id,
		Queue:    s.logicalQueue(queue),
		Attempt:  retried,
		MaxRetry: maxRetry,
		Headers:  at.Headers(),
		Result:   at.ResultWriter(),
	}
	runCtx, done := s.runContext(ctx, id)
	defer done()
	err := s.handler(runCtx, t)
	// A unique task frees its key when it completes. (ctx ended means asynq
	// already counted the run as failed: the timeout won over the result.)
	if err == nil && ctx.Err() == nil {
		if lock := t.Headers[rdb.HeaderUniqueLock]; lock != "" {
			s.releaseUnique(lock, id)
		}
	}
	return err
}

// handleError is asynq's ErrorHandler, called for every failed run before
// asynq retries or archives it, timeouts included. It frees an archived
// unique task's key, and logs the failures the handler's log line may not
// show (a timeout or an expired lease decided while the handler still
// ran).
func (s *Server) handleError(ctx context.Context, at *asynq.Task, err error) {
	id, _ := asynq.GetTaskID(ctx)
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	s.noteFailure(id, err)
	if errors.Is(ctx.Err(), context.Canceled) && errors.Is(err, context.Canceled) && !s.stopping.Load() {
		// asynq's CancelProcessing (the dashboard's cancel button): asynq
		// retries the task next, as after any failure. An operator who
		// cancels means stop, so archive it once it lands in retry.
		queue, _ := asynq.GetQueueName(ctx)
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			s.archiveCancelled(queue, id, at.Headers()[rdb.HeaderUniqueLock])
		}()
	}
	archived := retried >= maxRetry || errors.Is(err, asynq.SkipRetry) || errors.Is(err, asynq.RevokeTask)
	if archived {
		if lock := at.Headers()[rdb.HeaderUniqueLock]; lock != "" {
			s.releaseUnique(lock, id)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, asynq.ErrLeaseExpired) {
		s.log.Warn("task timed out", slog.String("kind", at.Type()), slog.String("id", id),
			slog.Int("attempt", retried+1), slog.Bool("archived", archived), slog.String("error", err.Error()))
	}
}

// archiveCancelled archives task id of queue once asynq has moved it
// off the active list after an operator's cancel, and frees its unique
// key. It gives up after cancelArchiveWait (the task then runs again when
// its retry comes due, as asynq would have it).
func (s *Server) archiveCancelled(queue, id, lock string) {
	insp := asynq.NewInspectorFromRedisClient(s.rdb)
	deadline := time.Now().Add(cancelArchiveWait)
	for time.Now().Before(deadline) {
		info, err := insp.GetTaskInfo(queue, id)
		if err != nil {
			return // gone (deleted, or completed without retention)
		}
		switch info.State {
		case asynq.TaskStateRetry, asynq.TaskStatePending, asynq.TaskStateScheduled:
			if err := insp.ArchiveTask(queue, id); err != nil {
				if now, e := insp.GetTaskInfo(queue, id); e == nil && now.State == asynq.TaskStateArchived {
					return // the canceller archived it (package control does)
				}
				s.log.Warn("could not archive a cancelled task; it will run again", slog.String("id", id), slog.String("error", err.Error()))
				return
			}
			if lock != "" {
				s.releaseUnique(lock, id)
			}
			s.log.Info("cancelled task archived", slog.String("id", id), slog.String("queue", s.logicalQueue(queue)))
			return
		case asynq.TaskStateArchived, asynq.TaskStateCompleted:
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.log.Warn("a cancelled task did not leave the active list in time; it will run again", slog.String("id", id))
}

// cancelArchiveWait bounds archiveCancelled.
const cancelArchiveWait = 10 * time.Second

func (s *Server) releaseUnique(lock, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := rdb.ReleaseUnique(ctx, s.rdb, lock, id); err != nil {
		// The lock expires with its window; the next enqueue also takes it
		// over once this task is no longer live.
		s.log.Warn("release unique lock", slog.String("id", id), slog.String("error", err.Error()))
	}
}

// runContext derives the context a handler runs with from asynq's, so
// that its cause says why it ended: job.ErrCancelled when an operator
// cancelled the task (asynq's CancelProcessing), context.Canceled when it
// must stop for any other reason (this worker stopping, asynq's lease on
// the task lost), and the deadline's context.DeadlineExceeded at timeout.
// asynq cancels with no cause, so a context derived the usual way would
// only ever see context.Canceled.
//
// Which cancel it was shows in what asynq hands its ErrorHandler
// (handleError) right after it cancels: context.Canceled for
// CancelProcessing, ErrLeaseExpired for a lost lease, and no call at all
// when a stopping server gives up on the task (it requeues it). So the
// cause is decided once handleError has run for the task, or after
// cancelWait without it. Values and the deadline carry over; done releases
// the context.
func (s *Server) runContext(ctx context.Context, id string) (context.Context, func()) {
	run, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	stopDeadline := func() {}
	if dl, ok := ctx.Deadline(); ok {
		run, stopDeadline = context.WithDeadline(run, dl)
	}
	failed := make(chan error, 1)
	if id != "" {
		s.runs.Store(id, failed)
	}
	stop := context.AfterFunc(ctx, func() {
		cause := context.Cause(ctx)
		if errors.Is(ctx.Err(), context.Canceled) {
			cause = context.Canceled
			if !s.stopping.Load() {
				select {
				case err := <-failed:
					if errors.Is(err, context.Canceled) && !errors.Is(err, asynq.ErrLeaseExpired) {
						cause = job.ErrCancelled
					}
				case <-time.After(cancelWait):
				}
			}
		}
		cancel(cause)
	})
	return run, func() {
		stop()
		stopDeadline()
		cancel(nil)
		if id != "" {
			s.runs.Delete(id)
		}
	}
}

// cancelWait bounds how long a cancelled run waits to learn why (see
// runContext): asynq calls the ErrorHandler right after it cancels.
const cancelWait = 2 * time.Second

// noteFailure tells a running task's runContext what asynq reported.
func (s *Server) noteFailure(id string, err error) {
	if v, ok := s.runs.Load(id); ok {
		select {
		case v.(chan error) <- err:
		default:
		}
	}
}

// isFailure is asynq's IsFailure: a run cancelled because this worker is
// shutting down is not the task's failure and does not use up a retry.
func (s *Server) isFailure(err error) bool {
	return !(s.stopping.Load() && errors.Is(err, context.Canceled))
}

// retryDelay is asynq's RetryDelayFunc: Options.RetryDelay or backoff, at
// least a job.RetryAfter's delay. A task whose worker died (lease expired)
// runs again after a second.
func (s *Server) retryDelay(n int, err error, _ *asynq.Task) time.Duration {
	if errors.Is(err, asynq.ErrLeaseExpired) {
		return time.Second
	}
	var d time.Duration
	if s.opts.RetryDelay != nil {
		d = s.opts.RetryDelay(n, err)
	} else {
		d = backoff(n)
	}
	var ra *job.RetryAfterError
	if errors.As(err, &ra) && ra.After > d {
		d = ra.After
	}
	return d
}

// Backoff bounds: retry n+1 waits between half and all of
// backoffBase·2ⁿ, at most backoffMax.
const (
	backoffBase = 10 * time.Second
	backoffMax  = time.Hour
)

// backoff is exponential with jitter, so tasks that failed together (a PDS
// outage) do not come back together.
func backoff(n int) time.Duration {
	d := backoffMax
	if n < 20 {
		d = min(backoffBase<<n, backoffMax)
	}
	return d/2 + rand.N(d/2+1)
}
