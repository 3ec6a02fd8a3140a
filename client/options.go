package client

import (
	"fmt"
	"strings"
	"time"

	"github.com/plyr-fm/plyrtasks/tasks"
)

// Option overrides one of a task type's default options (declared in
// package tasks) for one enqueue. Later options win over earlier ones.
type Option func(*settings)

// settings are one enqueue's resolved options.
type settings struct {
	opts   tasks.Opts
	noWait bool
	errs   []error
}

func (s *settings) invalid(field, reason string) {
	s.errs = append(s.errs, &tasks.FieldError{Field: field, Reason: reason})
}

// In delays the task by d (asynq's ProcessIn). It replaces an earlier At.
func In(d time.Duration) Option {
	return func(s *settings) {
		if d < 0 {
			s.invalid("process_in", "must not be negative")
			return
		}
		s.opts.ProcessIn, s.opts.ProcessAt = d, time.Time{}
	}
}

// At delays the task until t (asynq's ProcessAt); a past t runs it now. It
// replaces an earlier In.
func At(t time.Time) Option {
	return func(s *settings) { s.opts.ProcessAt, s.opts.ProcessIn = t, 0 }
}

// UniqueFor makes the task unique for d (see the package doc); 0 makes this
// enqueue not unique even if the type is.
func UniqueFor(d time.Duration) Option {
	return func(s *settings) {
		if d < 0 {
			s.invalid("unique_for", "must not be negative")
			return
		}
		s.opts.UniqueFor = d
	}
}

// MaxRetry sets how many times a failed task is retried before it is
// archived; 0 means it is not retried.
func MaxRetry(n int) Option {
	return func(s *settings) {
		if n < 0 {
			s.invalid("max_retry", "must not be negative")
			return
		}
		s.opts.MaxRetry = n
		if n == 0 {
			s.opts.MaxRetry = tasks.NoRetry
		}
	}
}

// Timeout bounds one attempt. It must be positive; a sub-second value
// rounds up to whole seconds (asynq stores seconds, where 0 would mean no
// timeout at all).
func Timeout(d time.Duration) Option {
	return func(s *settings) {
		if d <= 0 {
			s.invalid("timeout", "must be positive")
			return
		}
		s.opts.Timeout = d
	}
}

// Queue puts the task on logical queue q (tasks.QueueCritical,
// tasks.QueueDefault, tasks.QueueBulk); the client namespaces it. A unique
// task's lock lives with its queue: the same unique key on two queues is
// two locks.
func Queue(q string) Option {
	return func(s *settings) {
		if _, ok := tasks.QueuePriorities()[q]; !ok {
			s.invalid("queue", fmt.Sprintf("unknown queue %q (want one of %s)", q, queueNames()))
			return
		}
		s.opts.Queue = q
	}
}

// TaskID sets the task's ID instead of a random UUID. Enqueueing an ID that
// still exists in the queue returns Duplicate with that ID.
func TaskID(id string) Option {
	return func(s *settings) {
		if strings.TrimSpace(id) == "" || len(id) > 256 {
			s.invalid("task_id", "must be 1 to 256 characters")
			return
		}
		s.opts.TaskID = id
	}
}

// Retention keeps the completed task (and its result) visible for d; 0
// deletes it on completion. A sub-second value rounds up to whole seconds.
func Retention(d time.Duration) Option {
	return func(s *settings) {
		if d < 0 {
			s.invalid("retention", "must not be negative")
			return
		}
		s.opts.Retention = d
	}
}

// NoWait returns as soon as an in-process fallback run has started instead
// of when it ends (the Result's State is then "active" and Err is nil).
// Without Redis trouble it changes nothing.
func NoWait() Option {
	return func(s *settings) { s.noWait = true }
}

// WithOpts applies every set field of o, as the HTTP API's query
// parameters give them: Queue, MaxRetry (tasks.NoRetry for none), Timeout,
// Retention, UniqueFor, ProcessAt, ProcessIn, TaskID. Zero fields keep the
// type's defaults, so through WithOpts a unique type stays unique.
func WithOpts(o tasks.Opts) Option {
	return func(s *settings) {
		if o.Queue != "" {
			Queue(o.Queue)(s)
		}
		switch {
		case o.MaxRetry == tasks.NoRetry:
			MaxRetry(0)(s)
		case o.MaxRetry != 0:
			MaxRetry(o.MaxRetry)(s)
		}
		if o.Timeout != 0 {
			Timeout(o.Timeout)(s)
		}
		if o.Retention != 0 {
			Retention(o.Retention)(s)
		}
		if o.UniqueFor != 0 {
			UniqueFor(o.UniqueFor)(s)
		}
		if !o.ProcessAt.IsZero() {
			At(o.ProcessAt)(s)
		}
		if o.ProcessIn != 0 {
			In(o.ProcessIn)(s)
		}
		if o.TaskID != "" {
			TaskID(o.TaskID)(s)
		}
	}
}

// roundUpSecond rounds a positive d up to whole seconds: asynq stores
// Timeout and Retention in seconds, truncating, so 500ms would become 0
// ("no timeout", "delete at once").
func roundUpSecond(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return (d + time.Second - 1).Truncate(time.Second)
}

func queueNames() string {
	return strings.Join([]string{tasks.QueueCritical, tasks.QueueDefault, tasks.QueueBulk}, ", ")
}
