package rdb_test

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/internal/rdb"
)

// `plyrtasks serve` on embedded defaults runs on miniredis (gopher-lua):
// the scripts must run there too.
func TestScriptsRunOnEmbeddedRedis(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	const q = "plyr:default"
	lock := rdb.UniqueLockKey(q, "copyright:scan", "1")

	a, err := rdb.AcquireUnique(ctx, c, lock, q, "t1", time.Minute)
	if err != nil || !a.Acquired {
		t.Fatalf("acquire: %+v, %v", a, err)
	}
	if a, _ := rdb.AcquireUnique(ctx, c, lock, q, "t2", time.Minute); a.Acquired || a.Holder != "t1" {
		t.Fatalf("second acquire during the reservation: %+v", a)
	}
	if ok, err := rdb.ConfirmUnique(ctx, c, lock, "t1", time.Hour); err != nil || !ok {
		t.Fatalf("confirm: %v, %v", ok, err)
	}
	c.HSet(ctx, rdb.TaskKey(q, "t1"), "msg", "m", "state", "active")
	if a, _ := rdb.AcquireUnique(ctx, c, lock, q, "t2", time.Minute); a.Acquired || a.HolderState != "active" {
		t.Fatalf("acquire while active: %+v", a)
	}
	if ok, err := rdb.ReleaseUnique(ctx, c, lock, "t1"); err != nil || !ok {
		t.Fatalf("release: %v, %v", ok, err)
	}

	c.LPush(ctx, rdb.PendingKey(q), "t1", "ghost")
	c.ZAdd(ctx, rdb.ArchivedKey(q), redis.Z{Score: 1, Member: "ghost2"})
	n, err := rdb.RepairQueue(ctx, c, q, 1)
	if err != nil || n != 2 {
		t.Fatalf("repair = %d, %v; want 2", n, err)
	}
	if got := c.LRange(ctx, rdb.PendingKey(q), 0, -1).Val(); len(got) != 1 || got[0] != "t1" {
		t.Errorf("pending = %v", got)
	}

	if err := rdb.WriteSchedulerEntries(ctx, c, "s", []rdb.SchedulerEntry{{ID: "e", Spec: "@every 1s", Type: "k", Next: time.Now()}}, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := rdb.RecordSchedulerEnqueue(ctx, c, "e", "t", time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := c.LLen(ctx, rdb.SchedulerEntriesKey("s")).Val(); n != 1 {
		t.Errorf("%d entries written", n)
	}
}
