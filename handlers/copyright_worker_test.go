package handlers

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/internal/redistest"
	"github.com/plyr-fm/plyrtasks/moderation/moderationtest"
	"github.com/plyr-fm/plyrtasks/server"
	"github.com/plyr-fm/plyrtasks/store"
)

// TestCopyrightScanThroughWorker runs copyright:scan end to end: the Go
// client enqueues (a second scan of the same track while the first is
// queued or running is a duplicate), a real worker over a real redis-server
// runs it, the labeler fails once, and asynq's retry reports the flag
// without scanning again.
func TestCopyrightScanThroughWorker(t *testing.T) {
	e := newCopyrightEnv(t)
	e.srv.SetAnswer(copyrightAudio, moderationtest.Answer("dominant"))
	e.srv.Script(moderationtest.Scan, moderationtest.Reply{Delay: 300 * time.Millisecond})
	e.srv.Script(moderationtest.Events, moderationtest.Reply{Status: 503, Body: []byte(`{"error":"labeler restarting"}`)})

	rs := redistest.Start(t, redistest.Options{})
	rc := rs.Client(t, rs.DB(t))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	const ns = "copyright-e2e"
	w := server.New(rc, e.reg, server.Options{
		Namespace: ns, Concurrency: 2, DisablePeriodic: true, Logger: quiet,
		TaskCheckInterval: 10 * time.Millisecond, DelayedTaskCheckInterval: 100 * time.Millisecond,
		RetryDelay: func(int, error) time.Duration { return 10 * time.Millisecond },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	cl := client.New(rc, client.Options{Namespace: ns, Logger: quiet})
	t.Cleanup(func() { _ = cl.Close(context.Background()) })

	first, err := cl.ScheduleCopyrightScan(ctx, e.track.ID, copyrightAudio)
	if err != nil || first.Outcome != client.Enqueued {
		t.Fatalf("first enqueue = %+v, %v", first, err)
	}
	dup, err := cl.ScheduleCopyrightScan(ctx, e.track.ID, copyrightAudio+"?replaced=1")
	if err != nil || dup.Outcome != client.Duplicate || dup.ID != first.ID {
		t.Fatalf("second enqueue for the same track = %+v, %v; want a duplicate of %s", dup, err, first.ID)
	}

	ins := asynq.NewInspectorFromRedisClient(rc)
	var info *asynq.TaskInfo
	for {
		info, err = ins.GetTaskInfo(first.Queue, first.ID)
		if err == nil && (info.State == asynq.TaskStateCompleted || info.State == asynq.TaskStateArchived) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("task did not finish: %+v, %v", info, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if info.State != asynq.TaskStateCompleted || info.Retried != 1 {
		t.Fatalf("task state %s after %d retries (last error %q), want completed after 1", info.State, info.Retried, info.LastErr)
	}
	if !strings.Contains(string(info.Result), `"resumed":true`) || !strings.Contains(string(info.Result), `"reported":true`) {
		t.Errorf("task result %s, want resumed and reported", info.Result)
	}
	if n := e.srv.Calls(moderationtest.Scan); n != 1 {
		t.Errorf("the service scanned %d times, want once", n)
	}
	if n := e.srv.Calls(moderationtest.Events); n != 2 {
		t.Errorf("the labeler was called %d times, want 2 (503, then the report)", n)
	}
	if ev := e.srv.Events(); len(ev) != 1 || ev[0].SubjectURI != e.track.RecordURI {
		t.Errorf("events = %+v", ev)
	}
	sc := e.getScan(e.track.ID)
	if sc.Status != store.ScanFlagged || sc.DominantMatchPct != 80 {
		t.Errorf("stored scan %+v", sc)
	}

	// Once the scan finished, a rescan (new audio) is accepted.
	again, err := cl.ScheduleCopyrightScan(ctx, e.track.ID, copyrightAudio+"?replaced=1")
	if err != nil || again.Outcome != client.Enqueued {
		t.Errorf("rescan after completion = %+v, %v; want enqueued", again, err)
	}
}

// copyright:sync-resolutions is a periodic type of the real catalog: every
// worker that handles it publishes it to the dashboard's scheduler view
// (asynqmon reads asynq's scheduler entries) as "@every 5m0s" on the
// default queue, ticking at the same instants on every worker. All
// workers give a tick's task the same ID, so it runs once per interval
// however many workers there are (server.TestPeriodicExactlyOncePerTick-
// AcrossWorkers proves that mechanism with 1 s ticks).
func TestCopyrightSyncResolutionsIsScheduledOnEveryWorker(t *testing.T) {
	e := newCopyrightEnv(t)
	rs := redistest.Start(t, redistest.Options{})
	rc := rs.Client(t, rs.DB(t))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	const ns = "sync-e2e"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const workers = 2
	for range workers {
		w := server.New(rc, e.reg, server.Options{Namespace: ns, Concurrency: 1, Logger: quiet})
		if err := w.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Shutdown)
	}
	ins := asynq.NewInspectorFromRedisClient(rc)
	var entries []*asynq.SchedulerEntry
	for len(entries) < workers {
		var err error
		if entries, err = ins.SchedulerEntries(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d scheduler entries, want one per worker (%d)", len(entries), workers)
		case <-time.After(20 * time.Millisecond):
		}
	}
	for _, en := range entries {
		if en.Task.Type() != "copyright:sync-resolutions" || en.Spec != "@every 5m0s" {
			t.Errorf("scheduler entry %s %s, want copyright:sync-resolutions @every 5m0s", en.Task.Type(), en.Spec)
		}
		var opts []string
		for _, o := range en.Opts {
			opts = append(opts, o.String())
		}
		if !slices.Contains(opts, `Queue("`+ns+`:default")`) || !slices.Contains(opts, "MaxRetry(0)") {
			t.Errorf("entry options %q, want the %s:default queue and no retry (the next tick is the retry)", opts, ns)
		}
		if next := time.Until(en.Next); next <= 0 || next > 5*time.Minute || en.Next.UnixNano()%int64(5*time.Minute) != 0 {
			t.Errorf("next tick %s, want the next multiple of 5m since the epoch (the same instant on every worker)", en.Next)
		}
	}
}
