package rdb

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"
)

// SchedulerEntry is one periodic task as asynqmon's scheduler view shows
// it (asynq's SchedulerEntry).
type SchedulerEntry struct {
	ID      string
	Spec    string // "@every 5m0s"
	Type    string
	Payload []byte
	Options []string
	Next    time.Time
	Prev    time.Time // zero when it never ran
}

// writeSchedulerEntries replaces one scheduler's entry list.
//
// KEYS[1] asynq:schedulers:{<scheduler id>}
// ARGV[1] TTL in seconds
// ARGV[2:] encoded entries
var writeSchedulerEntries = redis.NewScript(`
redis.call("DEL", KEYS[1])
for i = 2, #ARGV do
	redis.call("LPUSH", KEYS[1], ARGV[i])
end
redis.call("EXPIRE", KEYS[1], ARGV[1])
return redis.status_reply("OK")
`)

// recordSchedulerEnqueue adds one enqueue event to an entry's history,
// keeping the newest 1000 (as asynq's scheduler does).
//
// KEYS[1] asynq:scheduler_history:<entry id>
// ARGV[1] enqueue time, Unix seconds
// ARGV[2] encoded event
var recordSchedulerEnqueue = redis.NewScript(`
redis.call("ZREMRANGEBYRANK", KEYS[1], 0, -1000)
redis.call("ZADD", KEYS[1], ARGV[1], ARGV[2])
return redis.status_reply("OK")
`)

// WriteSchedulerEntries publishes schedulerID's entries for ttl, where
// asynq's Inspector and asynqmon read them. Like asynq's scheduler, it
// refreshes them every heartbeat and lets them expire when it stops.
func WriteSchedulerEntries(ctx context.Context, c redis.UniversalClient, schedulerID string, entries []SchedulerEntry, ttl time.Duration) error {
	key := SchedulerEntriesKey(schedulerID)
	secs := max(int64(ttl/time.Second), 1)
	args := make([]any, 0, len(entries)+1)
	args = append(args, secs)
	for _, e := range entries {
		args = append(args, encodeSchedulerEntry(e))
	}
	exp := time.Now().Add(time.Duration(secs) * time.Second).Unix()
	// asynq keeps the index in its own slot; it is a separate command, as
	// in asynq's scheduler.
	if err := c.ZAdd(ctx, AllSchedulers, redis.Z{Score: float64(exp), Member: key}).Err(); err != nil {
		return fmt.Errorf("rdb: index scheduler entries: %w", err)
	}
	if err := writeSchedulerEntries.Run(ctx, c, []string{key}, args...).Err(); err != nil {
		return fmt.Errorf("rdb: write scheduler entries: %w", err)
	}
	return nil
}

// ClearSchedulerEntries removes schedulerID's entries (at shutdown).
func ClearSchedulerEntries(ctx context.Context, c redis.UniversalClient, schedulerID string) error {
	key := SchedulerEntriesKey(schedulerID)
	if err := c.ZRem(ctx, AllSchedulers, key).Err(); err != nil {
		return fmt.Errorf("rdb: clear scheduler entries: %w", err)
	}
	if err := c.Del(ctx, key).Err(); err != nil {
		return fmt.Errorf("rdb: clear scheduler entries: %w", err)
	}
	return nil
}

// RecordSchedulerEnqueue records that entryID enqueued taskID at at.
func RecordSchedulerEnqueue(ctx context.Context, c redis.Scripter, entryID, taskID string, at time.Time) error {
	ev := encodeSchedulerEnqueueEvent(taskID, at)
	if err := recordSchedulerEnqueue.Run(ctx, c, []string{SchedulerHistoryKey(entryID)}, at.Unix(), ev).Err(); err != nil {
		return fmt.Errorf("rdb: record scheduler enqueue: %w", err)
	}
	return nil
}

// ClearSchedulerHistory deletes entryID's enqueue history.
func ClearSchedulerHistory(ctx context.Context, c redis.UniversalClient, entryID string) error {
	if err := c.Del(ctx, SchedulerHistoryKey(entryID)).Err(); err != nil {
		return fmt.Errorf("rdb: clear scheduler history: %w", err)
	}
	return nil
}

// The encodings below are asynq v0.26.0's protobuf messages
// (internal/proto/asynq.proto), written field by field because asynq keeps
// its types internal:
//
//	message SchedulerEntry { string id = 1; string spec = 2; string task_type = 3;
//	  bytes task_payload = 4; repeated string enqueue_options = 5;
//	  google.protobuf.Timestamp next_enqueue_time = 6; google.protobuf.Timestamp prev_enqueue_time = 7; }
//	message SchedulerEnqueueEvent { string task_id = 1; google.protobuf.Timestamp enqueue_time = 2; }
//	message Timestamp { int64 seconds = 1; int32 nanos = 2; }

func encodeSchedulerEntry(e SchedulerEntry) []byte {
	var b []byte
	b = appendString(b, 1, e.ID)
	b = appendString(b, 2, e.Spec)
	b = appendString(b, 3, e.Type)
	if len(e.Payload) > 0 {
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendBytes(b, e.Payload)
	}
	for _, o := range e.Options {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendString(b, o)
	}
	b = appendTimestamp(b, 6, e.Next)
	b = appendTimestamp(b, 7, e.Prev)
	return b
}

func encodeSchedulerEnqueueEvent(taskID string, at time.Time) []byte {
	b := appendString(nil, 1, taskID)
	return appendTimestamp(b, 2, at)
}

func appendString(b []byte, field protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendTimestamp writes t as a google.protobuf.Timestamp (the zero time
// too, as timestamppb.New does, so it decodes back to the zero time).
func appendTimestamp(b []byte, field protowire.Number, t time.Time) []byte {
	var ts []byte
	if s := t.Unix(); s != 0 {
		ts = protowire.AppendTag(ts, 1, protowire.VarintType)
		ts = protowire.AppendVarint(ts, uint64(s))
	}
	if n := t.Nanosecond(); n != 0 {
		ts = protowire.AppendTag(ts, 2, protowire.VarintType)
		ts = protowire.AppendVarint(ts, uint64(int64(n)))
	}
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendBytes(b, ts)
}
