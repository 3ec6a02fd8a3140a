// Package tracing gives plyrtasks OpenTelemetry traces: a span for every
// enqueue (a producer span, "send <kind>") and for every task run (a
// consumer span, "process <kind>"), the run's span a child of the enqueue's
// through W3C trace-context headers that travel with the task.
//
// Export is off unless the standard OTLP variables say where to send spans
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); Setup
// then exports over OTLP/HTTP and honours the other OTEL_* variables
// (headers, sampler, resource attributes, OTEL_SDK_DISABLED).
//
// Wiring, in main:
//
//	logger := slog.New(tracing.LogHandler(handler)) // trace_id, span_id on task lines
//	shutdown, tp, err := tracing.Setup(ctx, "plyrtasks", logger)
//	defer shutdown(context.Background())
//	otel.SetErrorHandler(tracing.ErrorHandler(logger))
//	// worker and in-process runs: outermost middleware
//	server.Options{Middleware: []job.Middleware{tracing.Middleware(tp)}}
//	client.Options{Middleware: []job.Middleware{tracing.Middleware(tp)},
//		EnqueueMiddleware: []client.EnqueueMiddleware{tracing.EnqueueMiddleware(tp), …}}
//
// Span attributes follow the OpenTelemetry messaging conventions
// (messaging.system=asynq, messaging.operation.*, messaging.destination.name
// is the queue, messaging.message.id the task ID); what those do not cover
// is under plyrtasks.*: the task kind, the attempt, whether the run was
// in-process, and the outcome of the run (plyrtasks.task.outcome: the
// job.Outcome* values) or of the enqueue (plyrtasks.enqueue.outcome: the
// Enqueue* values). Payloads are never recorded: they may hold user content.
package tracing
