package job_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// The worker and the in-process fallback put the same chain around a
// registry: a tracing middleware (or any other) goes in front through
// DefaultMiddleware's extra; a handler's panic becomes an error that is
// logged (with its stack) and counted, and the task retries.
func ExampleDefaultMiddleware() {
	reg := job.NewRegistry(tasks.All())
	job.Register(reg, func(ctx context.Context, j *job.Job[tasks.UnlikeArgs]) error {
		panic("nil session")
	})

	// Log lines without the varying attributes, for the example's output.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "duration", "stack":
				return slog.Attr{}
			}
			return a
		},
	}))
	metrics := job.NewMetrics(prometheus.NewRegistry())
	tracing := func(next job.HandlerFunc) job.HandlerFunc {
		return func(ctx context.Context, t *job.Task) error {
			fmt.Println("span start", t.Kind)
			defer fmt.Println("span end")
			return next(ctx, t)
		}
	}
	run := job.Chain(reg.Handler(), job.DefaultMiddleware(logger, metrics, tracing)...)

	err := run(context.Background(), &job.Task{
		Kind: "pds:unlike", ID: "t1", Queue: "critical", MaxRetry: 10,
		Payload: []byte(`{"session_id":"s1","like_uri":"at://did:plc:a/fm.plyr.like/1"}`),
	})
	var pe *job.PanicError
	fmt.Println(errors.As(err, &pe), job.IsPermanent(err))
	// Output:
	// span start pds:unlike
	// level=WARN msg="task failed, will retry" kind=pds:unlike id=t1 queue=critical attempt=1 outcome=retry error="panic: nil session"
	// span end
	// true false
}
