package faults

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/config"
	"github.com/plyr-fm/plyrtasks/handlers"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// TestDuplicateDeliveryHasNoVisibleEffect delivers one task of every
// registered type twice — the same job.Task (ID, payload, attempt) through
// the same registry pipeline a worker runs, as asynq's at-least-once
// delivery allows after a lost acknowledgement — and checks the end state
// is exactly that of one delivery: no second PDS record, job row, upload,
// scan or labeler report.
func TestDuplicateDeliveryHasNoVisibleEffect(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{Moderation: true, S3: true})
	p, _ := newPDSWorld(t, w)
	cases, skipped := kindCases(t, w, p)
	checkCoverage(t, cases, skipped)

	cfg, err := config.LoadEnv(w.env)
	if err != nil {
		t.Fatal(err)
	}
	reg := job.NewRegistry(tasks.All())
	if err := handlers.Register(reg, handlers.Deps{Config: cfg, Store: w.st, Redis: w.rdb, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	run := job.Chain(reg.Handler(), job.DefaultMiddleware(quiet, nil)...)

	for _, c := range cases {
		payload, err := tasks.Encode(c.args)
		if err != nil {
			t.Fatal(err)
		}
		def, _ := tasks.All().Lookup(c.kind)
		id := "dup-" + randomHex(6)
		for delivery := 1; delivery <= 2; delivery++ {
			var result bytes.Buffer
			task := &job.Task{Kind: c.kind, Payload: payload, ID: id, Queue: def.Opts.Queue, MaxRetry: def.Opts.Retries(), Result: &result}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := run(ctx, task)
			cancel()
			if err != nil {
				t.Errorf("%s: delivery %d of task %s failed: %v", c.kind, delivery, id, err)
			}
			t.Logf("%s delivery %d: %s", c.kind, delivery, result.String())
		}
	}
	for _, c := range cases {
		c.verify(t)
	}
	// The second scan delivery resumed the first's saved scan instead of
	// asking the service again.
	for _, c := range cases {
		if a, ok := c.args.(tasks.CopyrightScanArgs); ok {
			if n := w.scannedTimes(a.AudioURL); n != 1 {
				t.Errorf("copyright:scan: the service scanned %d times for two deliveries, want 1", n)
			}
		}
	}
}
