package rdb

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// WakeChannel is the Pub/Sub channel on which producers tell the workers of
// namespace ns that a task is pending (see server.Wake). It carries no hash
// tag: PUBLISH reaches every node of a cluster.
func WakeChannel(ns string) string { return "plyrtasks:wake:" + ns }

// GroupKeyPrefix is the prefix of queue q's aggregation group sets.
func GroupKeyPrefix(q string) string { return QueueKeyPrefix(q) + "g:" }

// PausedKey exists while queue q is paused.
func PausedKey(q string) string { return QueueKeyPrefix(q) + "paused" }

// leaseCutoff is how long after its lease ran out asynq's recoverer takes
// an active task back (recoverer.go: now - 30s, against clock skew).
const leaseCutoff = 30 * time.Second

// wakeBatch bounds the tasks one check moves or deletes per queue and set,
// as asynq's forwarder and janitor do (100), so the script stays short.
const wakeBatch = 100

// wakeCheck is what an idle worker runs instead of an asynq server's
// polling loops (server.Wake): one script for every queue it serves does
// the work of asynq's processor poll, forwarder and janitor and the check
// half of its recoverer:
//
//   - forwards due scheduled and retry tasks to pending, exactly as asynq's
//     forwardCmd (rdb.go) does, group branch included;
//   - deletes completed tasks past their retention, as asynq's
//     deleteExpiredCompletedTasksCmd;
//   - reports whether a queue that is not paused has pending tasks, and
//     whether an active task's lease ran out more than 30 s ago (a crashed
//     worker's; the recoverer of the asynq server it then starts takes it
//     back at once).
//
// KEYS, six per queue: pending, paused, scheduled, retry, completed, lease.
// ARGV[1] now (unix s), ARGV[2] now (unix ns), ARGV[3] lease cutoff (unix
// s), ARGV[4] batch, then per queue: task key prefix, group key prefix.
//
// Returns {pending work 0|1, forwarded, deleted, lease expired 0|1}.
var wakeCheck = redis.NewScript(`
local now = ARGV[1]
local batch = tonumber(ARGV[4])
local work, moved, deleted, expired = 0, 0, 0, 0
for i = 0, (#KEYS / 6) - 1 do
	local k = i * 6
	local pending = KEYS[k + 1]
	local tprefix = ARGV[5 + i * 2]
	local gprefix = ARGV[6 + i * 2]
	for _, src in ipairs({KEYS[k + 3], KEYS[k + 4]}) do
		local ids = redis.call("ZRANGEBYSCORE", src, "-inf", now, "LIMIT", 0, batch)
		for _, id in ipairs(ids) do
			local taskKey = tprefix .. id
			local group = redis.call("HGET", taskKey, "group")
			if group and group ~= '' then
				redis.call("ZADD", gprefix .. group, now, id)
				redis.call("ZREM", src, id)
				redis.call("HSET", taskKey, "state", "aggregating")
			else
				redis.call("LPUSH", pending, id)
				redis.call("ZREM", src, id)
				redis.call("HSET", taskKey, "state", "pending", "pending_since", ARGV[2])
			end
		end
		moved = moved + #ids
	end
	local done = redis.call("ZRANGEBYSCORE", KEYS[k + 5], "-inf", now, "LIMIT", 0, batch)
	for _, id in ipairs(done) do
		redis.call("DEL", tprefix .. id)
		redis.call("ZREM", KEYS[k + 5], id)
	end
	deleted = deleted + #done
	if redis.call("EXISTS", KEYS[k + 2]) == 0 and redis.call("LLEN", pending) > 0 then
		work = 1
	end
	if #redis.call("ZRANGEBYSCORE", KEYS[k + 6], "-inf", ARGV[3], "LIMIT", 0, 1) > 0 then
		expired = 1
	end
end
return {work, moved, deleted, expired}`)

// WakeResult is what one WakeCheck found.
type WakeResult struct {
	// Pending: a queue that is not paused has pending tasks (forwarded
	// ones included).
	Pending bool
	// Forwarded scheduled and retry tasks that were due; Deleted completed
	// tasks past their retention.
	Forwarded, Deleted int
	// LeaseExpired: an active task's lease ran out over 30 s ago, so its
	// worker is gone and an asynq recoverer should take it back.
	LeaseExpired bool
}

// Work reports whether an asynq server has something to do.
func (r WakeResult) Work() bool { return r.Pending || r.LeaseExpired }

// WakeCheck runs the idle worker's check (see wakeCheck) over queues. On a
// cluster client it runs once per queue, each queue's keys sharing the
// queue's hash tag; otherwise it is a single script call for all queues:
// one Redis command whatever their number.
func WakeCheck(ctx context.Context, c redis.UniversalClient, queues []string, now time.Time) (WakeResult, error) {
	if _, cluster := c.(*redis.ClusterClient); cluster {
		var total WakeResult
		for _, q := range queues {
			r, err := wakeCheckRun(ctx, c, []string{q}, now)
			if err != nil {
				return total, err
			}
			total.Pending = total.Pending || r.Pending
			total.LeaseExpired = total.LeaseExpired || r.LeaseExpired
			total.Forwarded += r.Forwarded
			total.Deleted += r.Deleted
		}
		return total, nil
	}
	return wakeCheckRun(ctx, c, queues, now)
}

func wakeCheckRun(ctx context.Context, c redis.Scripter, queues []string, now time.Time) (WakeResult, error) {
	keys := make([]string, 0, 6*len(queues))
	args := []any{now.Unix(), now.UnixNano(), now.Add(-leaseCutoff).Unix(), wakeBatch}
	for _, q := range queues {
		keys = append(keys, PendingKey(q), PausedKey(q), ScheduledKey(q), RetryKey(q), CompletedKey(q), LeaseKey(q))
		args = append(args, TaskKeyPrefix(q), GroupKeyPrefix(q))
	}
	vals, err := wakeCheck.Run(ctx, c, keys, args...).Int64Slice()
	if err != nil {
		return WakeResult{}, fmt.Errorf("wake check: %w", err)
	}
	if len(vals) != 4 {
		return WakeResult{}, fmt.Errorf("wake check: script returned %d values, want 4", len(vals))
	}
	return WakeResult{Pending: vals[0] == 1, Forwarded: int(vals[1]), Deleted: int(vals[2]), LeaseExpired: vals[3] == 1}, nil
}
