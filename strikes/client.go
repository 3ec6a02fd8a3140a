package strikes

import (
	"context"

	"github.com/plyr-fm/plyrtasks/client"
)

// EnqueueMiddleware refuses the enqueue of a struck task (Check) before it
// reaches Redis or runs in-process: the caller gets the *StruckError
// (errors.Is job.ErrStruck). Put it in client.Options.EnqueueMiddleware
// after the tracing middleware, so the refusal is traced.
func (w *Watcher) EnqueueMiddleware() client.EnqueueMiddleware {
	return func(next client.EnqueueFunc) client.EnqueueFunc {
		return func(ctx context.Context, req *client.Request) (client.Result, error) {
			if err := w.Check(req.Kind, req.Payload); err != nil {
				return client.Result{Kind: req.Kind}, err
			}
			return next(ctx, req)
		}
	}
}
