package faults

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// TestSIGTERMDrainsWithoutUsingRetries stops a worker with SIGTERM while it
// runs four copyright scans: two whose moderation answers arrive within
// SHUTDOWN_TIMEOUT finish, two still waiting when it runs out go back to
// their queue. Nothing uses up a retry (Retried == 0 for every task), the
// worker exits 0 within its drain bound, and a second worker finishes the
// requeued and the still-pending tasks within seconds.
func TestSIGTERMDrainsWithoutUsingRetries(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{Moderation: true, ScanGate: func(u string) string {
		switch {
		case strings.Contains(u, "/fast-"):
			return "fast"
		case strings.Contains(u, "/slow-"):
			return "slow"
		}
		return "scan"
	}})
	const shutdownTimeout = 2 * time.Second
	w.env = w.env.With("WORKER_CONCURRENCY", "4", "SHUTDOWN_TIMEOUT", shutdownTimeout.String())

	// FIFO: the first four are taken by the worker, the other four wait.
	names := []string{"fast-1", "slow-1", "fast-2", "slow-2", "pend-1", "pend-2", "pend-3", "pend-4"}
	refs := make([]ref, len(names))
	urls := map[string]string{}
	trackIDs := map[string]int64{}
	for i, n := range names {
		tr, u := w.scanTrack(t, n, "clean")
		urls[n], trackIDs[n] = u, tr.ID
		refs[i] = w.enqueue(t, tasks.CopyrightScanArgs{TrackID: tr.ID, AudioURL: u})
	}
	w.modProxy.Hold("fast", "slow")
	a := w.start(t, "worker-a", "worker")
	w.waitActive(t, refs[:4], 30*time.Second)
	w.modProxy.WaitWaiting(t, "fast", 2, 30*time.Second)
	w.modProxy.WaitWaiting(t, "slow", 2, 30*time.Second)

	sigterm := time.Now()
	if err := a.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The fast answers arrive well within SHUTDOWN_TIMEOUT; the slow ones
	// only after the worker is gone.
	time.Sleep(300 * time.Millisecond)
	w.modProxy.Release("fast")
	maxDrain := shutdownTimeout + 150*time.Millisecond // + 1.5 × TASK_CHECK_INTERVAL
	if err := a.WaitExit(t, maxDrain+10*time.Second); err != nil {
		t.Fatalf("worker exited with %v after SIGTERM, want status 0", err)
	}
	drain := time.Since(sigterm)
	t.Logf("SIGTERM → exit took %s (SHUTDOWN_TIMEOUT %s)", drain.Round(time.Millisecond), shutdownTimeout)
	if drain < shutdownTimeout {
		t.Errorf("the worker exited after %s, before SHUTDOWN_TIMEOUT (%s), with tasks still running", drain, shutdownTimeout)
	}
	for _, want := range []string{"worker shutting down", "worker stopped"} {
		if !strings.Contains(a.Logs(), want) {
			t.Errorf("worker logs lack %q", want)
		}
	}

	// Each slow task's outcome line says it was interrupted and runs again
	// (not cancelled, not failed).
	for _, i := range []int{1, 3} { // slow-1, slow-2
		found := false
		for _, line := range strings.Split(a.Logs(), "\n") {
			if strings.Contains(line, refs[i].ID) && strings.Contains(line, "interrupted") {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("worker logs lack an 'interrupted' outcome line for %s", refs[i].ID)
		}
	}

	// Right after the stop: the fast scans completed, the slow ones are
	// back in the queue, the rest never started; no retry used anywhere.
	want := map[string]asynq.TaskState{
		"fast-1": asynq.TaskStateCompleted, "fast-2": asynq.TaskStateCompleted,
		"slow-1": asynq.TaskStatePending, "slow-2": asynq.TaskStatePending,
		"pend-1": asynq.TaskStatePending, "pend-2": asynq.TaskStatePending,
		"pend-3": asynq.TaskStatePending, "pend-4": asynq.TaskStatePending,
	}
	for i, n := range names {
		ti := w.info(refs[i])
		if ti == nil || ti.State != want[n] || ti.Retried != 0 {
			t.Errorf("after SIGTERM, %s is %+v, want %s with Retried 0", n, ti, want[n])
		}
	}

	w.modProxy.Release("slow")
	started := time.Now()
	w.start(t, "worker-b", "worker")
	infos := w.waitStates(t, refs, 30*time.Second, asynq.TaskStateCompleted)
	pickup := time.Since(started)
	t.Logf("second worker finished the requeued and pending tasks %s after it was started", pickup.Round(time.Millisecond))
	if pickup > 5*time.Second {
		t.Errorf("the second worker took %s to finish 6 instant tasks, want a few seconds at most", pickup)
	}
	for i, n := range names {
		if ti := infos[refs[i].ID]; ti.Retried != 0 {
			t.Errorf("%s completed with Retried %d (last error %q), want 0: a shutdown must not use up a retry", n, ti.Retried, ti.LastErr)
		}
	}
	// Each track has its scan; the service saw the slow ones twice (the
	// stopped attempt's request had reached it), the others once.
	ctx := context.Background()
	for _, n := range names {
		sc, err := w.st.GetScan(ctx, trackIDs[n])
		if err != nil || sc.Status != store.ScanClean {
			t.Errorf("%s: scan %+v, %v; want clean", n, sc, err)
		}
		wantScans := 1
		if strings.HasPrefix(n, "slow-") {
			wantScans = 2
		}
		if got := w.scannedTimes(urls[n]); got != wantScans {
			t.Errorf("%s was scanned %d times, want %d", n, got, wantScans)
		}
	}
}
