package job_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/tasks"
)

func TestOutcome(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	operatorCancelled, cancelOp := context.WithCancelCause(context.Background())
	cancelOp(job.ErrCancelled)
	live := context.Background()
	first := &job.Task{Attempt: 0, MaxRetry: 3}
	last := &job.Task{Attempt: 3, MaxRetry: 3}
	inline := &job.Task{Attempt: 0, MaxRetry: 2, Inline: true}
	inlineLast := &job.Task{Attempt: 2, MaxRetry: 2, Inline: true}
	boom := errors.New("boom")
	tests := []struct {
		name string
		ctx  context.Context
		t    *job.Task
		err  error
		want string
	}{
		{"success", live, first, nil, job.OutcomeOK},
		{"inline success", live, inline, nil, job.OutcomeInline},
		{"transient", live, first, boom, job.OutcomeRetry},
		{"transient on last attempt", live, last, boom, job.OutcomeArchived},
		{"permanent", live, first, job.Permanent(boom), job.OutcomeArchived},
		{"struck", live, first, job.Permanent(fmt.Errorf("artist blocked: %w", job.ErrStruck)), job.OutcomeStruck},
		{"cancelled by an operator", operatorCancelled, first, fmt.Errorf("fetch: %w", context.Canceled), job.OutcomeCancelled},
		// The newcomer run: a SIGTERM read "task cancelled" in the log.
		{"interrupted (shutdown)", cancelled, first, fmt.Errorf("fetch: %w", context.Canceled), job.OutcomeInterrupted},
		{"canceled error with a live context is a failure", live, first, context.Canceled, job.OutcomeRetry},
		// The second newcomer run: a hanging PDS call cancelled by an
		// operator came back as a plain transient error and was counted as
		// a failure (tasks_failed_total, the README's alert).
		{"cancelled by an operator, error not wrapping Canceled", operatorCancelled, first, errors.New("pds: request aborted"), job.OutcomeCancelled},
		{"a handler's own ErrCancelled", live, first, job.Permanent(fmt.Errorf("export x: %w", job.ErrCancelled)), job.OutcomeCancelled},
		{"interrupted, error not wrapping Canceled", cancelled, first, errors.New("pds: request aborted"), job.OutcomeInterrupted},
		{"deadline is a failure", cancelled, first, context.DeadlineExceeded, job.OutcomeRetry},
		{"inline transient", live, inline, boom, job.OutcomeRetry},
		{"inline last attempt", live, inlineLast, boom, job.OutcomeFailed},
		{"inline permanent", live, inline, job.Permanent(boom), job.OutcomeFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := job.Outcome(tt.ctx, tt.t, tt.err); got != tt.want {
				t.Errorf("Outcome = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRecoverTurnsPanicIntoError(t *testing.T) {
	h := job.Chain(func(ctx context.Context, t *job.Task) error {
		var m map[string]int
		m["x"] = 1 // nil map write: a runtime panic
		return nil
	}, job.Recover())
	err := h(context.Background(), &job.Task{Kind: "k"})
	var pe *job.PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v (%T), want *job.PanicError", err, err)
	}
	if !strings.HasPrefix(err.Error(), "panic: assignment to entry in nil map") {
		t.Errorf("message = %q", err.Error())
	}
	if !bytes.Contains(pe.Stack, []byte("middleware_test.go")) {
		t.Errorf("stack does not point at the panicking handler:\n%s", pe.Stack)
	}
	if job.IsPermanent(err) {
		t.Error("a panic must retry like any failure, not archive at once")
	}
}

// logLines decodes JSON log lines.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestLoggingOneLinePerRunWithoutPayload(t *testing.T) {
	const secret = "my private comment text"
	tests := []struct {
		name    string
		handler job.HandlerFunc
		task    job.Task
		level   string
		outcome string
		errMsg  string
		stack   bool
	}{
		{"ok", func(context.Context, *job.Task) error { return nil },
			job.Task{Kind: "pds:comment-create", ID: "t1", Queue: "critical", Attempt: 0, MaxRetry: 10}, "INFO", "ok", "", false},
		{"retry", func(context.Context, *job.Task) error { return errors.New("pds: 502") },
			job.Task{Kind: "pds:comment-create", ID: "t2", Queue: "critical", Attempt: 2, MaxRetry: 10}, "WARN", "retry", "pds: 502", false},
		{"archived", func(context.Context, *job.Task) error { return job.Permanent(job.ErrSessionExpired) },
			job.Task{Kind: "pds:comment-create", ID: "t3", Queue: "critical", MaxRetry: 10}, "ERROR", "archived", "session expired", false},
		{"panic", func(context.Context, *job.Task) error { panic("kaboom") },
			job.Task{Kind: "pds:comment-create", ID: "t4", Queue: "critical", MaxRetry: 10}, "WARN", "retry", "panic: kaboom", true},
		{"inline", func(context.Context, *job.Task) error { return nil },
			job.Task{Kind: "pds:comment-create", ID: "t5", Queue: "critical", Inline: true}, "INFO", "inline", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&buf, nil))
			h := job.Chain(tt.handler, job.DefaultMiddleware(logger, nil)...)
			task := tt.task
			task.Payload = []byte(`{"text":"` + secret + `"}`)
			_ = h(context.Background(), &task)
			lines := logLines(t, &buf)
			if len(lines) != 1 {
				t.Fatalf("%d log lines, want 1:\n%s", len(lines), buf.String())
			}
			l := lines[0]
			want := map[string]any{
				"level": tt.level, "kind": task.Kind, "id": task.ID, "queue": task.Queue,
				"attempt": float64(task.Attempt + 1), "outcome": tt.outcome,
			}
			for k, v := range want {
				if l[k] != v {
					t.Errorf("%s = %v, want %v", k, l[k], v)
				}
			}
			if _, ok := l["duration"]; !ok {
				t.Error("no duration")
			}
			if tt.errMsg == "" && l["error"] != nil {
				t.Errorf("error = %v on success", l["error"])
			}
			if tt.errMsg != "" && l["error"] != tt.errMsg {
				t.Errorf("error = %v, want %q", l["error"], tt.errMsg)
			}
			if _, ok := l["stack"]; ok != tt.stack {
				t.Errorf("stack logged = %v, want %v", ok, tt.stack)
			}
			if task.Inline && l["inline"] != true {
				t.Error("inline run not marked inline=true")
			}
			if strings.Contains(buf.String(), secret) {
				t.Error("the payload reached the log")
			}
		})
	}
}

func TestDefaultMiddlewareOrder(t *testing.T) {
	var order []string
	mark := func(name string) job.Middleware {
		return func(next job.HandlerFunc) job.HandlerFunc {
			return func(ctx context.Context, t *job.Task) error {
				order = append(order, name+">")
				err := next(ctx, t)
				order = append(order, "<"+name)
				return err
			}
		}
	}
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	reg := job.NewRegistry(tasks.All())
	reg.Use(mark("registry"))
	job.Register(reg, func(ctx context.Context, j *job.Job[tasks.UnlikeArgs]) error {
		order = append(order, "handler")
		panic("inner")
	})
	// A tracing middleware passed as extra sees the panic as an error (it
	// runs outside Recover) and wraps the log line.
	var sawErr error
	tracing := func(next job.HandlerFunc) job.HandlerFunc {
		return func(ctx context.Context, t *job.Task) error {
			order = append(order, "tracing>")
			sawErr = next(ctx, t)
			order = append(order, "<tracing")
			return sawErr
		}
	}
	h := job.Chain(reg.Handler(), job.DefaultMiddleware(logger, nil, tracing)...)
	err := h(context.Background(), &job.Task{Kind: "pds:unlike", Payload: []byte(`{"session_id":"s","like_uri":"at://did:plc:a/app.bsky.feed.like/1"}`), MaxRetry: 1})
	want := []string{"tracing>", "registry>", "handler", "<tracing"}
	if strings.Join(order, " ") != strings.Join(want, " ") {
		t.Errorf("order = %v, want %v (registry middleware inside Recover, so a panic skips its exit)", order, want)
	}
	var pe *job.PanicError
	if !errors.As(err, &pe) || !errors.As(sawErr, &pe) {
		t.Errorf("err = %v, tracing saw %v; want the PanicError", err, sawErr)
	}
	if n := len(logLines(t, &buf)); n != 1 {
		t.Errorf("%d log lines", n)
	}
}

func TestMetricsCountsByOutcome(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := job.NewMetrics(reg)
	run := func(kind string, attempt int, err error) {
		h := job.Chain(func(context.Context, *job.Task) error { return err }, m.Middleware())
		_ = h(context.Background(), &job.Task{Kind: kind, Attempt: attempt, MaxRetry: 2})
	}
	run("copyright:scan", 0, nil)
	run("copyright:scan", 0, errors.New("transient"))
	run("copyright:scan", 2, errors.New("transient, last attempt"))
	run("copyright:scan", 0, job.Permanent(errors.New("bad")))
	run("pds:like", 0, nil)
	run("no:such-kind", 0, nil)
	run("another:unknown", 0, errors.New("x"))
	m.Fallback("pds:like", job.FallbackNoRedis)
	m.Fallback("pds:like", job.FallbackEnqueueFailed)
	m.Fallback("pds:like", job.FallbackEnqueueFailed)
	m.Fallback("made:up", "weird reason")

	tests := []struct {
		metric string
		labels []string
		want   float64
	}{
		{"processed", []string{"copyright:scan"}, 4},
		{"failed", []string{"copyright:scan"}, 3},
		{"retried", []string{"copyright:scan"}, 1},
		{"archived", []string{"copyright:scan"}, 2},
		{"processed", []string{"pds:like"}, 1},
		{"failed", []string{"pds:like"}, 0},
		{"processed", []string{job.UnknownKind}, 2},
		{"retried", []string{job.UnknownKind}, 1},
		{"fallback", []string{"pds:like", job.FallbackNoRedis}, 1},
		{"fallback", []string{"pds:like", job.FallbackEnqueueFailed}, 2},
		{"fallback", []string{job.UnknownKind, "other"}, 1},
	}
	for _, tt := range tests {
		name := "plyrtasks_tasks_" + tt.metric + "_total"
		if tt.metric == "fallback" {
			name = "plyrtasks_fallback_total"
		}
		got := gatherValue(t, reg, name, tt.labels)
		if got != tt.want {
			t.Errorf("%s%v = %v, want %v", name, tt.labels, got, tt.want)
		}
	}
	if n := gatherHistogramCount(t, reg, "copyright:scan"); n != 4 {
		t.Errorf("duration observations for copyright:scan = %d, want 4", n)
	}
	// Bounded labels: every series is a catalog kind or "unknown".
	n := gatherSeries(t, reg, "plyrtasks_tasks_processed_total")
	if want := len(tasks.All().Kinds()) + 1; n != want {
		t.Errorf("%d processed series, want %d (catalog + unknown)", n, want)
	}
}

func TestNewMetricsTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := job.NewMetrics(reg)
	b := job.NewMetrics(reg)
	a.Observe("pds:like", job.OutcomeOK, time.Millisecond)
	b.Observe("pds:like", job.OutcomeOK, time.Millisecond)
	if got := gatherValue(t, reg, "plyrtasks_tasks_processed_total", []string{"pds:like"}); got != 2 {
		t.Errorf("processed = %v, want 2 (shared collectors)", got)
	}
	var nilMetrics *job.Metrics
	nilMetrics.Observe("pds:like", job.OutcomeOK, 0) // must not panic
	nilMetrics.Fallback("pds:like", job.FallbackNoRedis)
	h := job.Chain(func(context.Context, *job.Task) error { return nil }, nilMetrics.Middleware())
	if err := h(context.Background(), &job.Task{}); err != nil {
		t.Fatal(err)
	}
}
