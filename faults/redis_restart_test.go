package faults

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// TestRedisCrashRestartLosesNothing crashes Redis (SIGKILL; AOF with
// appendfsync always) while it holds tasks in every state a worker cares
// about — retrying, active (their moderation answers held back), pending
// and scheduled — and starts it again on the same port and files. After
// the restart every task is still in its state, then all nine complete,
// and each one's side effect happened exactly once: one accepted scan per
// track at the moderation service, one stored scan, one labeler report.
func TestRedisCrashRestartLosesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{Moderation: true, ScanGate: func(u string) string {
		if strings.Contains(u, "/active-") {
			return "active"
		}
		return "scan"
	}})
	w.env = w.env.With("WORKER_CONCURRENCY", "2")
	// The retrying tasks' first scan meets a 503 from the proxy (the
	// service never sees it), so each track reaches the service once.
	var mu sync.Mutex
	failed := map[string]bool{}
	w.modProxy.SetFail(func(r *http.Request, body []byte) (int, string, bool) {
		var req struct {
			AudioURL string `json:"audio_url"`
		}
		_ = json.Unmarshal(body, &req)
		mu.Lock()
		defer mu.Unlock()
		if strings.Contains(req.AudioURL, "/retry-") && !failed[req.AudioURL] {
			failed[req.AudioURL] = true
			return http.StatusServiceUnavailable, `{"error":"restarting"}`, true
		}
		return 0, "", false
	})
	w.start(t, "worker", "worker")

	type task struct {
		name  string
		ref   ref
		track store.Track
		url   string
	}
	var all []*task
	add := func(name string, opts ...client.Option) *task {
		tr, u := w.scanTrack(t, name, "dominant")
		tk := &task{name: name, track: tr, url: u}
		tk.ref = w.enqueue(t, tasks.CopyrightScanArgs{TrackID: tr.ID, AudioURL: u}, opts...)
		all = append(all, tk)
		return tk
	}
	refs := func(ts ...*task) []ref {
		var out []ref
		for _, tk := range ts {
			out = append(out, tk.ref)
		}
		return out
	}
	// Retrying: failed once, due again 5-10 s later (the default backoff).
	r1, r2 := add("retry-1"), add("retry-2")
	w.waitStates(t, refs(r1, r2), 30*time.Second, asynq.TaskStateRetry)
	// Active: both worker slots, waiting for their held answers.
	w.modProxy.Hold("active")
	a1, a2 := add("active-1"), add("active-2")
	w.waitActive(t, refs(a1, a2), 30*time.Second)
	w.modProxy.WaitWaiting(t, "active", 2, 30*time.Second)
	// Pending behind them, and scheduled for later.
	p1, p2, p3 := add("pend-1"), add("pend-2"), add("pend-3")
	s1, s2 := add("sched-1", client.In(8*time.Second)), add("sched-2", client.In(8*time.Second))

	want := map[*task]asynq.TaskState{
		r1: asynq.TaskStateRetry, r2: asynq.TaskStateRetry,
		a1: asynq.TaskStateActive, a2: asynq.TaskStateActive,
		p1: asynq.TaskStatePending, p2: asynq.TaskStatePending, p3: asynq.TaskStatePending,
		s1: asynq.TaskStateScheduled, s2: asynq.TaskStateScheduled,
	}
	check := func(when string) {
		t.Helper()
		for tk, st := range want {
			ti := w.info(tk.ref)
			if ti == nil || ti.State != st {
				t.Fatalf("%s: %s is %+v, want %s", when, tk.name, ti, st)
			}
		}
	}
	check("before the crash")

	crash := time.Now()
	if err := w.redis.Restart(true); err != nil {
		t.Fatal(err)
	}
	t.Logf("Redis crashed and restarted from its AOF in %s", time.Since(crash).Round(time.Millisecond))
	check("after the restart")

	w.modProxy.Release("active")
	w.waitStates(t, refs(all...), 45*time.Second, asynq.TaskStateCompleted)
	t.Logf("all 9 tasks completed %s after the crash", time.Since(crash).Round(time.Millisecond))

	ctx := context.Background()
	for _, tk := range all {
		if n := w.scannedTimes(tk.url); n != 1 {
			t.Errorf("%s: the moderation service scanned it %d times, want exactly 1", tk.name, n)
		}
		if n := w.eventsFor(tk.track.RecordURI); n != 1 {
			t.Errorf("%s: %d labeler reports, want exactly 1", tk.name, n)
		}
		sc, err := w.st.GetScan(ctx, tk.track.ID)
		if err != nil || sc.Status != store.ScanFlagged {
			t.Errorf("%s: scan %+v, %v; want flagged", tk.name, sc, err)
		}
	}
	if n := len(w.mod.Events()); n != len(all) {
		t.Errorf("%d labeler reports in all, want %d", n, len(all))
	}
}
