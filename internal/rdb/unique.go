package rdb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// HeaderUniqueLock is the task header that carries a unique task's lock
// key, so the worker can release the lock when the task completes or is
// archived.
const HeaderUniqueLock = "plyrtasks-unique-lock"

// UniqueLockKey is the lock of the unique task of kind with uniqueKey in
// queue (a namespaced asynq queue name, so the namespace is part of it). It
// lives in the queue's hash slot, beside the task hashes it checks.
func UniqueLockKey(queue, kind, uniqueKey string) string {
	sum := sha256.Sum256([]byte(uniqueKey))
	return "plyrtasks:{" + queue + "}:unique:" + kind + ":" + hex.EncodeToString(sum[:16])
}

// Lock values are "r:<id>" while reserved (the holder is being enqueued)
// and "c:<id>" once confirmed (the task was written).

// acquireUnique takes the lock for a new task unless its holder is alive.
//
// KEYS[1] lock key
// ARGV[1] new task ID
// ARGV[2] reservation TTL in ms
// ARGV[3] task key prefix of the queue (same hash tag as KEYS[1])
//
// A holder is alive while its task hash is pending, scheduled, retry,
// active or aggregating, and while a reservation has no task hash yet (its
// enqueue is in flight). A holder that completed, was archived or deleted,
// or whose confirmed task hash is gone, is taken over; so is a reservation
// of the new task's own ID without a task hash: an enqueue under that ID
// failed and is being retried.
//
// Returns {1, previous holder, its state} when acquired,
// {0, holder, state} when the holder is alive.
var acquireUnique = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
local holder = ""
local state = ""
if v then
	holder = string.sub(v, 3)
	local s = redis.call("HGET", ARGV[3] .. holder, "state")
	if s == "pending" or s == "scheduled" or s == "retry" or s == "active" or s == "aggregating" then
		return {0, holder, s}
	end
	if not s and string.sub(v, 1, 2) == "r:" and holder ~= ARGV[1] then
		return {0, holder, "pending"}
	end
	if s then
		state = s
	else
		state = "missing"
	end
end
redis.call("SET", KEYS[1], "r:" .. ARGV[1], "PX", ARGV[2])
return {1, holder, state}
`)

// confirmUnique turns a reservation into the lock for the whole window.
//
// KEYS[1] lock key; ARGV[1] task ID; ARGV[2] TTL in ms.
var confirmUnique = redis.NewScript(`
if redis.call("GET", KEYS[1]) == "r:" .. ARGV[1] then
	redis.call("SET", KEYS[1], "c:" .. ARGV[1], "PX", ARGV[2])
	return 1
end
return 0
`)

// releaseUnique deletes the lock only while task ARGV[1] holds it.
//
// KEYS[1] lock key; ARGV[1] task ID.
var releaseUnique = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
if v == "r:" .. ARGV[1] or v == "c:" .. ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0
`)

// Acquisition is the answer of AcquireUnique.
type Acquisition struct {
	// Acquired is true when the lock is now reserved for the new task.
	Acquired bool
	// Holder is the task holding the lock when not acquired; when acquired,
	// the previous holder that was taken over ("" if none).
	Holder string
	// HolderState is the holder's task state ("pending", "active", …;
	// "missing" for a taken-over holder whose task hash was gone).
	HolderState string
}

// AcquireUnique reserves the lock at lockKey for task id of queue for
// reserve (the enqueue must happen and ConfirmUnique be called within it),
// unless a live task holds it.
func AcquireUnique(ctx context.Context, c redis.Scripter, lockKey, queue, id string, reserve time.Duration) (Acquisition, error) {
	res, err := acquireUnique.Run(ctx, c, []string{lockKey}, id, millis(reserve), TaskKeyPrefix(queue)).Slice()
	if err != nil {
		return Acquisition{}, fmt.Errorf("rdb: acquire unique lock: %w", err)
	}
	if len(res) != 3 {
		return Acquisition{}, fmt.Errorf("rdb: acquire unique lock: unexpected reply %v", res)
	}
	n, _ := res[0].(int64)
	holder, _ := res[1].(string)
	state, _ := res[2].(string)
	return Acquisition{Acquired: n == 1, Holder: holder, HolderState: state}, nil
}

// ConfirmUnique makes task id's reservation the lock for ttl. It reports
// false when the reservation was lost (expired and taken by another task).
func ConfirmUnique(ctx context.Context, c redis.Scripter, lockKey, id string, ttl time.Duration) (bool, error) {
	n, err := confirmUnique.Run(ctx, c, []string{lockKey}, id, millis(ttl)).Int()
	if err != nil {
		return false, fmt.Errorf("rdb: confirm unique lock: %w", err)
	}
	return n == 1, nil
}

// ReleaseUnique deletes the lock at lockKey if task id holds it. It reports
// whether it did.
func ReleaseUnique(ctx context.Context, c redis.Scripter, lockKey, id string) (bool, error) {
	n, err := releaseUnique.Run(ctx, c, []string{lockKey}, id).Int()
	if err != nil {
		return false, fmt.Errorf("rdb: release unique lock: %w", err)
	}
	return n == 1, nil
}

// millis is d in whole milliseconds, at least 1.
func millis(d time.Duration) int64 {
	return max(int64((d+time.Millisecond-1)/time.Millisecond), 1)
}
