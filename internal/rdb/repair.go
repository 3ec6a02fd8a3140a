package rdb

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// repairBatch removes, from one state set of a queue, the task IDs whose
// task hash is gone or has no message (a hash asynq's dequeue or forward
// script recreated with only a "state" field after the task was deleted).
// asynq's list calls fail on such IDs (asynqmon's queue pages with them),
// and a dequeued one sits in active until its lease runs out.
//
// KEYS[1] the set: pending or active (lists), scheduled, retry, archived,
//
//	completed (sorted sets)
//
// KEYS[2] the queue's lease set (used for "active" only)
// ARGV[1] task key prefix of the queue (same hash tag)
// ARGV[2] start index
// ARGV[3] batch size
// ARGV[4] "list", "active" or "zset"
//
// Returns {next start or -1 when done, removed, set length}.
var repairBatch = redis.NewScript(`
local kind = ARGV[4]
local start = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local ids
local total
if kind == "zset" then
	ids = redis.call("ZRANGE", KEYS[1], start, start + count - 1)
	total = redis.call("ZCARD", KEYS[1])
else
	ids = redis.call("LRANGE", KEYS[1], start, start + count - 1)
	total = redis.call("LLEN", KEYS[1])
end
local removed = 0
for _, id in ipairs(ids) do
	local key = ARGV[1] .. id
	if redis.call("HEXISTS", key, "msg") == 0 then
		if kind == "zset" then
			redis.call("ZREM", KEYS[1], id)
		else
			redis.call("LREM", KEYS[1], 0, id)
		end
		if kind == "active" then
			redis.call("ZREM", KEYS[2], id)
		end
		redis.call("DEL", key)
		removed = removed + 1
	end
end
local nextStart = start + #ids - removed
if #ids < count then
	nextStart = -1
end
return {nextStart, removed, total}
`)

// RepairQueue removes dangling task IDs (see repairBatch) from every state
// set of queue, batch IDs per script call so no call blocks Redis for long.
// It returns how many it removed.
func RepairQueue(ctx context.Context, c redis.Scripter, queue string, batch int) (int, error) {
	if batch <= 0 {
		batch = 500
	}
	sets := []struct{ key, kind string }{
		{PendingKey(queue), "list"},
		{ActiveKey(queue), "active"},
		{ScheduledKey(queue), "zset"},
		{RetryKey(queue), "zset"},
		{ArchivedKey(queue), "zset"},
		{CompletedKey(queue), "zset"},
	}
	removed := 0
	for _, s := range sets {
		start, calls, maxCalls := int64(0), 0, -1
		for start >= 0 {
			res, err := repairBatch.Run(ctx, c, []string{s.key, LeaseKey(queue)},
				TaskKeyPrefix(queue), start, batch, s.kind).Int64Slice()
			if err != nil {
				return removed, fmt.Errorf("rdb: repair %s: %w", s.key, err)
			}
			start = res[0]
			removed += int(res[1])
			calls++
			// The set may grow while we walk it; one pass over what was
			// there at the first call (plus slack) is enough.
			if maxCalls < 0 {
				maxCalls = int(res[2])/batch + 2
			}
			if calls >= maxCalls {
				break
			}
		}
	}
	return removed, nil
}
