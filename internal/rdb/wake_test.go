package rdb_test

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/internal/rdb"
)

func TestWakeCheck(t *testing.T) {
	ctx := context.Background()
	const crit, def = "plyr:critical", "plyr:default"
	queues := []string{crit, def}
	now := time.Now()
	tests := []struct {
		name  string
		setup func(t *testing.T, rc *redis.Client, ac *asynq.Client)
		at    time.Time // when the check runs
		want  rdb.WakeResult
		after func(t *testing.T, ins *asynq.Inspector)
	}{
		{"empty queues", nil, now, rdb.WakeResult{}, nil},
		{"a pending task", func(t *testing.T, _ *redis.Client, ac *asynq.Client) {
			enqueue(t, ac, def)
		}, now, rdb.WakeResult{Pending: true}, nil},
		{"pending in a paused queue is not work", func(t *testing.T, rc *redis.Client, ac *asynq.Client) {
			enqueue(t, ac, def)
			if err := asynq.NewInspectorFromRedisClient(rc).PauseQueue(def); err != nil {
				t.Fatal(err)
			}
		}, now, rdb.WakeResult{}, nil},
		{"a scheduled task not due yet", func(t *testing.T, _ *redis.Client, ac *asynq.Client) {
			enqueue(t, ac, crit, asynq.ProcessIn(time.Hour))
		}, now, rdb.WakeResult{}, nil},
		{"a due scheduled task is forwarded as asynq's forwarder does", func(t *testing.T, _ *redis.Client, ac *asynq.Client) {
			enqueue(t, ac, crit, asynq.ProcessIn(time.Minute))
		}, now.Add(2 * time.Minute), rdb.WakeResult{Pending: true, Forwarded: 1}, func(t *testing.T, ins *asynq.Inspector) {
			tasks, err := ins.ListPendingTasks(crit)
			if err != nil || len(tasks) != 1 || tasks[0].State != asynq.TaskStatePending {
				t.Errorf("pending after the check: %v, %v", tasks, err)
			}
		}},
		{"an expired completed task is deleted", func(t *testing.T, rc *redis.Client, _ *asynq.Client) {
			if err := rc.ZAdd(ctx, rdb.CompletedKey(def), redisZ(now.Add(-time.Minute), "done-1")).Err(); err != nil {
				t.Fatal(err)
			}
			if err := rc.HSet(ctx, rdb.TaskKey(def, "done-1"), "state", "completed").Err(); err != nil {
				t.Fatal(err)
			}
		}, now, rdb.WakeResult{Deleted: 1}, func(t *testing.T, ins *asynq.Inspector) {
			if _, err := ins.GetTaskInfo(def, "done-1"); err == nil {
				t.Error("the expired completed task is still there")
			}
		}},
		{"a lease run out over 30s ago", func(t *testing.T, rc *redis.Client, _ *asynq.Client) {
			if err := rc.ZAdd(ctx, rdb.LeaseKey(crit), redisZ(now.Add(-time.Minute), "lost-1")).Err(); err != nil {
				t.Fatal(err)
			}
		}, now, rdb.WakeResult{LeaseExpired: true}, nil},
		{"a lease run out 10s ago is still the worker's", func(t *testing.T, rc *redis.Client, _ *asynq.Client) {
			if err := rc.ZAdd(ctx, rdb.LeaseKey(crit), redisZ(now.Add(-10*time.Second), "slow-1")).Err(); err != nil {
				t.Fatal(err)
			}
		}, now, rdb.WakeResult{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := srv.Client(t, srv.DB(t))
			ac := asynq.NewClientFromRedisClient(rc)
			if tt.setup != nil {
				tt.setup(t, rc, ac)
			}
			got, err := rdb.WakeCheck(ctx, rc, queues, tt.at)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("WakeCheck = %+v, want %+v", got, tt.want)
			}
			if got.Work() != (tt.want.Pending || tt.want.LeaseExpired) {
				t.Errorf("Work() = %v", got.Work())
			}
			if tt.after != nil {
				tt.after(t, asynq.NewInspectorFromRedisClient(rc))
			}
		})
	}
}

func TestWakeCheckIsOneCommand(t *testing.T) {
	rc := srv.Client(t, srv.DB(t))
	var n int
	rc.AddHook(countCmds{&n})
	if _, err := rdb.WakeCheck(context.Background(), rc, []string{"plyr:critical", "plyr:default", "plyr:bulk"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	// go-redis' Script.Run is EVALSHA, then EVAL once when the script is
	// not loaded yet: count a second call only.
	n = 0
	if _, err := rdb.WakeCheck(context.Background(), rc, []string{"plyr:critical", "plyr:default", "plyr:bulk"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("commands for 3 queues = %d, want 1", n)
	}
}

func enqueue(t *testing.T, ac *asynq.Client, q string, opts ...asynq.Option) {
	t.Helper()
	if _, err := ac.Enqueue(asynq.NewTask("test:noop", nil), append(opts, asynq.Queue(q))...); err != nil {
		t.Fatal(err)
	}
}

type countCmds struct{ n *int }

func (h countCmds) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countCmds) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { *h.n++; return next(ctx, cmd) }
}
func (h countCmds) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { *h.n += len(cmds); return next(ctx, cmds) }
}
