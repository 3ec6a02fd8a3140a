package api

import (
	"context"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/control"
)

// ErrTaskNotFound is returned (wrapped) when no queue of the namespace
// holds a task with the ID.
var ErrTaskNotFound = control.ErrNotFound

// TaskStatus is what GET /v1/tasks/{id} answers: the task as the controls
// show it (state, attempts, last error, redacted payload and result,
// progress).
type TaskStatus = control.Task

// CancelResult is what DELETE /v1/tasks/{id} answers: the task controls'
// (package control, which serve mounts there).
type CancelResult = control.CancelResult

// Finished reports whether state is final: nothing more will happen to the
// task on its own.
func Finished(state string) bool { return control.Finished(state) }

// Tasks finds tasks by ID across the queues of one namespace: GET
// /v1/tasks/{id} and the CLI's --direct status. It is the task controls'
// Show (package control), which the rest of the controls share.
type Tasks struct {
	c *control.Controller
}

// NewTasks returns a Tasks over rdb for the queues named
// "<namespace>:…".
func NewTasks(rdb redis.UniversalClient, namespace string) *Tasks {
	return &Tasks{c: control.New(rdb, control.Options{Namespace: namespace, Logger: slog.New(slog.DiscardHandler)})}
}

// Get returns the task's status.
func (t *Tasks) Get(ctx context.Context, id string) (*TaskStatus, error) {
	return t.c.Show(ctx, id)
}

// DisplayQueue strips the namespace from a queue name: "plyr:default" →
// "default".
func DisplayQueue(namespace, queue string) string {
	if namespace == "" {
		return queue
	}
	if q, ok := strings.CutPrefix(queue, namespace+":"); ok {
		return q
	}
	return queue
}
