package tracing

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
)

// The W3C trace-context propagator (traceparent, tracestate headers). Only
// trace context crosses into task headers: W3C baggage could carry
// anything a caller put in it, and task headers are stored in Redis and
// shown in the dashboard.
var propagator = propagation.TraceContext{}

// Inject returns the trace-context headers of the span in ctx, to send
// with a task (asynq.NewTaskWithHeaders, client.Request.Headers). It
// returns nil when ctx carries no valid span context.
func Inject(ctx context.Context) map[string]string {
	carrier := propagation.MapCarrier{}
	propagator.Inject(ctx, carrier)
	if len(carrier) == 0 {
		return nil
	}
	return carrier
}

// Extract returns ctx carrying the remote span context found in a task's
// headers (its producer's span), so a span started from it is that span's
// child. Headers without valid trace context leave ctx as it is. Other
// headers in the map are ignored.
func Extract(ctx context.Context, headers map[string]string) context.Context {
	if len(headers) == 0 {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier(headers))
}
