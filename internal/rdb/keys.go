package rdb

// asynq v0.26.0's key layout for queue q ("plyr:default"): every key of a
// queue carries the hash tag {q}.

// AllQueues is asynq's set of every queue name.
const AllQueues = "asynq:queues"

// QueueKeyPrefix is the prefix of every key of queue q.
func QueueKeyPrefix(q string) string { return "asynq:{" + q + "}:" }

// TaskKeyPrefix is the prefix of queue q's task hashes.
func TaskKeyPrefix(q string) string { return QueueKeyPrefix(q) + "t:" }

// TaskKey is the hash of task id in queue q (fields msg, state, result…).
func TaskKey(q, id string) string { return TaskKeyPrefix(q) + id }

// PendingKey is queue q's pending list.
func PendingKey(q string) string { return QueueKeyPrefix(q) + "pending" }

// ActiveKey is queue q's active list.
func ActiveKey(q string) string { return QueueKeyPrefix(q) + "active" }

// LeaseKey is queue q's lease set of active tasks.
func LeaseKey(q string) string { return QueueKeyPrefix(q) + "lease" }

// ScheduledKey is queue q's scheduled set.
func ScheduledKey(q string) string { return QueueKeyPrefix(q) + "scheduled" }

// RetryKey is queue q's retry set.
func RetryKey(q string) string { return QueueKeyPrefix(q) + "retry" }

// ArchivedKey is queue q's archived set.
func ArchivedKey(q string) string { return QueueKeyPrefix(q) + "archived" }

// CompletedKey is queue q's completed set.
func CompletedKey(q string) string { return QueueKeyPrefix(q) + "completed" }

// AllSchedulers is asynq's set of scheduler entry keys, scored by expiry.
const AllSchedulers = "asynq:schedulers"

// SchedulerEntriesKey is the list of one scheduler's entries.
func SchedulerEntriesKey(schedulerID string) string {
	return "asynq:schedulers:{" + schedulerID + "}"
}

// SchedulerHistoryKey is the enqueue history of one scheduler entry.
func SchedulerHistoryKey(entryID string) string { return "asynq:scheduler_history:" + entryID }
