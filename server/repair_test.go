package server_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/internal/rdb"
)

// asynqmon's queue list fails when a task hash is missing; the worker
// repairs that at start, and on demand.
func TestRepairRemovesDanglingTaskIDs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	const q = "plyr:default"
	ac := asynq.NewClientFromRedisClient(e.rc)
	for _, id := range []string{"keep", "lost"} {
		if _, err := ac.Enqueue(asynq.NewTask("test:noop", []byte(`{}`)), asynq.Queue(q), asynq.TaskID(id), asynq.ProcessIn(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	e.rc.Del(ctx, rdb.TaskKey(q, "lost"))
	if _, err := e.ins.GetQueueInfo(q); err == nil {
		t.Fatal("the damaged queue still lists: the test does not reproduce the defect")
	}

	s := e.start(t, testRegistry(&recorder{}), fastOptions())
	waitFor(t, 5*time.Second, "the start-up repair", func() bool {
		_, err := e.ins.GetQueueInfo(q)
		return err == nil
	})
	ids := func() []string {
		list, err := e.ins.ListScheduledTasks(q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, ti := range list {
			out = append(out, ti.ID)
		}
		return out
	}
	if got := ids(); !slices.Equal(got, []string{"keep"}) {
		t.Errorf("scheduled = %v, want [keep]", got)
	}

	// On demand, in a queue of this namespace the worker does not serve.
	if _, err := ac.Enqueue(asynq.NewTask("test:noop", []byte(`{}`)), asynq.Queue("plyr:other"), asynq.TaskID("gone")); err != nil {
		t.Fatal(err)
	}
	e.rc.Del(ctx, rdb.TaskKey("plyr:other", "gone"))
	n, err := s.Repair(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Repair = %d, %v; want 1", n, err)
	}
	if pending, err := e.ins.ListPendingTasks("plyr:other"); err != nil || len(pending) != 0 {
		t.Errorf("pending in plyr:other = %d, %v", len(pending), err)
	}
}
