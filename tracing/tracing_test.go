package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/logging"
	"github.com/plyr-fm/plyrtasks/tracing"
)

// TestRunContinuesEnqueueTraceThroughRedis enqueues real asynq tasks whose
// headers carry Inject's trace context, runs them on a real asynq.Server
// through Middleware, and checks that each run's span is the child of its
// enqueue's span, with the outcome the handler's result implies.
func TestRunContinuesEnqueueTraceThroughRedis(t *testing.T) {
	tp, exp := recorder(t)
	rc := srv.Client(t, srv.DB(t))
	const queue = "plyr:default"

	boom := errors.New("pds answered 502")
	cases := []struct {
		kind       string
		result     func() error
		maxRetry   int
		outcome    string
		status     codes.Code
		errorType  string // "" = no error.type attribute
		exceptions int
	}{
		{"trace:ok", func() error { return nil }, 3, job.OutcomeOK, codes.Unset, "", 0},
		{"trace:transient", func() error { return boom }, 3, job.OutcomeRetry, codes.Error, tracing.ErrorTypeTransient, 1},
		{"trace:last-attempt", func() error { return boom }, 0, job.OutcomeArchived, codes.Error, tracing.ErrorTypeTransient, 1},
		{"trace:permanent", func() error { return job.Permanent(fmt.Errorf("invalid payload: %w", boom)) }, 3, job.OutcomeArchived, codes.Error, tracing.ErrorTypePermanent, 1},
		{"trace:struck", func() error { return job.Permanent(fmt.Errorf("struck: abuse report: %w", job.ErrStruck)) }, 3, job.OutcomeStruck, codes.Unset, "", 1},
		{"trace:panic", func() error { panic("nil map") }, 3, job.OutcomeRetry, codes.Error, tracing.ErrorTypePanic, 1},
	}
	results := map[string]func() error{}
	for _, c := range cases {
		results[c.kind] = c.result
	}

	// The span context each handler saw, by task ID.
	var mu sync.Mutex
	seen := map[string]trace.SpanContext{}
	handler := job.Chain(func(ctx context.Context, jt *job.Task) error {
		mu.Lock()
		seen[jt.ID] = trace.SpanContextFromContext(ctx)
		mu.Unlock()
		return results[jt.Kind]()
	}, job.DefaultMiddleware(logging.Discard(), nil, tracing.Middleware(tp))...)

	worker := asynq.NewServerFromRedisClient(rc, asynq.Config{
		Concurrency:       4,
		Queues:            map[string]int{queue: 1},
		TaskCheckInterval: 20 * time.Millisecond,
		// Retries wait long enough that each task runs once in this test.
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return time.Hour },
		Logger:         logging.AsynqLogger(logging.Discard()),
	})
	if err := worker.Start(asynq.HandlerFunc(func(ctx context.Context, at *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		retried, _ := asynq.GetRetryCount(ctx)
		maxRetry, _ := asynq.GetMaxRetry(ctx)
		q, _ := asynq.GetQueueName(ctx)
		return handler(ctx, &job.Task{Kind: at.Type(), Payload: at.Payload(), ID: id, Queue: q,
			Attempt: retried, MaxRetry: maxRetry, Headers: at.Headers()})
	})); err != nil {
		t.Fatal(err)
	}
	defer worker.Shutdown()

	producer := asynq.NewClientFromRedisClient(rc)
	enqueueSpan := map[string]trace.SpanContext{} // by kind
	taskID := map[string]string{}                 // by kind
	for _, c := range cases {
		ctx, span := tracing.StartEnqueue(t.Context(), tp, c.kind)
		headers := tracing.Inject(ctx)
		if headers["traceparent"] == "" {
			t.Fatalf("Inject gave no traceparent: %v", headers)
		}
		info, err := producer.EnqueueContext(ctx, asynq.NewTaskWithHeaders(c.kind, []byte(`{"track_id":1}`), headers),
			asynq.Queue(queue), asynq.MaxRetry(c.maxRetry))
		if err != nil {
			t.Fatal(err)
		}
		tracing.SetEnqueued(span, info.ID, info.Queue)
		tracing.EndEnqueue(span, tracing.EnqueueEnqueued, nil)
		enqueueSpan[c.kind] = span.SpanContext()
		taskID[c.kind] = info.ID
	}

	spans := waitSpans(t, exp, 2*len(cases), 15*time.Second)
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			send := spanNamed(t, spans, "send "+c.kind)
			run := spanNamed(t, spans, "process "+c.kind)
			parent := enqueueSpan[c.kind]

			if send.SpanKind != trace.SpanKindProducer || run.SpanKind != trace.SpanKindConsumer {
				t.Errorf("span kinds = %v, %v, want producer, consumer", send.SpanKind, run.SpanKind)
			}
			if run.SpanContext.TraceID() != parent.TraceID() {
				t.Errorf("run trace ID %s, enqueue trace ID %s: the trace was not continued", run.SpanContext.TraceID(), parent.TraceID())
			}
			if run.Parent.SpanID() != parent.SpanID() || !run.Parent.IsRemote() {
				t.Errorf("run parent = %s (remote %v), want the enqueue span %s (remote)", run.Parent.SpanID(), run.Parent.IsRemote(), parent.SpanID())
			}
			mu.Lock()
			inHandler := seen[taskID[c.kind]]
			mu.Unlock()
			if inHandler.SpanID() != run.SpanContext.SpanID() {
				t.Errorf("handler ran in span %s, want the run span %s", inHandler.SpanID(), run.SpanContext.SpanID())
			}

			wantAttrs(t, send, map[attribute.Key]any{
				"messaging.system": "asynq", "messaging.operation.type": "send", "messaging.operation.name": "send",
				"messaging.message.id": taskID[c.kind], "messaging.destination.name": queue,
				"plyrtasks.task.kind": c.kind, "plyrtasks.enqueue.outcome": tracing.EnqueueEnqueued,
			})
			wantAttrs(t, run, map[attribute.Key]any{
				"messaging.system": "asynq", "messaging.operation.type": "process", "messaging.operation.name": "process",
				"messaging.message.id": taskID[c.kind], "messaging.destination.name": queue,
				"plyrtasks.task.kind": c.kind, "plyrtasks.task.attempt": int64(1), "plyrtasks.task.inline": false,
				"plyrtasks.task.outcome": c.outcome,
			})
			if run.Status.Code != c.status {
				t.Errorf("run status = %v, want %v", run.Status.Code, c.status)
			}
			et, hasET := attrs(run)["error.type"]
			switch {
			case c.errorType == "" && hasET:
				t.Errorf("error.type = %v on a %s run", et.AsString(), c.outcome)
			case c.errorType != "" && et.AsString() != c.errorType:
				t.Errorf("error.type = %q, want %q", et.AsString(), c.errorType)
			}
			if n := countEvents(run, "exception"); n != c.exceptions {
				t.Errorf("%d exception events, want %d", n, c.exceptions)
			}
		})
	}
}

// waitSpans waits until exp holds at least n spans.
func waitSpans(t *testing.T, exp *tracetest.InMemoryExporter, n int, timeout time.Duration) tracetest.SpanStubs {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		spans := exp.GetSpans()
		if len(spans) >= n {
			return spans
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range spans {
				names = append(names, s.Name)
			}
			t.Fatalf("%d spans after %s, want %d: %q", len(spans), timeout, n, names)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func countEvents(s tracetest.SpanStub, name string) int {
	n := 0
	for _, e := range s.Events {
		if e.Name == name {
			n++
		}
	}
	return n
}
