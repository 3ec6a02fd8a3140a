package server_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/server"
)

// Three workers, each with its own scheduler, enqueue a 1s periodic task
// for about five seconds: exactly one task runs per tick, and one-off tasks
// run meanwhile.
func TestPeriodicExactlyOncePerTickAcrossWorkers(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	rec := &recorder{}
	o := fastOptions()
	o.DisablePeriodic = false
	var servers []*server.Server
	for range 3 {
		servers = append(servers, e.start(t, testRegistry(rec), o))
	}
	for i := range 25 {
		if _, err := e.client.Enqueue(ctx, noopArgs{N: i}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Every worker's entry is visible to asynqmon.
	entries, err := e.ins.SchedulerEntries()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Errorf("%d scheduler entries, want one per worker (3)", len(entries))
	}
	for _, en := range entries {
		if en.Task.Type() != "test:tick" || en.Spec != "@every 1s" || en.Prev.IsZero() || !en.Next.After(en.Prev) {
			t.Errorf("entry %+v", en)
		}
	}
	// The enqueue history names each enqueued tick once.
	events := map[string]int{}
	for _, en := range entries {
		evs, err := e.ins.ListSchedulerEnqueueEvents(en.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			events[ev.TaskID]++
		}
	}
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() { defer wg.Done(); s.Shutdown() }()
	}
	wg.Wait()

	perSlot := map[int64]int{}
	for _, tk := range rec.all() {
		if tk.Kind != "test:tick" {
			continue
		}
		slot, err := strconv.ParseInt(strings.TrimPrefix(tk.ID, "plyr:test:tick:"), 10, 64)
		if err != nil {
			t.Fatalf("tick task ID %q is not <namespace>:<kind>:<slot>", tk.ID)
		}
		perSlot[slot]++
	}
	if len(perSlot) < 3 {
		t.Fatalf("ticks ran for %d slots in ~5s of 1s ticks", len(perSlot))
	}
	var lo, hi int64 = 1 << 62, 0
	runs := 0
	for slot, n := range perSlot {
		runs += n
		if n != 1 {
			t.Errorf("slot %d ran %d times", slot, n)
		}
		lo, hi = min(lo, slot), max(hi, slot)
	}
	if runs != len(perSlot) {
		t.Errorf("%d periodic runs for %d distinct slots", runs, len(perSlot))
	}
	if int(hi-lo+1) != len(perSlot) {
		t.Errorf("slots %d..%d with gaps: %v", lo, hi, perSlot)
	}
	if n := rec.count("test:noop"); n != 25 {
		t.Errorf("%d of 25 one-off tasks ran alongside the periodic ones", n)
	}
	if len(events) < 3 {
		t.Errorf("enqueue history has %d ticks", len(events))
	}
	for id, n := range events {
		if n != 1 {
			t.Errorf("history records tick %s %d times", id, n)
		}
	}
	t.Logf("%d slots, %d runs, %d ticks in the history", len(perSlot), runs, len(events))
	if entries, _ := e.ins.SchedulerEntries(); len(entries) != 0 {
		t.Errorf("%d scheduler entries left after shutdown", len(entries))
	}
}

func TestPeriodicOnlyForHandledKinds(t *testing.T) {
	e := newEnv(t)
	reg := job.NewRegistry(testCatalog()) // no handler for test:tick
	o := fastOptions()
	o.DisablePeriodic = false
	e.start(t, reg, o)
	time.Sleep(1500 * time.Millisecond)
	if entries, _ := e.ins.SchedulerEntries(); len(entries) != 0 {
		t.Errorf("scheduler entries for a kind without handler: %d", len(entries))
	}
	if q, err := e.ins.ListPendingTasks("plyr:default"); err == nil && len(q) != 0 {
		t.Errorf("%d tick tasks enqueued for a kind nobody handles", len(q))
	}
}
