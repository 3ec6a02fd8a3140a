package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/logging"
	"github.com/plyr-fm/plyrtasks/tasks"
	"github.com/plyr-fm/plyrtasks/tracing"
)

var export = tasks.MediaExportArgs{ExportID: "exp-1", ArtistDID: "did:plc:artist1"}

// TestEnqueueMiddlewareOutcomes enqueues through a real client.Client and
// checks the enqueue span's outcome for each way an enqueue ends.
func TestEnqueueMiddlewareOutcomes(t *testing.T) {
	t.Run("enqueued then duplicate", func(t *testing.T) {
		tp, exp := recorder(t)
		rc := srv.Client(t, srv.DB(t))
		c := client.New(rc, client.Options{Namespace: "trc", Logger: logging.Discard(),
			EnqueueMiddleware: []client.EnqueueMiddleware{tracing.EnqueueMiddleware(tp)}})
		first, err := c.Enqueue(t.Context(), export)
		if err != nil || first.Outcome != client.Enqueued {
			t.Fatalf("first enqueue = %+v, %v", first, err)
		}
		dup, err := c.Enqueue(t.Context(), export)
		if err != nil || dup.Outcome != client.Duplicate {
			t.Fatalf("second enqueue = %+v, %v", dup, err)
		}
		spans := exp.GetSpans()
		if len(spans) != 2 {
			t.Fatalf("%d spans, want 2", len(spans))
		}
		for i, want := range []string{tracing.EnqueueEnqueued, tracing.EnqueueDuplicate} {
			wantAttrs(t, spans[i], map[attribute.Key]any{
				"plyrtasks.enqueue.outcome": want, "messaging.message.id": first.ID,
				"messaging.destination.name": "bulk", "plyrtasks.task.kind": "export:media",
			})
			if spans[i].Status.Code != codes.Unset {
				t.Errorf("%s: status %v", want, spans[i].Status.Code)
			}
		}
		// The queued task carries the enqueue span's context.
		info, err := asynq.NewInspectorFromRedisClient(rc).GetTaskInfo(first.Queue, first.ID)
		if err != nil {
			t.Fatal(err)
		}
		tp0 := info.Headers["traceparent"]
		if !strings.Contains(tp0, spans[0].SpanContext.SpanID().String()) || !strings.Contains(tp0, spans[0].SpanContext.TraceID().String()) {
			t.Errorf("stored traceparent %q does not name the enqueue span %s", tp0, spans[0].SpanContext.SpanID())
		}
	})

	t.Run("struck", func(t *testing.T) {
		tp, exp := recorder(t)
		refuse := func(client.EnqueueFunc) client.EnqueueFunc {
			return func(context.Context, *client.Request) (client.Result, error) {
				return client.Result{}, job.Permanent(fmt.Errorf("struck: artist under review: %w", job.ErrStruck))
			}
		}
		c := client.New(srv.Client(t, srv.DB(t)), client.Options{Logger: logging.Discard(),
			EnqueueMiddleware: []client.EnqueueMiddleware{tracing.EnqueueMiddleware(tp), refuse}})
		if _, err := c.Enqueue(t.Context(), export); !errors.Is(err, job.ErrStruck) {
			t.Fatalf("err = %v, want ErrStruck", err)
		}
		s := exp.GetSpans()[0]
		wantAttrs(t, s, map[attribute.Key]any{"plyrtasks.enqueue.outcome": tracing.EnqueueStruck})
		if s.Status.Code != codes.Unset || countEvents(s, "exception") != 1 {
			t.Errorf("status %v, %d exception events; want unset and 1", s.Status.Code, countEvents(s, "exception"))
		}
	})

	t.Run("refused", func(t *testing.T) {
		tp, exp := recorder(t)
		c := client.New(nil, client.Options{Fallback: client.FallbackError, Logger: logging.Discard(),
			EnqueueMiddleware: []client.EnqueueMiddleware{tracing.EnqueueMiddleware(tp)}})
		if _, err := c.Enqueue(t.Context(), export); !errors.Is(err, client.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
		s := exp.GetSpans()[0]
		wantAttrs(t, s, map[attribute.Key]any{"plyrtasks.enqueue.outcome": tracing.EnqueueRefused})
		if s.Status.Code != codes.Error {
			t.Errorf("status %v, want Error", s.Status.Code)
		}
	})

	t.Run("inline run continues the trace", func(t *testing.T) {
		tp, exp := recorder(t)
		reg := job.NewRegistry(tasks.All())
		job.Register(reg, func(context.Context, *job.Job[tasks.MediaExportArgs]) error { return nil })
		c := client.New(nil, client.Options{Inline: reg, Logger: logging.Discard(),
			Middleware:        []job.Middleware{tracing.Middleware(tp)},
			EnqueueMiddleware: []client.EnqueueMiddleware{tracing.EnqueueMiddleware(tp)}})
		defer c.Close(context.Background())
		res, err := c.Enqueue(t.Context(), export)
		if err != nil || res.Outcome != client.RanInline || res.Err != nil {
			t.Fatalf("enqueue = %+v, %v", res, err)
		}
		spans := exp.GetSpans()
		send := spanNamed(t, spans, "send export:media")
		run := spanNamed(t, spans, "process export:media")
		wantAttrs(t, send, map[attribute.Key]any{
			"plyrtasks.enqueue.outcome": tracing.EnqueueInline, "plyrtasks.enqueue.fallback_reason": job.FallbackNoRedis,
			"messaging.message.id": res.ID,
		})
		wantAttrs(t, run, map[attribute.Key]any{
			"plyrtasks.task.inline": true, "plyrtasks.task.outcome": job.OutcomeInline, "messaging.message.id": res.ID,
		})
		if run.Parent.SpanID() != send.SpanContext.SpanID() || run.SpanContext.TraceID() != send.SpanContext.TraceID() {
			t.Errorf("in-process run's parent = %s, want the enqueue span %s", run.Parent.SpanID(), send.SpanContext.SpanID())
		}
	})
}
