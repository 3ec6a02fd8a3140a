package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"
)

// Outcomes of one run of a task, as Logging logs them and Metrics counts
// them.
const (
	OutcomeOK        = "ok"        // the handler succeeded
	OutcomeInline    = "inline"    // the handler succeeded in-process (producer fallback)
	OutcomeRetry     = "retry"     // it failed and will run again
	OutcomeArchived  = "archived"  // it failed for good and is archived with the error
	OutcomeFailed    = "failed"    // an in-process run failed for good (nothing to archive)
	OutcomeStruck    = "struck"    // a strike blocked it (ErrStruck)
	OutcomeCancelled = "cancelled" // an operator cancelled it (ErrCancelled)
	// OutcomeInterrupted: its context was cancelled for another reason
	// (the worker stopping): it runs again.
	OutcomeInterrupted = "interrupted"
)

// Outcome classifies the end of one run of t that returned err: OutcomeOK
// (OutcomeInline for an in-process run), OutcomeStruck, OutcomeCancelled
// (an operator's cancel), OutcomeInterrupted (any other cancel),
// OutcomeArchived (OutcomeFailed in-process) when no retry is left or the
// error is Permanent, else OutcomeRetry.
func Outcome(ctx context.Context, t *Task, err error) string {
	switch {
	case err == nil:
		if t.Inline {
			return OutcomeInline
		}
		return OutcomeOK
	case errors.Is(err, ErrStruck):
		return OutcomeStruck
	// A run whose context was cancelled ended because of that, whatever
	// its handler made of the error (an HTTP client's "context canceled"
	// wrapped as a transient failure, say); a handler that undid its work
	// on an operator's cancel reports ErrCancelled itself.
	case errors.Is(err, ErrCancelled),
		ctx.Err() != nil && errors.Is(context.Cause(ctx), ErrCancelled):
		return OutcomeCancelled
	case errors.Is(ctx.Err(), context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
		return OutcomeInterrupted
	case IsPermanent(err) || t.LastAttempt():
		if t.Inline {
			return OutcomeFailed
		}
		return OutcomeArchived
	default:
		return OutcomeRetry
	}
}

// Chain wraps h in mw, outermost first (the order of Registry.Use).
func Chain(h HandlerFunc, mw ...Middleware) HandlerFunc {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// DefaultMiddleware is the chain the worker (package server) and the
// producer's in-process fallback (package client) both put around a
// Registry's handler, outermost first:
//
//	extra...  →  Logging  →  Metrics  →  Recover  →  Registry.Handler()
//
// (the last three fused into one middleware: one frame and one clock read
// per run on the hot path, same behaviour as Chain(h, Logging(logger),
// m.Middleware(), Recover())).
//
// extra runs outermost, so a tracing middleware placed there opens its span
// before the log line and the metrics are taken, and sees every outcome,
// panics included. Middleware that must run inside recovery, logging and
// metrics (strikes, say, so a struck task is logged as struck) belongs on
// the Registry (Registry.Use), which runs inside this chain. m may be nil
// (no metrics); logger nil means slog.Default().
func DefaultMiddleware(logger *slog.Logger, m *Metrics, extra ...Middleware) []Middleware {
	if logger == nil {
		logger = slog.Default()
	}
	mw := make([]Middleware, 0, len(extra)+1)
	mw = append(mw, extra...)
	return append(mw, func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, t *Task) (err error) {
			start := time.Now()
			defer func() {
				if v := recover(); v != nil {
					err = &PanicError{Value: v, Stack: debug.Stack()}
				}
				d := time.Since(start)
				outcome := Outcome(ctx, t, err)
				m.observe(t.Kind, outcome, d, err)
				logOutcome(ctx, logger, t, outcome, d, err)
			}()
			return next(ctx, t)
		}
	})
}

// PanicError is the error a handler's panic becomes (see Recover). Its
// message is short ("panic: <value>"): it is what asynq stores as the
// task's last error. Stack is logged by Logging, not stored.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Recover turns a handler's panic into a *PanicError, so the task fails and
// retries like any other failure and the process keeps running (an
// in-process run has no asynq underneath to catch it). Put it inside
// Logging, which logs the stack.
func Recover() Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, t *Task) (err error) {
			defer func() {
				if v := recover(); v != nil {
					err = &PanicError{Value: v, Stack: debug.Stack()}
				}
			}()
			return next(ctx, t)
		}
	}
}

// Logging logs one line per run: kind, id, queue, attempt (1 on the first
// run), duration, outcome (see Outcome), inline=true for in-process runs,
// and the error (with the stack of a panic). It never logs the payload,
// which may hold user content. Successes log at info, retries and
// cancellations at warn, archived and failed runs at error. logger nil
// means slog.Default().
func Logging(logger *slog.Logger) Middleware {
	if logger == nil {
		logger = slog.Default()
	}
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, t *Task) error {
			start := time.Now()
			err := next(ctx, t)
			logOutcome(ctx, logger, t, Outcome(ctx, t, err), time.Since(start), err)
			return err
		}
	}
}

// logOutcome writes Logging's line.
func logOutcome(ctx context.Context, logger *slog.Logger, t *Task, outcome string, d time.Duration, err error) {
	level := outcomeLevel(outcome)
	if !logger.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 9)
	attrs = append(attrs,
		slog.String("kind", t.Kind),
		slog.String("id", t.ID),
		slog.String("queue", t.Queue),
		slog.Int("attempt", t.Attempt+1),
		slog.Duration("duration", d),
		slog.String("outcome", outcome),
	)
	if t.Inline {
		attrs = append(attrs, slog.Bool("inline", true))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
		var pe *PanicError
		if errors.As(err, &pe) {
			attrs = append(attrs, slog.String("stack", string(pe.Stack)))
		}
	}
	logger.LogAttrs(ctx, level, outcomeMessage(outcome), attrs...)
}

func outcomeLevel(outcome string) slog.Level {
	switch outcome {
	case OutcomeOK, OutcomeInline, OutcomeStruck:
		return slog.LevelInfo
	case OutcomeRetry, OutcomeCancelled, OutcomeInterrupted:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func outcomeMessage(outcome string) string {
	switch outcome {
	case OutcomeOK:
		return "task completed"
	case OutcomeInline:
		return "task completed in-process"
	case OutcomeRetry:
		return "task failed, will retry"
	case OutcomeArchived:
		return "task archived"
	case OutcomeFailed:
		return "task failed"
	case OutcomeStruck:
		return "task skipped: struck"
	case OutcomeCancelled:
		return "task cancelled by an operator"
	case OutcomeInterrupted:
		return "task interrupted, will run again"
	}
	return "task finished"
}
