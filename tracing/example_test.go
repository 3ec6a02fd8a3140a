package tracing_test

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/hibiken/asynq"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/plyr-fm/plyrtasks/tracing"
)

// A producer starts an enqueue span and sends its context in the task's
// headers; the worker's run (tracing.Middleware does this) continues the
// trace from them.
func ExampleInject() {
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())

	ctx, span := tracing.StartEnqueue(context.Background(), tp, "copyright:scan")
	headers := tracing.Inject(ctx)
	task := asynq.NewTaskWithHeaders("copyright:scan", []byte(`{"track_id":42}`), headers)
	tracing.EndEnqueue(span, tracing.EnqueueEnqueued, nil)

	// On the worker:
	parent := trace.SpanContextFromContext(tracing.Extract(context.Background(), task.Headers()))
	fmt.Println(slices.Sorted(maps.Keys(headers)))
	fmt.Println(parent.SpanID() == span.SpanContext().SpanID())
	// Output:
	// [traceparent]
	// true
}
