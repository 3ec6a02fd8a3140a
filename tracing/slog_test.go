package tracing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/tracing"
)

// TestLogHandlerAddsTraceToTaskLine: the job's per-task log line, written
// inside the run's span, names that span.
func TestLogHandlerAddsTraceToTaskLine(t *testing.T) {
	tp, exp := recorder(t)
	var buf bytes.Buffer
	logger := slog.New(tracing.LogHandler(slog.NewJSONHandler(&buf, nil))).With("service", "plyrtasks")
	h := job.Chain(func(context.Context, *job.Task) error { return nil },
		job.DefaultMiddleware(logger, nil, tracing.Middleware(tp))...)
	if err := h(context.Background(), &job.Task{Kind: "pds:like", ID: "t1", Queue: "critical"}); err != nil {
		t.Fatal(err)
	}
	logger.Info("outside any span")

	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("%d log lines:\n%s", len(lines), buf.String())
	}
	var inRun, outside map[string]any
	if err := json.Unmarshal(lines[0], &inRun); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(lines[1], &outside); err != nil {
		t.Fatal(err)
	}
	span := exp.GetSpans()[0].SpanContext
	if inRun["trace_id"] != span.TraceID().String() || inRun["span_id"] != span.SpanID().String() || inRun["service"] != "plyrtasks" {
		t.Errorf("task line %v, want trace %s span %s", inRun, span.TraceID(), span.SpanID())
	}
	if _, ok := outside["trace_id"]; ok {
		t.Errorf("line outside a span got a trace_id: %v", outside)
	}
}
