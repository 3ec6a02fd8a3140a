package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/plyr-fm/plyrtasks/job"
)

// Backoff between in-process attempts: short, because a caller may be
// waiting; a RetryAfter longer than inlineMaxWait ends the retries.
const (
	inlineBaseDelay = 200 * time.Millisecond
	inlineMaxWait   = 30 * time.Second
)

// inlineRunner runs tasks in-process through the registry's handler inside
// job.DefaultMiddleware, at most InlineConcurrency at a time.
type inlineRunner struct {
	handler  job.HandlerFunc
	maxRetry int
	sem      chan struct{}

	// stop is closed when Close begins: waiting for a slot and retrying
	// end. base is cancelled when Close gives up waiting: running handlers
	// see their context end.
	stop       chan struct{}
	base       context.Context
	cancelBase context.CancelFunc

	mu      sync.Mutex
	closing bool
	wg      sync.WaitGroup
}

func newInlineRunner(o Options) *inlineRunner {
	base, cancel := context.WithCancel(context.Background())
	return &inlineRunner{
		handler:    job.Chain(o.Inline.Handler(), job.DefaultMiddleware(o.Logger, o.Metrics, o.Middleware...)...),
		maxRetry:   o.InlineMaxRetry,
		sem:        make(chan struct{}, o.InlineConcurrency),
		stop:       make(chan struct{}),
		base:       base,
		cancelBase: cancel,
	}
}

// run takes a slot (blocking while all are busy), starts req and, unless
// NoWait, waits for it to end or for ctx to end.
func (r *inlineRunner) run(ctx context.Context, req *Request, res Result) (Result, error) {
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		return res, ErrClosed
	}
	r.wg.Add(1)
	r.mu.Unlock()
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		r.wg.Done()
		return res, fmt.Errorf("%s: wait for an in-process slot: %w", req.Kind, ctx.Err())
	case <-r.stop:
		r.wg.Done()
		return res, ErrClosed
	}
	res.Outcome = RanInline
	res.ID = req.Opts.TaskID
	if res.ID == "" {
		res.ID = uuid.NewString()
	}
	done := make(chan error, 1)
	go func() {
		defer r.wg.Done()
		defer func() { <-r.sem }()
		done <- r.attempts(ctx, req, res.ID)
	}()
	if req.NoWait {
		res.State = "active"
		return res, nil
	}
	select {
	case err := <-done:
		res.Err = err
		res.State = "completed"
		if err != nil {
			res.State = "failed"
		}
	case <-ctx.Done():
		res.State = "active"
	}
	return res, nil
}

// attempts runs the task until it succeeds, fails for good, runs out of
// in-process retries, or Close begins. The run keeps the caller's context
// values (trace) but not its cancellation: a caller that stops waiting
// does not abort the task. Each attempt is bounded by the type's timeout.
func (r *inlineRunner) attempts(callerCtx context.Context, req *Request, id string) error {
	ctx, cancel := context.WithCancel(context.WithoutCancel(callerCtx))
	defer cancel()
	defer context.AfterFunc(r.base, cancel)()
	maxRetry := min(req.Opts.Retries(), r.maxRetry)
	for attempt := 0; ; attempt++ {
		t := &job.Task{
			Kind: req.Kind, Payload: req.Payload, ID: id, Queue: req.Opts.Queue,
			Attempt: attempt, MaxRetry: maxRetry, Headers: req.Headers, Inline: true,
		}
		err := r.attempt(ctx, t, req.Opts.Timeout)
		if err == nil || job.IsPermanent(err) || errors.Is(err, job.ErrStruck) || t.LastAttempt() || ctx.Err() != nil {
			return err
		}
		d, ok := inlineBackoff(attempt, err)
		if !ok {
			return err
		}
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-r.stop:
			timer.Stop()
			return err
		case <-ctx.Done():
			timer.Stop()
			return err
		}
	}
}

func (r *inlineRunner) attempt(ctx context.Context, t *job.Task, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return r.handler(ctx, t)
}

// inlineBackoff is the wait before in-process retry n+1: exponential with
// jitter, at least a RetryAfter's delay; ok is false when that delay is
// longer than an in-process run should wait.
func inlineBackoff(n int, err error) (d time.Duration, ok bool) {
	d = inlineBaseDelay << min(n, 8)
	d = d/2 + rand.N(d/2)
	var ra *job.RetryAfterError
	if errors.As(err, &ra) {
		if ra.After > inlineMaxWait {
			return 0, false
		}
		d = max(d, ra.After)
	}
	return d, true
}

func (r *inlineRunner) close(ctx context.Context) error {
	r.mu.Lock()
	if !r.closing {
		r.closing = true
		close(r.stop)
	}
	r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		r.cancelBase()
		return fmt.Errorf("close: in-process runs still going: %w", ctx.Err())
	}
}
