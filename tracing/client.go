package tracing

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/plyr-fm/plyrtasks/client"
)

// EnqueueMiddleware traces every enqueue of a client.Client: a "send
// <kind>" producer span (StartEnqueue) whose context goes into the task's
// headers, so the worker's run, or the in-process run of a fallback,
// continues the trace; the span ends with the enqueue's outcome (enqueued,
// inline, duplicate, struck, refused), the task ID and (logical) queue. Put it first
// in client.Options.EnqueueMiddleware, before the strikes check, so a
// struck enqueue is traced too. A nil tp means a no-op.
func EnqueueMiddleware(tp trace.TracerProvider) client.EnqueueMiddleware {
	return func(next client.EnqueueFunc) client.EnqueueFunc {
		return func(ctx context.Context, req *client.Request) (client.Result, error) {
			ctx, span := StartEnqueue(ctx, tp, req.Kind)
			if h := Inject(ctx); h != nil {
				if req.Headers == nil {
					req.Headers = make(map[string]string, len(h))
				}
				for k, v := range h {
					req.Headers[k] = v
				}
			}
			res, err := next(ctx, req)
			// The logical queue ("bulk"), as the worker's run span and the
			// metrics name it: the same across namespaces.
			SetEnqueued(span, res.ID, req.Opts.Queue)
			SetFallback(span, res.FallbackReason)
			EndEnqueue(span, enqueueOutcome(res.Outcome), err)
			return res, err
		}
	}
}

func enqueueOutcome(o client.Outcome) string {
	switch o {
	case client.Enqueued:
		return EnqueueEnqueued
	case client.Duplicate:
		return EnqueueDuplicate
	case client.RanInline:
		return EnqueueInline
	}
	return EnqueueRefused
}
