package tracing

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/plyr-fm/plyrtasks/job"
)

// ScopeName is the instrumentation scope of every span this package
// starts.
const ScopeName = "github.com/plyr-fm/plyrtasks/tracing"

// System is the messaging.system attribute value.
const System = "asynq"

// Attribute keys outside the messaging conventions.
const (
	// AttrKind is the task type ("export:media").
	AttrKind = attribute.Key("plyrtasks.task.kind")
	// AttrAttempt is the run's attempt, 1 on the first run (as logged).
	AttrAttempt = attribute.Key("plyrtasks.task.attempt")
	// AttrInline is true for an in-process run (producer fallback).
	AttrInline = attribute.Key("plyrtasks.task.inline")
	// AttrOutcome is how the run ended: a job.Outcome* value (ok, inline,
	// retry, archived, failed, struck, cancelled).
	AttrOutcome = attribute.Key("plyrtasks.task.outcome")
	// AttrEnqueueOutcome is what an enqueue did: an Enqueue* value.
	AttrEnqueueOutcome = attribute.Key("plyrtasks.enqueue.outcome")
	// AttrFallbackReason is why an enqueue ran in-process
	// (job.FallbackNoRedis, job.FallbackEnqueueFailed).
	AttrFallbackReason = attribute.Key("plyrtasks.enqueue.fallback_reason")
)

// Values of error.type on a failed run: low-cardinality classes, not
// messages.
const (
	ErrorTypePanic     = "panic"     // the handler panicked
	ErrorTypeTimeout   = "timeout"   // the run's deadline passed
	ErrorTypePermanent = "permanent" // archived at once (job.Permanent)
	ErrorTypeTransient = "transient" // any other error
)

// Middleware opens one consumer span per task run, named "process <kind>",
// as the child of the producer's span found in the task's headers (a new
// trace when there is none). It records the kind, task ID, queue, attempt,
// inline flag and outcome (job.Outcome, the same word the log line and the
// metrics use).
//
// A run that fails (retry, archived, failed) records its error and sets
// the span's status to Error with an error.type class. A struck or
// cancelled run records the error as an event but leaves the status unset:
// an operator decided it, so it must not count toward error rates.
//
// Put it outermost (server.Options.Middleware, client.Options.Middleware,
// i.e. job.DefaultMiddleware's extra), so the log line and the handler run
// inside the span and share its trace ID. A nil tp means a no-op.
func Middleware(tp trace.TracerProvider) job.Middleware {
	tracer := tracerOf(tp)
	return func(next job.HandlerFunc) job.HandlerFunc {
		return func(ctx context.Context, t *job.Task) (err error) {
			ctx, span := tracer.Start(Extract(ctx, t.Headers), "process "+t.Kind,
				trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithAttributes(
					semconv.MessagingSystemKey.String(System),
					semconv.MessagingOperationName("process"),
					semconv.MessagingOperationTypeProcess,
					semconv.MessagingDestinationName(t.Queue),
					semconv.MessagingMessageID(t.ID),
					AttrKind.String(t.Kind),
					AttrAttempt.Int(t.Attempt+1),
					AttrInline.Bool(t.Inline),
				))
			defer func() {
				if v := recover(); v != nil {
					// Recover normally sits inside and turns panics into
					// errors; without it, record and re-panic.
					span.SetAttributes(AttrOutcome.String("panic"), semconv.ErrorTypeKey.String(ErrorTypePanic))
					span.SetStatus(codes.Error, "panic")
					span.End()
					panic(v)
				}
			}()
			err = next(ctx, t)
			outcome := job.Outcome(ctx, t, err)
			span.SetAttributes(AttrOutcome.String(outcome))
			if err != nil {
				span.RecordError(err)
				switch outcome {
				case job.OutcomeStruck, job.OutcomeCancelled, job.OutcomeInterrupted:
				default:
					span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
					span.SetStatus(codes.Error, err.Error())
				}
			}
			span.End()
			return err
		}
	}
}

func errorType(err error) string {
	var pe *job.PanicError
	switch {
	case errors.As(err, &pe):
		return ErrorTypePanic
	case errors.Is(err, context.DeadlineExceeded):
		return ErrorTypeTimeout
	case job.IsPermanent(err):
		return ErrorTypePermanent
	}
	return ErrorTypeTransient
}

func tracerOf(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return noopTracer
	}
	return tp.Tracer(ScopeName)
}
