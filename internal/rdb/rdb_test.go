package rdb_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/internal/rdb"
	"github.com/plyr-fm/plyrtasks/internal/redistest"
)

var srv *redistest.Server

func TestMain(m *testing.M) { os.Exit(redistest.MustMain(m, &srv)) }

// hashTag is the part of key Redis Cluster hashes (the first {…}).
func hashTag(key string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return key
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return key
	}
	return key[i+1 : i+1+j]
}

func TestUniqueLockSharesTheQueueSlot(t *testing.T) {
	const q = "plyr:default"
	lock := rdb.UniqueLockKey(q, "copyright:scan", "42")
	for _, k := range []string{lock, rdb.TaskKey(q, "x"), rdb.PendingKey(q), rdb.LeaseKey(q), rdb.ArchivedKey(q)} {
		if got := hashTag(k); got != q {
			t.Errorf("hash tag of %q = %q, want %q", k, got, q)
		}
	}
	if rdb.UniqueLockKey(q, "copyright:scan", "42") == rdb.UniqueLockKey(q, "copyright:scan", "43") {
		t.Error("different unique keys share a lock")
	}
	if rdb.UniqueLockKey(q, "copyright:scan", "42") == rdb.UniqueLockKey(q, "atproto:sync", "42") {
		t.Error("different kinds share a lock")
	}
}

func TestAcquireUniqueByHolderState(t *testing.T) {
	const q = "plyr:default"
	ctx := context.Background()
	c := srv.Client(t, srv.DB(t))
	tests := []struct {
		name      string
		lockValue string // "" = no lock
		hash      map[string]any
		acquired  bool
		state     string
	}{
		{name: "free", acquired: true},
		{name: "pending", lockValue: "c:old", hash: map[string]any{"msg": "m", "state": "pending"}, state: "pending"},
		{name: "scheduled", lockValue: "c:old", hash: map[string]any{"msg": "m", "state": "scheduled"}, state: "scheduled"},
		{name: "retry", lockValue: "c:old", hash: map[string]any{"msg": "m", "state": "retry"}, state: "retry"},
		{name: "active", lockValue: "c:old", hash: map[string]any{"msg": "m", "state": "active"}, state: "active"},
		{name: "reservation in flight", lockValue: "r:old", state: "pending"},
		// An enqueue under the same task ID failed after reserving (and
		// could not release): its retry takes the reservation over instead
		// of being told it duplicates a task that does not exist.
		{name: "own reservation of a failed enqueue", lockValue: "r:{id}", acquired: true, state: "missing"},
		{name: "own task already queued", lockValue: "c:{id}", hash: map[string]any{"msg": "m", "state": "pending"}, state: "pending"},
		{name: "archived", lockValue: "c:old", hash: map[string]any{"msg": "m", "state": "archived"}, acquired: true, state: "archived"},
		{name: "completed", lockValue: "c:old", hash: map[string]any{"msg": "m", "state": "completed"}, acquired: true, state: "completed"},
		{name: "deleted", lockValue: "c:old", acquired: true, state: "missing"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lock := rdb.UniqueLockKey(q, "k", tt.name)
			id := "new" + string(rune('a'+i))
			holder := "old" // the task holding the lock before
			if strings.Contains(tt.lockValue, "{id}") {
				holder = id
			}
			lockValue := strings.ReplaceAll(tt.lockValue, "{id}", id)
			if lockValue != "" {
				c.Set(ctx, lock, lockValue, time.Minute)
			}
			if tt.hash != nil {
				c.HSet(ctx, rdb.TaskKey(q, holder), tt.hash)
				defer c.Del(ctx, rdb.TaskKey(q, holder))
			}
			a, err := rdb.AcquireUnique(ctx, c, lock, q, id, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if a.Acquired != tt.acquired {
				t.Fatalf("Acquired = %v, want %v (%+v)", a.Acquired, tt.acquired, a)
			}
			if a.HolderState != tt.state {
				t.Errorf("HolderState = %q, want %q", a.HolderState, tt.state)
			}
			v, _ := c.Get(ctx, lock).Result()
			if tt.acquired {
				if v != "r:"+id {
					t.Errorf("lock = %q, want reservation r:%s", v, id)
				}
				if tt.lockValue != "" && a.Holder != holder {
					t.Errorf("previous holder = %q, want %s", a.Holder, holder)
				}
				if ttl := c.PTTL(ctx, lock).Val(); ttl <= 0 || ttl > 10*time.Second {
					t.Errorf("reservation TTL = %s, want (0, 10s]", ttl)
				}
			} else {
				if a.Holder != holder {
					t.Errorf("Holder = %q, want %s", a.Holder, holder)
				}
				if v != lockValue {
					t.Errorf("lock changed to %q", v)
				}
			}
		})
	}
}

func TestConfirmAndRelease(t *testing.T) {
	const q = "plyr:critical"
	ctx := context.Background()
	c := srv.Client(t, srv.DB(t))
	lock := rdb.UniqueLockKey(q, "teal:scrobble", "s:1")

	if a, err := rdb.AcquireUnique(ctx, c, lock, q, "t1", time.Second); err != nil || !a.Acquired {
		t.Fatalf("acquire: %+v, %v", a, err)
	}
	if ok, err := rdb.ConfirmUnique(ctx, c, lock, "other", time.Hour); err != nil || ok {
		t.Fatalf("confirm by a non-holder = %v, %v; want false", ok, err)
	}
	if ok, err := rdb.ConfirmUnique(ctx, c, lock, "t1", time.Hour); err != nil || !ok {
		t.Fatalf("confirm = %v, %v", ok, err)
	}
	if v := c.Get(ctx, lock).Val(); v != "c:t1" {
		t.Errorf("confirmed lock = %q, want c:t1", v)
	}
	if ttl := c.PTTL(ctx, lock).Val(); ttl < 59*time.Minute || ttl > time.Hour {
		t.Errorf("confirmed TTL = %s, want the full window (1h)", ttl)
	}
	// A confirmed holder without a task hash was deleted: taken over.
	if a, _ := rdb.AcquireUnique(ctx, c, lock, q, "t2", time.Second); !a.Acquired || a.Holder != "t1" || a.HolderState != "missing" {
		t.Fatalf("take over from deleted holder: %+v", a)
	}
	if ok, _ := rdb.ReleaseUnique(ctx, c, lock, "t1"); ok {
		t.Error("the previous holder released the new holder's lock")
	}
	if ok, err := rdb.ReleaseUnique(ctx, c, lock, "t2"); err != nil || !ok {
		t.Fatalf("release = %v, %v", ok, err)
	}
	if n := c.Exists(ctx, lock).Val(); n != 0 {
		t.Error("lock still there after release")
	}
}

func TestRepairQueue(t *testing.T) {
	ctx := context.Background()
	db := srv.DB(t)
	c := srv.Client(t, db)
	const q = "plyr:default"
	ac := asynq.NewClientFromRedisClient(c)
	ins := asynq.NewInspectorFromRedisClient(c)

	enqueue := func(id string, opts ...asynq.Option) {
		t.Helper()
		opts = append(opts, asynq.Queue(q), asynq.TaskID(id))
		if _, err := ac.Enqueue(asynq.NewTask("k", []byte("{}")), opts...); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"p1", "p2", "p3"} {
		enqueue(id)
	}
	enqueue("s1", asynq.ProcessIn(time.Hour))
	enqueue("s2", asynq.ProcessIn(time.Hour))
	enqueue("a1")
	if err := ins.ArchiveTask(q, "a1"); err != nil {
		t.Fatal(err)
	}
	// Damage: two pending hashes and a scheduled one gone, an archived one
	// reduced to a bare state field (what asynq's forward script leaves).
	c.Del(ctx, rdb.TaskKey(q, "p2"), rdb.TaskKey(q, "p3"), rdb.TaskKey(q, "s2"))
	c.Del(ctx, rdb.TaskKey(q, "a1"))
	c.HSet(ctx, rdb.TaskKey(q, "a1"), "state", "archived")
	// asynqmon's queue list (Inspector.GetQueueInfo) fails on a missing
	// task hash: its memory-usage script adds MEMORY USAGE's nil.
	if _, err := ins.GetQueueInfo(q); err == nil {
		t.Fatal("GetQueueInfo works on the damaged queue: the test does not reproduce the defect")
	}

	n, err := rdb.RepairQueue(ctx, c, q, 2)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("removed %d IDs, want 4", n)
	}
	ids := func(list []*asynq.TaskInfo, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, ti := range list {
			out = append(out, ti.ID)
		}
		slices.Sort(out)
		return out
	}
	if _, err := ins.GetQueueInfo(q); err != nil {
		t.Errorf("GetQueueInfo after repair: %v", err)
	}
	if got := ids(ins.ListPendingTasks(q)); !slices.Equal(got, []string{"p1"}) {
		t.Errorf("pending = %v, want [p1]", got)
	}
	if got := ids(ins.ListScheduledTasks(q)); !slices.Equal(got, []string{"s1"}) {
		t.Errorf("scheduled = %v, want [s1]", got)
	}
	if got := ids(ins.ListArchivedTasks(q)); len(got) != 0 {
		t.Errorf("archived = %v, want none", got)
	}
	if c.Exists(ctx, rdb.TaskKey(q, "a1")).Val() != 0 {
		t.Error("the partial hash of a1 is still there")
	}
	if n, err := rdb.RepairQueue(ctx, c, q, 2); err != nil || n != 0 {
		t.Errorf("second repair = %d, %v; want 0", n, err)
	}
}

func TestRepairActiveDangling(t *testing.T) {
	ctx := context.Background()
	c := srv.Client(t, srv.DB(t))
	const q = "plyr:bulk"
	// What asynq's dequeue leaves for a pending ID without a hash: the ID in
	// active and lease, and a hash holding only state=active.
	c.LPush(ctx, rdb.ActiveKey(q), "ghost")
	c.ZAdd(ctx, rdb.LeaseKey(q), redisZ(time.Now().Add(30*time.Second), "ghost"))
	c.HSet(ctx, rdb.TaskKey(q, "ghost"), "state", "active")
	n, err := rdb.RepairQueue(ctx, c, q, 10)
	if err != nil || n != 1 {
		t.Fatalf("repair = %d, %v; want 1", n, err)
	}
	if c.LLen(ctx, rdb.ActiveKey(q)).Val() != 0 || c.ZCard(ctx, rdb.LeaseKey(q)).Val() != 0 {
		t.Error("ghost still in active or lease")
	}
}

func TestSchedulerEntriesReadByAsynq(t *testing.T) {
	ctx := context.Background()
	c := srv.Client(t, srv.DB(t))
	ins := asynq.NewInspectorFromRedisClient(c)
	next := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	prev := next.Add(-5 * time.Minute)
	entries := []rdb.SchedulerEntry{
		{ID: "e1", Spec: "@every 5m0s", Type: "copyright:sync-resolutions", Payload: []byte("{}"),
			Options: []string{`Queue("plyr:default")`, "MaxRetry(0)"}, Next: next, Prev: prev},
		{ID: "e2", Spec: "@every 1s", Type: "other", Next: next},
	}
	if err := rdb.WriteSchedulerEntries(ctx, c, "sched-1", entries, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	got, err := ins.SchedulerEntries()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("asynq sees %d entries, want 2", len(got))
	}
	byID := map[string]*asynq.SchedulerEntry{}
	for _, e := range got {
		byID[e.ID] = e
	}
	e1 := byID["e1"]
	if e1 == nil || e1.Spec != "@every 5m0s" || e1.Task.Type() != "copyright:sync-resolutions" ||
		string(e1.Task.Payload()) != "{}" || !e1.Next.Equal(next) || !e1.Prev.Equal(prev) ||
		!slices.Equal(optStrings(e1.Opts), entries[0].Options) {
		t.Errorf("e1 decoded as %+v", e1)
	}
	if e2 := byID["e2"]; e2 == nil || !e2.Prev.IsZero() {
		t.Errorf("e2 decoded as %+v (Prev should be zero)", e2)
	}

	at := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	if err := rdb.RecordSchedulerEnqueue(ctx, c, "e1", "task-1", at); err != nil {
		t.Fatal(err)
	}
	evs, err := ins.ListSchedulerEnqueueEvents("e1")
	if err != nil || len(evs) != 1 || evs[0].TaskID != "task-1" || !evs[0].EnqueuedAt.Equal(at) {
		t.Fatalf("events = %+v, %v", evs, err)
	}

	if err := rdb.ClearSchedulerEntries(ctx, c, "sched-1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := ins.SchedulerEntries(); len(got) != 0 {
		t.Errorf("entries after clear = %d", len(got))
	}
}
