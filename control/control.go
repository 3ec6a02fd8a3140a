package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/internal/rdb"
	"github.com/plyr-fm/plyrtasks/strikes"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// Errors of the controls; they are wrapped, test with errors.Is. Invalid
// input is a *tasks.FieldError naming the parameter ("state", "queue",
// "type", "arg", "reason", "page", "page_size").
var (
	// ErrNotFound: no task with that ID in the namespace's queues, no such
	// queue, or no such strike.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the task's state does not allow the operation (retry a
	// pending task, cancel a completed one).
	ErrConflict = errors.New("not possible in this state")
)

// Controls is every operation, implemented by *Controller (straight to
// Redis) and *Remote (through the HTTP API).
type Controls interface {
	List(ctx context.Context, o ListOptions) (*TaskPage, error)
	Show(ctx context.Context, id string) (*Task, error)
	Retry(ctx context.Context, id string) (*Task, error)
	Cancel(ctx context.Context, id string) (*CancelResult, error)
	Queues(ctx context.Context) ([]QueueInfo, error)
	Pause(ctx context.Context, queue string) (*QueueInfo, error)
	Resume(ctx context.Context, queue string) (*QueueInfo, error)
	Strikes(ctx context.Context) ([]strikes.Strike, error)
	Strike(ctx context.Context, rule strikes.Rule, reason string) (strikes.Strike, error)
	Restore(ctx context.Context, rule strikes.Rule) (strikes.Strike, error)
}

// Options configure a Controller. Every field is optional.
type Options struct {
	// Namespace is the deployment's (TASKS_NAMESPACE). Default "plyr".
	Namespace string
	// Catalog declares the task types (strikes are checked against it).
	// Default tasks.All().
	Catalog *tasks.Catalog
	// Queues are the logical queues that exist by declaration, listed and
	// pausable before their first task. Default: tasks.QueuePriorities()'s.
	Queues []string
	// MaxScan bounds how many tasks one List with a type filter reads
	// (asynq cannot filter by type in Redis); past it the page comes back
	// with Truncated set. Default DefaultMaxScan (10000).
	MaxScan int
	// CancelWait bounds how long Cancel waits for a running task to stop
	// before it archives it. Default 5s.
	CancelWait time.Duration
	// StrikesChanged is called after a strike or restore succeeded: the
	// process' strikes.Watcher Refresh, so the change holds here before the
	// answer. Default none (watchers catch up within seconds).
	StrikesChanged func(context.Context) error
	// Logger receives the controls' audit lines (retry, cancel, pause,
	// resume, strike, restore). Default slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = "plyr"
	}
	if o.Catalog == nil {
		o.Catalog = tasks.All()
	}
	if len(o.Queues) == 0 {
		o.Queues = slices.Sorted(maps.Keys(tasks.QueuePriorities()))
	}
	if o.MaxScan <= 0 {
		o.MaxScan = DefaultMaxScan
	}
	if o.CancelWait <= 0 {
		o.CancelWait = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Controller runs the controls straight against Redis. It is safe for
// concurrent use.
type Controller struct {
	rdb     redis.UniversalClient
	insp    *asynq.Inspector
	strikes *strikes.Store
	opts    Options
	log     *slog.Logger
}

var _ Controls = (*Controller)(nil)

// New returns a Controller over rdb. It does not close rdb.
func New(rdb redis.UniversalClient, opts Options) *Controller {
	opts = opts.withDefaults()
	return &Controller{
		rdb:     rdb,
		insp:    asynq.NewInspectorFromRedisClient(rdb),
		strikes: strikes.NewStore(rdb, strikes.Options{Namespace: opts.Namespace, Logger: opts.Logger}),
		opts:    opts,
		log:     opts.Logger,
	}
}

// Task is one task as the controls and GET /v1/tasks/{id} show it
// (api.TaskStatus is this type).
type Task struct {
	ID string `json:"id"`
	// Type is the task type ("export:media").
	Type string `json:"type"`
	// Queue is the logical queue ("bulk"), without the namespace.
	Queue string `json:"queue"`
	// State is pending, active, scheduled, retry, archived or completed.
	State string `json:"state"`
	// Attempts is how many times the task has started running (see
	// rdb.Attempts); Retried how many failed runs were retried.
	Attempts  int    `json:"attempts"`
	Retried   int    `json:"retried"`
	MaxRetry  int    `json:"max_retry"`
	LastError string `json:"last_error,omitempty"`
	// Orphaned: active, but no worker holds its lease (it will be
	// recovered and retried).
	Orphaned      bool       `json:"orphaned,omitempty"`
	LastFailedAt  *time.Time `json:"last_failed_at,omitempty"`
	NextProcessAt *time.Time `json:"next_process_at,omitempty"`
	CompletedAt   *time.Time `json:"completed_at,omitempty"`
	// Payload is the task's arguments, secrets and comment text redacted
	// (tasks.Redact).
	Payload json.RawMessage `json:"payload,omitempty"`
	// Result is what the handler stored (JSON as is, anything else as a
	// JSON string), redacted the same way. Long tasks rewrite it as they
	// go, so it doubles as progress.
	Result json.RawMessage `json:"result,omitempty"`
	// Progress is the result's "progress" member when it has one, or the
	// whole result when it carries a "percent" (the export's shape).
	Progress json.RawMessage `json:"progress,omitempty"`
}

// logical strips the namespace from an asynq queue name.
func (c *Controller) logical(q string) string {
	if l, ok := strings.CutPrefix(q, c.opts.Namespace+":"); ok {
		return l
	}
	return q
}

func (c *Controller) task(info *asynq.TaskInfo) Task {
	t := Task{
		ID: info.ID, Type: info.Type, Queue: c.logical(info.Queue), State: info.State.String(),
		Attempts: rdb.Attempts(info), Retried: info.Retried, MaxRetry: info.MaxRetry, LastError: info.LastErr, Orphaned: info.IsOrphaned,
		LastFailedAt: timePtr(info.LastFailedAt), NextProcessAt: timePtr(info.NextProcessAt), CompletedAt: timePtr(info.CompletedAt),
	}
	if len(info.Payload) > 0 {
		t.Payload = redacted(info.Payload)
	}
	if len(info.Result) > 0 {
		t.Result = redacted(info.Result)
		t.Progress = progressOf(t.Result)
	}
	return t
}

// redacted is b with secrets removed when it is JSON, else b as a JSON
// string (a result need not be JSON), never raw bytes.
func redacted(b []byte) json.RawMessage {
	if json.Valid(b) {
		return tasks.Redact(b)
	}
	s := string(b)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	out, _ := json.Marshal(s)
	return out
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// existingQueues lists the namespace's asynq queues that exist in Redis,
// sorted.
func (c *Controller) existingQueues() ([]string, error) {
	all, err := c.insp.Queues()
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	var out []string
	for _, q := range all {
		if strings.HasPrefix(q, c.opts.Namespace+":") {
			out = append(out, q)
		}
	}
	slices.Sort(out)
	return out, nil
}

// knownQueues are the existing queues and the declared ones, sorted.
func (c *Controller) knownQueues() ([]string, error) {
	qs, err := c.existingQueues()
	if err != nil {
		return nil, err
	}
	for _, l := range c.opts.Queues {
		qs = append(qs, tasks.Namespaced(c.opts.Namespace, l))
	}
	slices.Sort(qs)
	return slices.Compact(qs), nil
}

// resolveQueue maps a logical ("bulk") or namespaced ("plyr:bulk") name
// to a known asynq queue name.
func (c *Controller) resolveQueue(name string) (string, error) {
	if name == "" {
		return "", &tasks.FieldError{Field: "queue", Reason: "is required"}
	}
	known, err := c.knownQueues()
	if err != nil {
		return "", err
	}
	for _, cand := range []string{tasks.Namespaced(c.opts.Namespace, name), name} {
		if slices.Contains(known, cand) {
			return cand, nil
		}
	}
	logical := make([]string, len(known))
	for i, q := range known {
		logical[i] = c.logical(q)
	}
	return "", fmt.Errorf("%w: queue %q (queues: %s)", ErrNotFound, name, strings.Join(logical, ", "))
}

// find returns the task with id in any of the namespace's queues.
func (c *Controller) find(ctx context.Context, id string) (*asynq.TaskInfo, error) {
	if strings.TrimSpace(id) == "" {
		return nil, &tasks.FieldError{Field: "id", Reason: "is required"}
	}
	qs, err := c.existingQueues()
	if err != nil {
		return nil, err
	}
	for _, q := range qs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		info, err := c.insp.GetTaskInfo(q, id)
		switch {
		case err == nil:
			return info, nil
		case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		default:
			return nil, fmt.Errorf("get task %s in %s: %w", id, q, err)
		}
	}
	return nil, fmt.Errorf("%w: task %s", ErrNotFound, id)
}
