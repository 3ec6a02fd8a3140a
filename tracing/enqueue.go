package tracing

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/plyr-fm/plyrtasks/job"
)

// What an enqueue did: the plyrtasks.enqueue.outcome attribute of its span.
const (
	// EnqueueEnqueued: the task went through the queue (Redis); a worker
	// will run it, now or at its scheduled time.
	EnqueueEnqueued = "enqueued"
	// EnqueueInline: no Redis, or the enqueue failed, and the task ran in
	// the producer's process instead (the fallback).
	EnqueueInline = "inline"
	// EnqueueDuplicate: a unique task with the same key is already queued
	// or running; nothing new was queued.
	EnqueueDuplicate = "duplicate"
	// EnqueueStruck: a strike refused the task (job.ErrStruck).
	EnqueueStruck = "struck"
	// EnqueueRefused: the enqueue failed and nothing ran (invalid
	// arguments, queue unavailable with fallback=error, closed client).
	EnqueueRefused = "refused"
)

// noopTracer serves a nil TracerProvider. It is never written.
var noopTracer = noop.NewTracerProvider().Tracer(ScopeName)

// StartEnqueue starts the producer span of one enqueue of kind, named
// "send <kind>", as a child of the span in ctx. Inject the returned
// context's span into the task's headers (Inject) so the run continues the
// trace, and end the span with EndEnqueue. A nil tp means a no-op.
func StartEnqueue(ctx context.Context, tp trace.TracerProvider, kind string) (context.Context, trace.Span) {
	return tracerOf(tp).Start(ctx, "send "+kind,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			semconv.MessagingSystemKey.String(System),
			semconv.MessagingOperationName("send"),
			semconv.MessagingOperationTypeSend,
			AttrKind.String(kind),
		))
}

// SetEnqueued records where the task went: its ID and queue (the logical
// name, "bulk", to match the run's span).
// Empty values are not recorded.
func SetEnqueued(span trace.Span, id, queue string) {
	if id != "" {
		span.SetAttributes(semconv.MessagingMessageID(id))
	}
	if queue != "" {
		span.SetAttributes(semconv.MessagingDestinationName(queue))
	}
}

// SetFallback records why the task ran in-process instead of being queued
// (job.FallbackNoRedis, job.FallbackEnqueueFailed).
func SetFallback(span trace.Span, reason string) {
	if reason != "" {
		span.SetAttributes(AttrFallbackReason.String(reason))
	}
}

// EndEnqueue sets the enqueue's outcome and ends the span. With err
// non-nil the outcome is EnqueueStruck when err wraps job.ErrStruck (the
// status stays unset: a strike is an operator's decision, not a failure),
// else EnqueueRefused with the error recorded and the status set to Error;
// outcome is then ignored.
func EndEnqueue(span trace.Span, outcome string, err error) {
	switch {
	case err == nil:
	case errors.Is(err, job.ErrStruck):
		outcome = EnqueueStruck
		span.RecordError(err)
	default:
		outcome = EnqueueRefused
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.SetAttributes(AttrEnqueueOutcome.String(outcome))
	span.End()
}
