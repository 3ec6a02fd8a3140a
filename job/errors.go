package job

import (
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// Permanent marks err as one that no retry can fix: the task is archived at
// once with err as the reason (asynq.SkipRetry underneath).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	if IsPermanent(err) {
		return err
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() []error {
	return []error{e.err, asynq.SkipRetry}
}

// IsPermanent reports whether err archives the task without retrying.
func IsPermanent(err error) bool { return errors.Is(err, asynq.SkipRetry) }

// RetryAfterError asks for the next attempt no sooner than After (a 429's
// Retry-After, say). The worker's retry delay honours it.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter wraps err so the next attempt waits at least d.
func RetryAfter(d time.Duration, err error) error {
	return &RetryAfterError{After: d, Err: err}
}

// ErrSessionExpired is the reason a task acting as a user fails for good when
// the user's session is gone, expired or revoked. It is permanent: wrap it
// with Permanent and the task is archived with "session expired".
var ErrSessionExpired = errors.New("session expired")

// ErrStruck is the reason a task is skipped while a strike blocks it.
var ErrStruck = errors.New("struck")

// ErrCancelled is the cause of a run's context when an operator cancelled
// the task (the dashboard, `plyrtasks tasks cancel`, DELETE /v1/tasks/{id}):
// errors.Is(context.Cause(ctx), ErrCancelled) tells it from a worker
// shutdown (context.Canceled), after which the task runs again, and from
// the task's timeout (context.DeadlineExceeded). A handler with work to undo
// (an export's upload, its job row) checks it when its context ends.
var ErrCancelled = errors.New("cancelled by an operator")
