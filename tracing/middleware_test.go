package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/tracing"
)

// TestMiddlewareOutcomes covers what a worker run cannot show easily: a
// cancelled run, an in-process run, a timeout, and a task without trace
// headers (a new root span).
func TestMiddlewareOutcomes(t *testing.T) {
	cancelled, cancel := context.WithCancelCause(context.Background())
	cancel(job.ErrCancelled)
	interrupted, stop := context.WithCancel(context.Background())
	stop()
	cases := []struct {
		name      string
		ctx       context.Context
		task      job.Task
		err       error
		outcome   string
		status    codes.Code
		errorType string
	}{
		{"cancelled", cancelled, job.Task{Kind: "export:media", ID: "c1", Queue: "bulk", MaxRetry: 3},
			fmt.Errorf("zip: %w", context.Canceled), job.OutcomeCancelled, codes.Unset, ""},
		{"interrupted", interrupted, job.Task{Kind: "export:media", ID: "c2", Queue: "bulk", MaxRetry: 3},
			fmt.Errorf("zip: %w", context.Canceled), job.OutcomeInterrupted, codes.Unset, ""},
		{"inline ok", context.Background(), job.Task{Kind: "pds:like", ID: "i1", Queue: "critical", Inline: true},
			nil, job.OutcomeInline, codes.Unset, ""},
		{"inline failed", context.Background(), job.Task{Kind: "pds:like", ID: "i2", Queue: "critical", Inline: true, Attempt: 2, MaxRetry: 2},
			errors.New("pds down"), job.OutcomeFailed, codes.Error, tracing.ErrorTypeTransient},
		{"timeout", context.Background(), job.Task{Kind: "copyright:scan", ID: "t1", Queue: "default", Attempt: 1, MaxRetry: 8},
			fmt.Errorf("scan: %w", context.DeadlineExceeded), job.OutcomeRetry, codes.Error, tracing.ErrorTypeTimeout},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tp, exp := recorder(t)
			h := job.Chain(func(context.Context, *job.Task) error { return c.err }, tracing.Middleware(tp))
			task := c.task
			if err := h(c.ctx, &task); !errors.Is(err, c.err) {
				t.Fatalf("middleware changed the error: %v, want %v", err, c.err)
			}
			spans := exp.GetSpans()
			if len(spans) != 1 {
				t.Fatalf("%d spans, want 1", len(spans))
			}
			s := spans[0]
			if s.Name != "process "+task.Kind {
				t.Errorf("name = %q", s.Name)
			}
			if s.Parent.IsValid() {
				t.Errorf("a task without trace headers got parent %s, want a root span", s.Parent.SpanID())
			}
			wantAttrs(t, s, map[attribute.Key]any{
				"plyrtasks.task.outcome": c.outcome, "plyrtasks.task.inline": task.Inline,
				"plyrtasks.task.attempt": int64(task.Attempt + 1), "messaging.destination.name": task.Queue,
				"messaging.message.id": task.ID,
			})
			if s.Status.Code != c.status {
				t.Errorf("status = %v, want %v", s.Status.Code, c.status)
			}
			if got := attrs(s)["error.type"].AsString(); got != c.errorType {
				t.Errorf("error.type = %q, want %q", got, c.errorType)
			}
		})
	}
}

func TestMiddlewareNilProviderIsNoop(t *testing.T) {
	ran := false
	h := job.Chain(func(ctx context.Context, _ *job.Task) error {
		ran = true
		if trace.SpanFromContext(ctx).IsRecording() {
			t.Error("span is recording with a nil provider")
		}
		return nil
	}, tracing.Middleware(nil))
	if err := h(context.Background(), &job.Task{Kind: "pds:like"}); err != nil || !ran {
		t.Fatalf("err = %v, ran = %v", err, ran)
	}
}

func TestMiddlewareRecordsPanicWithoutRecover(t *testing.T) {
	tp, exp := recorder(t)
	h := job.Chain(func(context.Context, *job.Task) error { panic("kaboom") }, tracing.Middleware(tp))
	func() {
		defer func() {
			if v := recover(); v != "kaboom" {
				t.Errorf("recovered %v, want the handler's panic re-raised", v)
			}
		}()
		_ = h(context.Background(), &job.Task{Kind: "pds:like"})
	}()
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Status.Code != codes.Error {
		t.Fatalf("spans = %d, want 1 ended with status Error", len(spans))
	}
}

func TestInjectExtractRoundTrip(t *testing.T) {
	tp, _ := recorder(t)
	ctx, span := tp.Tracer("test").Start(context.Background(), "parent")
	defer span.End()

	h := tracing.Inject(ctx)
	if len(h) != 1 || h["traceparent"] == "" {
		t.Fatalf("Inject = %v, want one traceparent header", h)
	}
	// Other task headers (the unique lock) travel alongside untouched.
	h["plyrtasks-unique-lock"] = "lock"
	got := trace.SpanContextFromContext(tracing.Extract(context.Background(), h))
	if got.TraceID() != span.SpanContext().TraceID() || got.SpanID() != span.SpanContext().SpanID() || !got.IsRemote() {
		t.Errorf("Extract = %s/%s remote=%v, want %s/%s remote", got.TraceID(), got.SpanID(), got.IsRemote(),
			span.SpanContext().TraceID(), span.SpanContext().SpanID())
	}

	if h := tracing.Inject(context.Background()); h != nil {
		t.Errorf("Inject without a span = %v, want nil", h)
	}
	for _, bad := range []map[string]string{nil, {}, {"traceparent": "garbage"}, {"traceparent": "00-00000000000000000000000000000000-0000000000000000-01"}} {
		if sc := trace.SpanContextFromContext(tracing.Extract(context.Background(), bad)); sc.IsValid() {
			t.Errorf("Extract(%v) = valid span context %s", bad, sc.SpanID())
		}
	}
}
