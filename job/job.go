package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/plyr-fm/plyrtasks/tasks"
)

// Job is one run of a task of args type A, as its handler sees it.
type Job[A tasks.Args] struct {
	// Args are the decoded, validated arguments.
	Args A
	*Task
}

// Handler runs jobs of args type A. Return nil on success, a Permanent error
// to archive without retrying, RetryAfter to retry at a given time, or any
// other error to retry with backoff.
type Handler[A tasks.Args] func(ctx context.Context, j *Job[A]) error

// Task is a task with its kind erased: what the registry and middleware see.
type Task struct {
	Kind     string
	Payload  []byte
	ID       string
	Queue    string
	Attempt  int // retries so far: 0 on the first run
	MaxRetry int
	Headers  map[string]string
	// Inline is true when the task runs in-process (producer fallback).
	Inline bool
	// Result receives the task's result (asynq's ResultWriter on a worker);
	// nil when results are not kept.
	Result io.Writer
}

// SetResult stores v as the task's JSON result (visible in the dashboard and
// through GET /v1/tasks/{id}). A later call replaces an earlier one, so it
// doubles as a progress channel.
func (t *Task) SetResult(v any) error {
	if t.Result == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if _, err := t.Result.Write(b); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// LastAttempt reports whether a failure now would archive the task.
func (t *Task) LastAttempt() bool { return t.Attempt >= t.MaxRetry }

// HandlerFunc runs a kind-erased task.
type HandlerFunc func(ctx context.Context, t *Task) error

// Middleware wraps a HandlerFunc. Middleware runs outermost first, in the
// order given to Use.
type Middleware func(next HandlerFunc) HandlerFunc

// Registry maps task kinds to handlers and runs tasks through middleware.
type Registry struct {
	catalog  *tasks.Catalog
	handlers map[string]HandlerFunc
	mw       []Middleware
}

// NewRegistry returns an empty registry over catalog.
func NewRegistry(catalog *tasks.Catalog) *Registry {
	return &Registry{catalog: catalog, handlers: map[string]HandlerFunc{}}
}

// Catalog returns the declarations the registry decodes with.
func (r *Registry) Catalog() *tasks.Catalog { return r.catalog }

// Register adds the handler for args type A. It panics when A's kind is not
// declared in the catalog or already has a handler: both are wiring bugs
// that the first test run catches.
func Register[A tasks.Args](r *Registry, h Handler[A]) {
	var zero A
	kind := zero.Kind()
	def, ok := r.catalog.Lookup(kind)
	if !ok {
		panic("job: no declaration for kind " + kind + " (add it to tasks.All)")
	}
	if _, dup := r.handlers[kind]; dup {
		panic("job: handler registered twice for " + kind)
	}
	r.handlers[kind] = func(ctx context.Context, t *Task) error {
		a, err := def.Decode(t.Payload)
		if err != nil {
			return Permanent(fmt.Errorf("invalid payload: %w", err))
		}
		return h(ctx, &Job[A]{Args: *(any(a).(*A)), Task: t})
	}
}

// Use appends middleware. Call it before the first Run.
func (r *Registry) Use(mw ...Middleware) { r.mw = append(r.mw, mw...) }

// Kinds returns the kinds that have a handler, sorted.
func (r *Registry) Kinds() []string {
	out := make([]string, 0, len(r.handlers))
	for k := range r.handlers {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Has reports whether kind has a handler.
func (r *Registry) Has(kind string) bool { _, ok := r.handlers[kind]; return ok }

// Handler returns the full pipeline: middleware around the dispatch. An
// unknown kind is a permanent failure (archived, visible), never a silent
// drop.
func (r *Registry) Handler() HandlerFunc {
	var h HandlerFunc = r.dispatch
	for i := len(r.mw) - 1; i >= 0; i-- {
		h = r.mw[i](h)
	}
	return h
}

func (r *Registry) dispatch(ctx context.Context, t *Task) error {
	h, ok := r.handlers[t.Kind]
	if !ok {
		kind := t.Kind
		if len(kind) > 128 { // the reason is stored and logged: bounded
			kind = kind[:128] + "…"
		}
		return Permanent(fmt.Errorf("%w %q: no handler registered in this worker", tasks.ErrUnknownKind, kind))
	}
	return h(ctx, t)
}

// ErrUnknownKind reports whether err is an unknown-kind failure.
func ErrUnknownKind(err error) bool { return errors.Is(err, tasks.ErrUnknownKind) }
