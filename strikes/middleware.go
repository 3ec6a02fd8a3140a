package strikes

import (
	"context"

	"github.com/plyr-fm/plyrtasks/job"
)

// StruckError is the error of a task a strike blocks. It wraps
// job.ErrStruck.
type StruckError struct {
	Strike Strike
}

// Error reads "struck: <reason> (strike <key>)": what an archived task
// shows as its last error, naming the rule to restore.
func (e *StruckError) Error() string {
	return "struck: " + e.Strike.Reason + " (strike " + e.Strike.Key + ")"
}

// Unwrap makes errors.Is(err, job.ErrStruck) hold.
func (e *StruckError) Unwrap() error { return job.ErrStruck }

// Check is the producer's test before an enqueue: a *StruckError (errors.Is
// job.ErrStruck) when a strike blocks a task of kind with payload, nil
// otherwise. It calls no Redis.
func (w *Watcher) Check(kind string, payload []byte) error {
	if st, ok := w.Match(kind, payload); ok {
		return &StruckError{Strike: st}
	}
	return nil
}

// Middleware skips a struck task when it comes up: it returns
// job.Permanent(*StruckError) without running the handler, so the worker
// archives the task at once with the reason (retry it from the dashboard
// or the CLI once the strike is restored), and logging and metrics count
// it as struck. Register it on the Registry (Registry.Use), which runs
// inside recovery, logging and metrics, for worker and in-process runs
// alike.
func (w *Watcher) Middleware() job.Middleware {
	return func(next job.HandlerFunc) job.HandlerFunc {
		return func(ctx context.Context, t *job.Task) error {
			if st, ok := w.Match(t.Kind, t.Payload); ok {
				return job.Permanent(&StruckError{Strike: st})
			}
			return next(ctx, t)
		}
	}
}
