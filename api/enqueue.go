package api

import (
	"context"
	"errors"

	"github.com/plyr-fm/plyrtasks/tasks"
)

// Enqueuer puts a task on its queue (or runs it in-process, per the
// fallback policy). Package app adapts *client.Client to it.
type Enqueuer interface {
	// Enqueue enqueues a validated payload of kind with opts (zero fields
	// take the type's defaults). It returns an error wrapping ErrUnavailable
	// when the queue cannot be reached and nothing ran, and a
	// *tasks.FieldError (possibly joined) for an invalid payload or option.
	Enqueue(ctx context.Context, kind string, payload []byte, opts tasks.Opts) (Enqueued, error)
}

// EnqueuerFunc adapts a function to Enqueuer.
type EnqueuerFunc func(ctx context.Context, kind string, payload []byte, opts tasks.Opts) (Enqueued, error)

// Enqueue calls f.
func (f EnqueuerFunc) Enqueue(ctx context.Context, kind string, payload []byte, opts tasks.Opts) (Enqueued, error) {
	return f(ctx, kind, payload, opts)
}

// Outcome says what an enqueue did.
type Outcome string

// Outcomes.
const (
	OutcomeEnqueued  Outcome = "enqueued"  // on the queue: ID is the new task
	OutcomeDuplicate Outcome = "duplicate" // a unique task is already queued or running: ID is that task's, when known
	OutcomeInline    Outcome = "inline"    // ran in this process (fallback): State is completed or failed
)

// Enqueued is the result of Enqueuer.Enqueue.
type Enqueued struct {
	Outcome Outcome
	ID      string
	Kind    string
	// Queue is the logical queue ("default"); a namespaced name is
	// shortened for display.
	Queue string
	// State is "pending" or "scheduled" for an enqueued task, "completed"
	// or "failed" for one that ran inline.
	State string
	// Error is the failure of a task that ran inline and failed.
	Error string
}

// ErrUnavailable is returned (wrapped) by an Enqueuer when the queue cannot
// be reached and the fallback policy is "error": the API answers 503.
var ErrUnavailable = errors.New("task queue unavailable")
