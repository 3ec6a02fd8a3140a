package rdb

import "github.com/hibiken/asynq"

// Attempts is how many times a task has started running, the way people
// count: 1 while its first run is active and after it completed or was
// archived on it, 0 while it waits for its first. asynq's Retried counts
// only the failures that were retried, so an archived task that ran twice
// shows 1 there; the API, the CLI and the log line's attempt all use this.
func Attempts(info *asynq.TaskInfo) int {
	switch info.State {
	case asynq.TaskStateActive, asynq.TaskStateCompleted, asynq.TaskStateArchived:
		return info.Retried + 1
	}
	return info.Retried
}
