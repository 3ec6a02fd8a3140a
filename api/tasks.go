package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/control"
	"github.com/plyr-fm/plyrtasks/internal/rdb"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// ErrTaskNotFound is returned (wrapped) when no queue of the namespace
// holds a task with the ID.
var ErrTaskNotFound = errors.New("task not found")

// TaskStatus is what GET /v1/tasks/{id} answers.
type TaskStatus struct {
	ID    string `json:"id"`
	Type  string `json:"type"`
	Queue string `json:"queue"`
	// State is asynq's: pending, scheduled, active, retry, archived (failed
	// for good), completed, aggregating.
	State string `json:"state"`
	// Attempts is how many times the task has started running (1 while its
	// first run is active, and after it completed or was archived on it).
	Attempts int `json:"attempts"`
	// Retried is how many failed runs were retried (asynq's count).
	Retried   int    `json:"retried"`
	MaxRetry  int    `json:"max_retry"`
	LastError string `json:"last_error,omitempty"`
	// Orphaned: active, but no worker holds its lease any more (it will be
	// recovered and retried).
	Orphaned      bool       `json:"orphaned,omitempty"`
	LastFailedAt  *time.Time `json:"last_failed_at,omitempty"`
	NextProcessAt *time.Time `json:"next_process_at,omitempty"`
	CompletedAt   *time.Time `json:"completed_at,omitempty"`
	// Payload is the task's arguments with secrets and comment text
	// redacted.
	Payload json.RawMessage `json:"payload,omitempty"`
	// Result is what the handler stored (JSON as is, anything else as a
	// JSON string), redacted like the payload. Long tasks rewrite it as
	// they go, so it doubles as progress.
	Result json.RawMessage `json:"result,omitempty"`
	// Progress is the result's "progress" member when it has one, or the
	// whole result when it carries a "percent" (the export's shape).
	Progress json.RawMessage `json:"progress,omitempty"`
}

// Finished reports whether state is final: nothing more will happen to the
// task on its own.
func Finished(state string) bool {
	switch state {
	case "completed", "archived", "failed", "deleted":
		return true
	}
	return false
}

// Percent returns the progress percentage (0–100) in s, if any: the
// "percent" member of Progress.
func (s *TaskStatus) Percent() (float64, bool) {
	if len(s.Progress) == 0 {
		return 0, false
	}
	var p struct {
		Percent *float64 `json:"percent"`
	}
	if err := json.Unmarshal(s.Progress, &p); err == nil && p.Percent != nil {
		return *p.Percent, true
	}
	var n float64
	if err := json.Unmarshal(s.Progress, &n); err == nil {
		return n, true
	}
	return 0, false
}

// Tasks finds tasks by ID across the queues of one namespace, through
// asynq's Inspector. The HTTP API and the CLI's --direct mode share it;
// cancelling is the task controls' (package control).
type Tasks struct {
	insp      *asynq.Inspector
	namespace string
}

// NewTasks returns a Tasks over insp for the queues named
// "<namespace>:…" (every queue when namespace is empty).
func NewTasks(insp *asynq.Inspector, namespace string) *Tasks {
	return &Tasks{insp: insp, namespace: namespace}
}

// queues lists the namespace's queues that exist in Redis; a task can only
// be in one of them. Cost: one SMEMBERS.
func (t *Tasks) queues() ([]string, error) {
	all, err := t.insp.Queues()
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	var out []string
	for _, q := range all {
		if t.namespace == "" || strings.HasPrefix(q, t.namespace+":") {
			out = append(out, q)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (t *Tasks) find(ctx context.Context, id string) (*asynq.TaskInfo, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: empty ID", ErrTaskNotFound)
	}
	qs, err := t.queues()
	if err != nil {
		return nil, err
	}
	for _, q := range qs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		info, err := t.insp.GetTaskInfo(q, id)
		switch {
		case err == nil:
			return info, nil
		case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
			continue
		default:
			return nil, fmt.Errorf("get task %s in %s: %w", id, q, err)
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrTaskNotFound, id)
}

// Get returns the task's status.
func (t *Tasks) Get(ctx context.Context, id string) (*TaskStatus, error) {
	info, err := t.find(ctx, id)
	if err != nil {
		return nil, err
	}
	return t.status(info), nil
}

func (t *Tasks) status(info *asynq.TaskInfo) *TaskStatus {
	s := &TaskStatus{
		ID:        info.ID,
		Type:      info.Type,
		Queue:     DisplayQueue(t.namespace, info.Queue),
		State:     info.State.String(),
		Attempts:  rdb.Attempts(info),
		Retried:   info.Retried,
		MaxRetry:  info.MaxRetry,
		LastError: info.LastErr,
		Orphaned:  info.IsOrphaned,
	}
	s.LastFailedAt = timePtr(info.LastFailedAt)
	s.NextProcessAt = timePtr(info.NextProcessAt)
	s.CompletedAt = timePtr(info.CompletedAt)
	if len(info.Payload) > 0 {
		s.Payload = asJSON(tasks.Redact(info.Payload))
	}
	if len(info.Result) > 0 {
		s.Result = resultJSON(info.Result)
		s.Progress = progressOf(s.Result)
	}
	return s
}

// CancelResult is what DELETE /v1/tasks/{id} answers: the task controls'
// (package control, which serve mounts there).
type CancelResult = control.CancelResult

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

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// asJSON returns b when it is JSON, else b as a JSON string.
func asJSON(b []byte) json.RawMessage {
	if json.Valid(b) {
		return b
	}
	s := string(b)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	out, _ := json.Marshal(s)
	return out
}

func resultJSON(b []byte) json.RawMessage {
	if json.Valid(b) {
		return tasks.Redact(b)
	}
	return asJSON(b)
}

// progressOf picks the progress out of a result: its "progress" member, or
// the whole object when it has a "percent".
func progressOf(result json.RawMessage) json.RawMessage {
	var obj map[string]json.RawMessage
	if json.Unmarshal(result, &obj) != nil {
		return nil
	}
	if p, ok := obj["progress"]; ok && string(p) != "null" {
		return p
	}
	if _, ok := obj["percent"]; ok {
		return result
	}
	return nil
}
