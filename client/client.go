package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/internal/rdb"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// FallbackMode says what an enqueue does when Redis is not configured or
// the enqueue fails.
type FallbackMode string

const (
	// FallbackInline runs the task in-process (the default).
	FallbackInline FallbackMode = "inline"
	// FallbackError returns an error wrapping ErrUnavailable.
	FallbackError FallbackMode = "error"
)

// ParseFallbackMode parses "inline" (or "") and "error".
func ParseFallbackMode(s string) (FallbackMode, error) {
	switch FallbackMode(s) {
	case "", FallbackInline:
		return FallbackInline, nil
	case FallbackError:
		return FallbackError, nil
	}
	return "", fmt.Errorf("fallback mode %q: want inline or error", s)
}

// Options configure a Client. Every field is optional.
type Options struct {
	// Namespace prefixes queue names (tasks.Namespaced) so deployments can
	// share a Redis. Default "plyr"; it must match the workers'.
	Namespace string
	// Catalog declares the task types. Default tasks.All().
	Catalog *tasks.Catalog
	// Fallback is FallbackInline (default) or FallbackError.
	Fallback FallbackMode
	// Inline holds the handlers for in-process runs, normally the worker's
	// registry (configure it before New). Nil: nothing runs in-process and a
	// fallback returns ErrUnavailable, as does a kind Inline has no handler
	// for.
	Inline *job.Registry
	// InlineConcurrency bounds simultaneous in-process runs. Default 4. When
	// all slots are busy, the caller blocks until one frees or its context
	// ends.
	InlineConcurrency int
	// InlineMaxRetry bounds retries of a transient failure in-process (the
	// type's MaxRetry applies when lower), with a short backoff, and none
	// once Close began. Default 2.
	InlineMaxRetry int
	// EnqueueTimeout bounds one enqueue's Redis round trips before the
	// enqueue counts as failed and falls back. Default 5s.
	EnqueueTimeout time.Duration
	// Logger receives fallback warnings and in-process task lines. Default
	// slog.Default().
	Logger *slog.Logger
	// Metrics counts fallbacks and in-process runs. Nil: none.
	Metrics *job.Metrics
	// Middleware wraps in-process runs outside logging, metrics and
	// recovery (job.DefaultMiddleware's extra): the tracing hook.
	Middleware []job.Middleware
	// EnqueueMiddleware wraps every enqueue, outermost first: a hook for
	// tracing spans (add trace headers to Request.Headers) and for refusing
	// enqueues (strikes).
	EnqueueMiddleware []EnqueueMiddleware
}

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = "plyr"
	}
	if o.Catalog == nil {
		o.Catalog = tasks.All()
	}
	if o.Fallback == "" {
		o.Fallback = FallbackInline
	}
	if o.InlineConcurrency <= 0 {
		o.InlineConcurrency = 4
	}
	if o.InlineMaxRetry <= 0 {
		o.InlineMaxRetry = 2
	}
	if o.EnqueueTimeout <= 0 {
		o.EnqueueTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Outcome says what an enqueue did.
type Outcome int

const (
	// Enqueued: the task is on its queue; Result.ID is its ID.
	Enqueued Outcome = iota + 1
	// Duplicate: a unique task with the same key (or a task with the same
	// TaskID) is still queued or running; Result.ID is that task's ID.
	Duplicate
	// RanInline: Redis was unavailable and the task ran in this process.
	RanInline
)

func (o Outcome) String() string {
	switch o {
	case Enqueued:
		return "enqueued"
	case Duplicate:
		return "duplicate"
	case RanInline:
		return "inline"
	}
	return "unknown"
}

// Result is what an enqueue did.
type Result struct {
	Outcome Outcome
	// ID is the task's ID: the new task's, the existing task's for a
	// Duplicate, the in-process run's for RanInline.
	ID   string
	Kind string
	// Queue is the asynq queue name, namespaced ("plyr:critical").
	Queue string
	// State is the task's state: "pending" or "scheduled" when Enqueued,
	// the existing task's ("pending", "active", "retry", …) for a
	// Duplicate, and for RanInline "completed" or "failed" — or "active"
	// when the run was not awaited (NoWait, or the caller's context ended
	// first; it goes on, and Close drains it).
	State string
	// Err is the error of a run that ran in-process and failed (after its
	// in-process retries). The enqueue itself succeeded.
	Err error
	// FallbackReason is job.FallbackNoRedis or job.FallbackEnqueueFailed
	// when the task did not go through Redis, "" otherwise.
	FallbackReason string
}

// Errors of Enqueue; they are wrapped, test with errors.Is.
var (
	// ErrUnavailable: Redis is not configured or the enqueue failed, and
	// the task did not run in-process (FallbackError, or no in-process
	// handler). It wraps the cause.
	ErrUnavailable = errors.New("task queue unavailable")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("client closed")
	// ErrInternalKind: the type is internal (a periodic tick) and not
	// enqueued by producers.
	ErrInternalKind = errors.New("internal task type")

	errNoRedis = errors.New("no Redis configured")
)

// Request is one enqueue as EnqueueMiddleware sees it.
type Request struct {
	Kind    string
	Args    tasks.Args
	Payload []byte
	// Opts are the type's defaults with the call's options applied.
	Opts tasks.Opts
	// Headers travel with the task to the worker (and to an in-process
	// run): middleware may add to it (trace context).
	Headers map[string]string
	// NoWait is set by the NoWait option.
	NoWait bool
}

// EnqueueFunc performs one enqueue.
type EnqueueFunc func(ctx context.Context, req *Request) (Result, error)

// EnqueueMiddleware wraps an EnqueueFunc.
type EnqueueMiddleware func(next EnqueueFunc) EnqueueFunc

// Client enqueues tasks. It is safe for concurrent use.
type Client struct {
	rdb     redis.UniversalClient
	aq      *asynq.Client
	opts    Options
	log     *slog.Logger
	inline  *inlineRunner
	enqueue EnqueueFunc
	closed  atomic.Bool
}

// New returns a Client over rdb; rdb nil means no Redis is configured, so
// every task takes the fallback. The Client does not close rdb.
func New(rdb redis.UniversalClient, opts Options) *Client {
	opts = opts.withDefaults()
	c := &Client{rdb: rdb, opts: opts, log: opts.Logger}
	if rdb != nil {
		c.aq = asynq.NewClientFromRedisClient(rdb)
	}
	if opts.Inline != nil {
		c.inline = newInlineRunner(opts)
	}
	c.enqueue = c.send
	for i := len(opts.EnqueueMiddleware) - 1; i >= 0; i-- {
		c.enqueue = opts.EnqueueMiddleware[i](c.enqueue)
	}
	return c
}

// Enqueue validates args and enqueues them with the type's default options
// overridden by opts.
//
// Errors: an invalid payload or option (a *tasks.FieldError inside;
// tasks.IsInvalid), tasks.ErrUnknownKind, ErrInternalKind, ErrUnavailable,
// ErrClosed, or the caller's context error. A duplicate is not an error
// (Outcome Duplicate), nor is a failed in-process run (Result.Err).
func (c *Client) Enqueue(ctx context.Context, args tasks.Args, opts ...Option) (Result, error) {
	kind := args.Kind()
	def, err := c.lookup(kind)
	if err != nil {
		return Result{Kind: kind}, err
	}
	payload, err := tasks.Encode(args)
	if err != nil {
		return Result{Kind: kind}, fmt.Errorf("%s: %w", kind, err)
	}
	return c.submit(ctx, def, args, payload, opts)
}

// EnqueueRaw decodes and validates payload as kind's JSON arguments, then
// enqueues like Enqueue. Oversized payloads (tasks.MaxPayloadBytes) and
// invalid ones are refused before anything reaches Redis, with an error
// naming the field.
func (c *Client) EnqueueRaw(ctx context.Context, kind string, payload []byte, opts ...Option) (Result, error) {
	def, err := c.lookup(kind)
	if err != nil {
		return Result{Kind: kind}, err
	}
	args, err := def.Decode(payload)
	if err != nil {
		return Result{Kind: kind}, fmt.Errorf("%s: %w", kind, err)
	}
	// Store the canonical form: the same payload as Enqueue would write.
	canonical, err := json.Marshal(args)
	if err != nil {
		return Result{Kind: kind}, fmt.Errorf("%s: encode args: %w", kind, err)
	}
	return c.submit(ctx, def, args, canonical, opts)
}

// Ping reports whether Redis answers; without Redis it returns
// ErrUnavailable.
func (c *Client) Ping(ctx context.Context) error {
	if c.rdb == nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, errNoRedis)
	}
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Close refuses new enqueues and waits for in-process runs to finish, no
// longer retrying them. When ctx ends first it cancels their contexts and
// returns ctx's error without waiting further.
func (c *Client) Close(ctx context.Context) error {
	c.closed.Store(true)
	if c.inline == nil {
		return nil
	}
	return c.inline.close(ctx)
}

func (c *Client) lookup(kind string) (tasks.Def, error) {
	def, ok := c.opts.Catalog.Lookup(kind)
	if !ok {
		return def, fmt.Errorf("%w %q", tasks.ErrUnknownKind, kind)
	}
	if def.Internal {
		return def, fmt.Errorf("%w %q: it is enqueued by the workers only", ErrInternalKind, kind)
	}
	return def, nil
}

func (c *Client) submit(ctx context.Context, def tasks.Def, args tasks.Args, payload []byte, opts []Option) (Result, error) {
	s := settings{opts: def.Opts}
	for _, o := range opts {
		o(&s)
	}
	if err := errors.Join(s.errs...); err != nil {
		return Result{Kind: def.Kind}, fmt.Errorf("%s: %w", def.Kind, err)
	}
	if n, ok := args.(tasks.TaskIDer); ok && s.opts.TaskID == "" {
		s.opts.TaskID = n.TaskID()
	}
	s.opts.Timeout = roundUpSecond(s.opts.Timeout)
	s.opts.Retention = roundUpSecond(s.opts.Retention)
	if c.closed.Load() {
		return Result{Kind: def.Kind}, ErrClosed
	}
	req := &Request{Kind: def.Kind, Args: args, Payload: payload, Opts: s.opts, Headers: map[string]string{}, NoWait: s.noWait}
	return c.enqueue(ctx, req)
}

// send is the innermost EnqueueFunc: Redis, else the fallback.
func (c *Client) send(ctx context.Context, req *Request) (Result, error) {
	if c.rdb == nil {
		return c.fallback(ctx, req, job.FallbackNoRedis, errNoRedis)
	}
	res, err := c.toRedis(ctx, req)
	if err == nil {
		return res, nil
	}
	if ctx.Err() != nil {
		// The caller gave up: not Redis' fault, nothing to fall back for.
		return res, fmt.Errorf("enqueue %s: %w", req.Kind, err)
	}
	return c.fallback(ctx, req, job.FallbackEnqueueFailed, err)
}

// toRedis enqueues req. A unique task first takes its lock (see
// rdb.AcquireUnique): reserved, then confirmed once the task is written.
func (c *Client) toRedis(ctx context.Context, req *Request) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.EnqueueTimeout)
	defer cancel()
	o := req.Opts
	queue := tasks.Namespaced(c.opts.Namespace, o.Queue)
	id := o.TaskID
	if id == "" {
		id = uuid.NewString()
	}
	res := Result{Kind: req.Kind, Queue: queue, ID: id}
	aopts := []asynq.Option{asynq.Queue(queue), asynq.TaskID(id), asynq.MaxRetry(o.Retries()), asynq.Timeout(o.Timeout)}
	if o.Retention > 0 {
		aopts = append(aopts, asynq.Retention(o.Retention))
	}
	var processAt time.Time
	switch {
	case !o.ProcessAt.IsZero():
		processAt = o.ProcessAt
	case o.ProcessIn > 0:
		processAt = time.Now().Add(o.ProcessIn)
	}
	if !processAt.IsZero() {
		aopts = append(aopts, asynq.ProcessAt(processAt))
	}
	headers := req.Headers
	var lock string
	var lockTTL time.Duration
	if o.UniqueFor > 0 {
		lock = rdb.UniqueLockKey(queue, req.Kind, tasks.UniqueKey(req.Args))
		lockTTL = o.UniqueFor + max(time.Until(processAt), 0)
		// The reservation outlives this enqueue's round trips, so a
		// concurrent enqueue waits for it instead of taking it over.
		reserve := min(lockTTL, c.opts.EnqueueTimeout+5*time.Second)
		acq, err := rdb.AcquireUnique(ctx, c.rdb, lock, queue, id, reserve)
		if err != nil {
			return res, err
		}
		if !acq.Acquired {
			return Result{Outcome: Duplicate, ID: acq.Holder, Kind: req.Kind, Queue: queue, State: acq.HolderState}, nil
		}
		headers = maps.Clone(headers)
		headers[rdb.HeaderUniqueLock] = lock
	}
	if len(headers) == 0 {
		headers = nil
	}
	info, err := c.aq.EnqueueContext(ctx, asynq.NewTaskWithHeaders(req.Kind, req.Payload, headers), aopts...)
	if err != nil {
		if lock != "" {
			c.releaseLock(lock, id)
		}
		if errors.Is(err, asynq.ErrTaskIDConflict) {
			state, _ := c.rdb.HGet(ctx, rdb.TaskKey(queue, id), "state").Result()
			return Result{Outcome: Duplicate, ID: id, Kind: req.Kind, Queue: queue, State: state}, nil
		}
		return res, err
	}
	if lock != "" {
		if ok, err := rdb.ConfirmUnique(ctx, c.rdb, lock, id, lockTTL); err != nil || !ok {
			// The task is queued; its lock stays a short reservation, so
			// uniqueness may end early. Not worth failing the enqueue.
			c.log.WarnContext(ctx, "unique lock not confirmed", slog.String("kind", req.Kind),
				slog.String("id", id), slog.Bool("lost", err == nil), slog.Any("error", err))
		}
	}
	res.Outcome = Enqueued
	res.State = info.State.String()
	return res, nil
}

// releaseLock gives back a reservation whose enqueue failed, on its own
// short context: the enqueue's may be spent.
func (c *Client) releaseLock(lock, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _ = rdb.ReleaseUnique(ctx, c.rdb, lock, id)
}

// fallback runs req in-process (FallbackInline) or refuses it.
func (c *Client) fallback(ctx context.Context, req *Request, reason string, cause error) (Result, error) {
	res := Result{Kind: req.Kind, Queue: tasks.Namespaced(c.opts.Namespace, req.Opts.Queue), FallbackReason: reason}
	attrs := []slog.Attr{slog.String("kind", req.Kind), slog.String("reason", reason), slog.String("error", cause.Error())}
	if c.opts.Fallback == FallbackError {
		c.log.LogAttrs(ctx, slog.LevelWarn, "task queue unavailable, task refused (fallback=error)", attrs...)
		return res, fmt.Errorf("%w: %s: %w", ErrUnavailable, reason, cause)
	}
	if c.inline == nil || !c.opts.Inline.Has(req.Kind) {
		c.log.LogAttrs(ctx, slog.LevelWarn, "task queue unavailable and no in-process handler, task refused", attrs...)
		return res, fmt.Errorf("%w: %s: %w (and no in-process handler for %s)", ErrUnavailable, reason, cause, req.Kind)
	}
	c.log.LogAttrs(ctx, slog.LevelWarn, "task queue unavailable, running the task in-process", attrs...)
	c.opts.Metrics.Fallback(req.Kind, reason)
	return c.inline.run(ctx, req, res)
}
