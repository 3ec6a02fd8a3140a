package faults

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// leaseRecovery bounds how long asynq takes to run again a task whose
// worker died: its lease (30 s, extended every 5 s) expires, the
// recoverer (every minute, on every worker) picks it up once the lease is
// 30 s past, and plyrtasks retries a lease-expired task after a second.
const leaseRecovery = 90 * time.Second

// TestKill9MidTaskEveryType starts one task of every registered type, waits
// until each is in the middle of its work — its external side (PDS write,
// moderation scan or labeler query, S3 upload part) has been done and the
// answer is held back by a proxy — and kills the worker with SIGKILL. A
// second worker runs every task again within leaseRecovery; the end state
// (PDS records, rows, scans, objects) is exactly as if each ran once.
//
// A type declared without retries (the periodic copyright:sync-resolutions)
// is archived with "task lease expired" instead, and its next tick (a new
// task, as the periodic loop enqueues it) does the work.
func TestKill9MidTaskEveryType(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{Moderation: true, S3: true})
	p, _ := newPDSWorld(t, w)
	cases, skipped := kindCases(t, w, p)
	checkCoverage(t, cases, skipped)

	type gate struct {
		proxy *holdProxy
		name  string
	}
	waiting := map[gate]int{}
	for _, c := range cases {
		c.proxy.Hold(c.gate)
		waiting[gate{c.proxy, c.gate}]++
	}
	a := w.start(t, "worker-a", "worker")
	refs := make([]ref, len(cases))
	for i, c := range cases {
		refs[i] = c.enqueue(t, w)
	}
	w.waitActive(t, refs, 60*time.Second)
	for g, n := range waiting {
		g.proxy.WaitWaiting(t, g.name, n, 60*time.Second)
	}

	kill := time.Now()
	a.Kill()
	t.Logf("killed worker-a (kill -9) with %d tasks in the middle of their work", len(cases))
	for g := range waiting {
		g.proxy.ReleaseAll()
	}
	w.start(t, "worker-b", "worker")

	var retried, noRetry []ref
	for i, c := range cases {
		if c.retries() > 0 {
			retried = append(retried, refs[i])
		} else {
			noRetry = append(noRetry, refs[i])
		}
	}
	done := w.waitStates(t, retried, leaseRecovery+15*time.Second, asynq.TaskStateCompleted)
	archived := w.waitStates(t, noRetry, leaseRecovery+15*time.Second, asynq.TaskStateArchived)

	var lines []string
	for _, r := range retried {
		ti := done[r.ID]
		took := ti.CompletedAt.Sub(kill)
		lines = append(lines, r.Kind+" "+took.Round(time.Second).String())
		if took > leaseRecovery {
			t.Errorf("%s ran again %s after the kill, want within %s", r.Kind, took, leaseRecovery)
		}
		if ti.Retried != 1 || !strings.Contains(ti.LastErr, "lease expired") {
			t.Errorf("%s completed after %d retries (last error %q), want 1 retry after the expired lease", r.Kind, ti.Retried, ti.LastErr)
		}
	}
	sort.Strings(lines)
	t.Logf("completed again after the kill: %s", strings.Join(lines, ", "))
	for _, r := range noRetry {
		ti := archived[r.ID]
		if !strings.Contains(ti.LastErr, "lease expired") {
			t.Errorf("%s archived with %q, want the expired lease", r.Kind, ti.LastErr)
		}
		t.Logf("%s (no retries) archived %s after the kill: %s", r.Kind, ti.LastFailedAt.Sub(kill).Round(time.Second), ti.LastErr)
	}
	// The next tick of each periodic type does its work.
	var ticks []ref
	for i, c := range cases {
		if c.retries() == 0 {
			_ = i
			ticks = append(ticks, c.enqueue(t, w))
		}
	}
	w.waitStates(t, ticks, 30*time.Second, asynq.TaskStateCompleted)

	for _, c := range cases {
		c.verify(t)
	}
	t.Logf("held answers: %d PDS writes, %d scans, %d labeler queries, %d upload parts",
		heldOf(p), w.modProxy.Held("scan"), w.modProxy.Held("negated"), w.s3.proxy.Held("part"))
}

func heldOf(p *pdsWorld) int {
	if p == nil {
		return 0
	}
	return p.proxy.Held("write")
}
